"""The daily pipeline snapshot over many opportunities: the single INSERT ... SELECT of the
day, its second (idempotent) run, and the trend report on top of it, beside a plain
``INSERT INTO ... SELECT`` written by hand.

    .venv/bin/python bench/bench_snapshot.py [--rows 1000000] [--database-url URL] [--runs 3]

Makes its own data (a fresh SQLite file unless --database-url names an empty database):
opportunities spread over 50 reps over the five stages of the standard pipeline (three of
them open), created a month before the first snapshot, written by one executemany per
50,000 rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(rows, reps, account_id, stages):
    from crm_core.db import database, vendor
    from crm_core.opportunities.models import Opportunity

    rng = random.Random(7)
    stamp = Opportunity.created_at.db_value(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc))
    columns = ["version", "created_at", "updated_at", "name", "account_id", "owner_id", "pipeline_id", "stage_id",
               "status", "currency", "amount", "probability", "expected_close_date", "stage_changed_at", "custom"]
    placeholder = "?" if vendor() == "sqlite" else "%s"
    sql = f'INSERT INTO "opportunity" ({", ".join(columns)}) VALUES ({", ".join([placeholder] * len(columns))})'
    started, batch = time.perf_counter(), []
    for i in range(rows):
        stage = stages[rng.randrange(len(stages))]
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(365))
        batch.append((1, stamp, stamp, f"Deal {i}", account_id, reps[i % len(reps)], stage.pipeline_id, stage.id,
                      stage.kind, "USD", rng.randrange(1, 100_000) * 10_000, stage.probability,
                      day.isoformat() if vendor() == "sqlite" else day, stamp, "{}"))
        if len(batch) == 50_000 or i == rows - 1:
            with database.atomic():
                database.cursor().executemany(sql, batch)
            batch = []
    elapsed = time.perf_counter() - started
    print(f"generated {rows:,} opportunities in {elapsed:.1f} s")
    database.execute_sql('ANALYZE "opportunity"' if vendor() == "postgresql" else "ANALYZE")


def timed(function, runs):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-snapshot-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"

    from flask import g

    from crm_core.accounts import services as accounts
    from crm_core.analysis import snapshots
    from crm_core.analysis.models import PipelineSnapshot
    from crm_core.app import create_app
    from crm_core.db import database
    from crm_core.opportunities import services as opps
    from crm_core.org import services as org
    from crm_core.testing import base_config, make_user, migrate

    app = create_app(base_config(url, folder / "instance"))
    with app.test_request_context(), app.extensions["crm_db"].connection_context():
        migrate(app)
        reps = [make_user(f"rep{i}@example.com", f"Rep {i}", password=None) for i in range(50)]
        for user in reps:
            org.set_roles(user, ["sales_rep"])
        admin = make_user("admin@example.com", "Admin", password=None, is_admin=True)
        account = accounts.create_account({"name": "Everyone's customer"}, actor_id=reps[0].id)
        stages = [s for s in opps.stages(opps.default_pipeline())]
        build(args.rows, [r.id for r in reps], account.id, stages)
        open_rows = database.execute_sql("SELECT COUNT(*) FROM opportunity WHERE status = 'open'").fetchone()[0]

        days = iter(dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(1000))
        first, written = timed(lambda: snapshots.take_snapshot(next(days)), args.runs)
        print(f"snapshot of {open_rows:,} open opportunities (one INSERT ... SELECT): p50 {first:.0f} ms "
              f"({written:,} rows)")
        day = dt.date(2026, 1, 1)
        again, rewritten = timed(lambda: snapshots.take_snapshot(day), args.runs)
        print(f"second run of the same day (nothing written: {rewritten}): p50 {again:.0f} ms")

        plain_days = iter(dt.date(2027, 1, 1) + dt.timedelta(days=n) for n in range(1000))

        def plain():
            with database.atomic():
                database.execute_sql(
                    "INSERT INTO pipeline_snapshot (day, opportunity_id, owner_id, pipeline_id, stage_id, status, "
                    "currency, amount, probability, expected_close_date) SELECT "
                    + ("?" if database.obj.__class__.__name__.startswith("Sqlite") else "%s")
                    + ", id, owner_id, pipeline_id, stage_id, status, currency, amount, probability, "
                      "expected_close_date FROM opportunity WHERE deleted_at IS NULL AND status = 'open'",
                    (next(plain_days).isoformat(),))
        raw, _ = timed(plain, args.runs)
        print(f"the same INSERT ... SELECT written by hand (no ORM): p50 {raw:.0f} ms")
        print(f"snapshot rows now: {PipelineSnapshot.select().count():,}")

        # Since the snapshot: one deal in seven slipped a month, one in eleven moved a stage.
        postgres = database.obj.__class__.__name__.startswith("Postgres")
        database.execute_sql("UPDATE opportunity SET expected_close_date = " + (
            "expected_close_date + 30" if postgres else "date(expected_close_date, '+30 days')")
            + " WHERE MOD(id, 7) = 0 AND status = 'open'")
        database.execute_sql(f"UPDATE opportunity SET stage_id = {stages[1].id} "
                             f"WHERE MOD(id, 11) = 0 AND stage_id = {stages[0].id}")
        for who, user in (("rep", reps[0]), ("admin", admin)):
            def trend():
                g.pop("_crm_access", None)
                return snapshots.trend_report(user.id, day, category="slipped")
            p50, report = timed(trend, args.runs)
            counts = {c["key"]: c["count"] for c in report["categories"]}
            print(f"trend as {who}: p50 {p50:.0f} ms {counts}")


if __name__ == "__main__":
    main()
