"""The funnel over 1,000,000 opportunities and 1,000 users in a department tree: a manager
with 50 reps below them, the whole company as an administrator, a win rate over a period,
and a rep's first page of 50 opportunities; each beside the same question in plain SQL
without access rules.

    .venv/bin/python bench/bench_funnel.py [--rows 1000000] [--users 1000] [--database-url URL] [--runs 21]
                                           [--measure-only] [--profile]

Makes its own data (a fresh SQLite file unless --database-url names an empty database):
a company department with 18 divisions of two teams each plus the bench manager's team
of 50 reps; opportunities spread over every user, stage and three currencies, written by
executemany per 50,000 rows (SQLite) or COPY (PostgreSQL) with the funnel's triggers on,
as an import writes them; a few shares and team memberships so the manager's funnel also
scans what is granted outside their people.
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

COLUMNS = ("name", "account_id", "owner_id", "pipeline_id", "stage_id", "status", "currency", "amount",
           "probability", "expected_close_date", "closed_date", "version", "created_at", "updated_at",
           "stage_changed_at")


def organisation(users):
    """1,000 users: the head of the company, the bench manager with 50 reps, 18 divisions
    (a head, two teams with a head and ~25 reps each). Returns (admin, manager, reps, everyone)."""
    from crm_core.org import services as org
    from crm_core.org.models import Department, Role, UserRole
    from crm_core.users.models import User

    now = dt.datetime.now(dt.timezone.utc)
    User.insert_many([{"email": f"u{i}@bench.example", "name": f"User {i}", "version": 1, "created_at": now,
                       "updated_at": now, "active": True, "is_admin": i == 0} for i in range(users)]).execute()
    ids = [u for (u,) in User.select(User.id).order_by(User.id).tuples()]
    admin_id, manager_id, reps = ids[0], ids[1], ids[2:52]
    rep_role = Role.get(Role.key == "sales_rep").id
    UserRole.insert_many([{"user": u, "role": rep_role} for u in ids[1:]]
                         + [{"user": admin_id, "role": Role.get(Role.key == "administrator").id}]).execute()
    company = Department.create(name="Company", head=admin_id)
    bench = Department.create(name="Bench team", parent=company.id, head=manager_id)
    placed = {admin_id: company.id, manager_id: bench.id, **{r: bench.id for r in reps}}
    rest = ids[52:]
    divisions, per_team = 18, (len(rest) - 18 * 3) // 36
    cursor = 0
    for d in range(divisions):
        head = rest[cursor]
        cursor += 1
        division = Department.create(name=f"Division {d}", parent=company.id, head=head)
        placed[head] = division.id
        for t in range(2):
            lead = rest[cursor]
            cursor += 1
            team = Department.create(name=f"Team {d}.{t}", parent=division.id, head=lead)
            placed[lead] = team.id
            size = per_team if (d, t) != (divisions - 1, 1) else len(rest) - cursor
            for user_id in rest[cursor:cursor + size]:
                placed[user_id] = team.id
            cursor += size
    for user_id, department_id in placed.items():
        User.update(department=department_id).where(User.id == user_id).execute()
    org.set_default("opportunity", "private")
    return admin_id, manager_id, reps, ids


def build(rows, owners, account_id, pipeline, stages):
    from crm_core.db import database, vendor
    from crm_core.opportunities.models import Opportunity

    rng = random.Random(6)
    now = Opportunity.created_at.db_value(dt.datetime.now(dt.timezone.utc))
    weights = [30, 20, 15, 20, 15][:len(stages)]
    today = dt.date(2026, 11, 30)
    # 8,192 distinct rows of values, cycled with the owner: random draws per row would cost
    # more than what is measured here.
    pool = []
    for _ in range(8192):
        stage = rng.choices(stages, weights)[0]
        currency = rng.choices(["USD", "EUR", "VND"], [80, 15, 5])[0]
        amount = rng.randint(1, 500) * (1_000_000 if currency == "VND" else 100) * 10_000
        closed = None if stage.kind == "open" else today - dt.timedelta(days=rng.randint(0, 1000))
        pool.append((stage.id, stage.kind, currency, amount, stage.probability,
                     today + dt.timedelta(days=rng.randint(-60, 400)), closed))
    started, batch = time.perf_counter(), []
    postgres = vendor() == "postgresql"
    placeholder = "%s" if postgres else "?"
    sql = f'INSERT INTO "opportunity" ({", ".join(COLUMNS)}) VALUES ({", ".join([placeholder] * len(COLUMNS))})'

    def flush():
        with database.atomic():
            if postgres:
                with database.cursor().copy(f'COPY "opportunity" ({", ".join(COLUMNS)}) FROM STDIN') as copy:
                    for row in batch:
                        copy.write_row(row)
            else:
                database.cursor().executemany(sql, batch)

    for i in range(rows):
        stage_id, kind, currency, amount, probability, expected, closed = pool[i & 8191]
        batch.append((f"Deal {i}", account_id, owners[(i * 7919) % len(owners)], pipeline.id, stage_id, kind,
                      currency, amount, probability, expected, closed, 1, now, now, now))
        if len(batch) == 50_000 or i == rows - 1:
            flush()
            batch = []
    elapsed = time.perf_counter() - started
    print(f"generated {rows:,} opportunities in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s, "
          f"{'COPY' if postgres else 'executemany'} with the funnel triggers on)")
    database.execute_sql('ANALYZE "opportunity"' if postgres else "ANALYZE")


def timed(function, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        function()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0]


def plain(sql):
    from crm_core.db import database

    return lambda: database.execute_sql(sql).fetchall()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--profile", action="store_true", help="profile the manager's funnel")
    parser.add_argument("--measure-only", action="store_true",
                        help="measure the data an earlier run left in --database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-funnel-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"

    from flask import g

    from crm_core.accounts import services as accounts
    from crm_core.app import create_app
    from crm_core.db import database, vendor
    from crm_core.funnel import services as funnel
    from crm_core.opportunities import services as opps
    from crm_core.opportunities.models import Opportunity, OpportunityMember
    from crm_core.org.models import RecordShare
    from crm_core.permissions import Level, engine
    from crm_core.testing import base_config, migrate

    app = create_app(base_config(url, folder / "instance"))
    with app.test_request_context(), app.extensions["crm_db"].connection_context():
        if args.measure_only:  # the data of an earlier run of this script
            from crm_core.users.models import User

            everyone = [u for (u,) in User.select(User.id).order_by(User.id).tuples()]
            admin, manager, reps = everyone[0], everyone[1], everyone[2:52]
            pipeline = opps.default_pipeline()
            stages = opps.stages(pipeline)
        else:
            migrate(app)
            admin, manager, reps, everyone = organisation(args.users)
            account = accounts.create_account({"name": "Bench account"}, actor_id=admin)
            pipeline = opps.default_pipeline()
            stages = opps.stages(pipeline)
            build(args.rows, everyone, account.id, pipeline, stages)
            outside = [i for (i,) in Opportunity.select(Opportunity.id).where(
                Opportunity.owner_id.not_in([manager, *reps])).limit(40).tuples()]
            RecordShare.insert_many([{"object": "opportunity", "record_id": i, "target_type": "user",
                                      "target_id": manager, "level": int(Level.READ)} for i in outside[:20]]).execute()
            OpportunityMember.insert_many([{"opportunity": i, "user_id": manager, "role": "presales",
                                            "access": "read"} for i in outside[20:]]).execute()
        print(f"{vendor()}: {args.rows:,} opportunities, {len(everyone):,} users; the manager has "
              f"{len(engine().subject(manager).subordinates)} people below them, 20 shares and 20 team seats outside")
        weighted = "CAST(amount AS NUMERIC) * probability" if vendor() == "postgresql" else "amount * probability"
        group = (f"SELECT stage_id, currency, COUNT(*), SUM(amount), SUM({weighted}) FROM opportunity "
                 f"WHERE pipeline_id = {pipeline.id} AND deleted_at IS NULL")
        team_ids = ", ".join(str(u) for u in [manager, *reps])

        def report(user_id, **kwargs):
            def run():
                g.pop("_crm_access", None)  # no per-request cache carried between runs
                return funnel.funnel(user_id, **kwargs)
            return run

        def scan(user_id):
            """The same funnel as one scan under the access engine's read filter."""
            def run():
                g.pop("_crm_access", None)
                return engine().query(user_id, "opportunity", Opportunity.stage, Opportunity.currency,
                                      funnel.peewee.fn.COUNT(Opportunity.id), funnel.fn_sum(Opportunity.amount)) \
                    .where(Opportunity.pipeline == pipeline.id) \
                    .group_by(Opportunity.stage, Opportunity.currency).tuples().execute()
            return run

        cases = [
            ("manager funnel (50 reps below)", report(manager), scan(manager),
             plain(f"{group} AND owner_id IN ({team_ids}) GROUP BY stage_id, currency")),
            ("whole company as administrator", report(admin), scan(admin),
             plain(f"{group} GROUP BY stage_id, currency")),
            ("manager win rate 2025-01-15..2025-12-20", report(manager, closed_from=dt.date(2025, 1, 15),
                                                                closed_to=dt.date(2025, 12, 20)), None,
             plain(f"SELECT status, currency, COUNT(*), SUM(amount) FROM opportunity WHERE pipeline_id = "
                   f"{pipeline.id} AND deleted_at IS NULL AND status IN ('won', 'lost') AND closed_date "
                   f"BETWEEN '2025-01-15' AND '2025-12-20' AND owner_id IN ({team_ids}) GROUP BY status, currency")),
        ]
        for label, ours, scanned, raw in cases:
            result = ours()
            p50, p95 = timed(ours, args.runs)
            r50, r95 = timed(raw, args.runs)
            line = (f"{label}: {result['total_count']:,} open; ours p50 {p50:.1f} ms (p95 {p95:.1f}); "
                    f"plain SQL p50 {r50:.1f} ms (p95 {r95:.1f})")
            if scanned is not None:
                s50, _ = timed(scanned, max(3, args.runs // 4))
                line += f"; scan under the read filter p50 {s50:.1f} ms"
            print(line)

        rep, stage = reps[0], stages[1]

        def first_page():
            g.pop("_crm_access", None)
            return list(engine().query(rep, "opportunity").where(Opportunity.stage == stage.id)
                        .order_by(Opportunity.expected_close_date, Opportunity.id).limit(50))
        rows = first_page()
        p50, p95 = timed(first_page, args.runs)
        raw = plain(f'SELECT * FROM "opportunity" WHERE owner_id = {rep} AND stage_id = {stage.id} AND deleted_at '
                    f'IS NULL ORDER BY expected_close_date, id LIMIT 50')
        r50, r95 = timed(raw, args.runs)
        print(f"rep first page ({len(rows)} rows, stage filter, by expected close date): p50 {p50:.1f} ms "
              f"(p95 {p95:.1f}); plain SQL p50 {r50:.1f} ms (p95 {r95:.1f})")
        if "--profile" in sys.argv[1:]:
            import cProfile
            cProfile.runctx("for _ in range(5): report(manager)()", globals(), locals(), sort="cumulative")


if __name__ == "__main__":
    main()
