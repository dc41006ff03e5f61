"""Segment over 1,000,000 contacts with custom-field values: the first page as a rep and
as a manager, through the access engine, beside the plain SQL of the same question.

    .venv/bin/python bench/bench_segments.py [--rows 1000000] [--database-url URL] [--runs 21]

Makes its own data (a fresh SQLite file unless --database-url names an empty database):
a department of 20 reps under a manager plus 30 other reps, contacts spread over the 50
reps, each with custom values (interests, budget, vip, met_on) written by one executemany
per 50,000 rows, the way the importer writes them (``customfields.dumps``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INTERESTS = ["tennis", "golf", "sailing", "chess", "opera", "cycling", "football", "wine"]
SEGMENT = {"all": [{"field": "custom.interests", "op": "includes", "value": "tennis"},
                   {"field": "custom.budget", "op": "gte", "value": "1000"},
                   {"any": [{"field": "custom.vip", "op": "eq", "value": True},
                            {"field": "custom.met_on", "op": "gte", "value": "2025-06-01"}]}]}


def build(rows, reps):
    from crm_core.accounts.models import Contact
    from crm_core.customfields import compile_validator, dumps
    from crm_core.db import database, utcnow, vendor

    check = compile_validator("contact")
    rng = random.Random(5)
    now = utcnow()
    stamp = Contact.created_at.db_value(now)
    columns = ["owner_id", "last_name", "email", "do_not_call", "do_not_email", "version", "created_at",
               "updated_at", "custom"]
    placeholder = "?" if vendor() == "sqlite" else "%s"
    sql = (f'INSERT INTO "contact" ({", ".join(columns)}) VALUES ({", ".join([placeholder] * len(columns))})')
    # 4,096 distinct rows of raw values (as a file holds them), cycled: random draws per
    # row would cost more than everything measured here.
    pool = [{"interests": "; ".join(rng.sample(INTERESTS, rng.randint(0, 3))),
             "budget": str(rng.randint(0, 5000)), "vip": "yes" if rng.random() < 0.1 else "no",
             "met_on": f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
            for _ in range(4096)]
    started, validate_time, insert_time, batch = time.perf_counter(), 0.0, 0.0, []
    for i in range(rows):
        t = time.perf_counter()
        values, errors = check(pool[i & 4095])
        text = dumps({k: v for k, v in values.items() if v is not None})
        validate_time += time.perf_counter() - t
        if errors:
            raise SystemExit(errors)
        batch.append((reps[i % len(reps)], f"Contact {i}", f"c{i}@example.com", False, False, 1, stamp, stamp,
                      text))
        if len(batch) == 50_000 or i == rows - 1:
            t = time.perf_counter()
            with database.atomic():
                database.cursor().executemany(sql, batch)
            insert_time += time.perf_counter() - t
            batch = []
    elapsed = time.perf_counter() - started
    print(f"generated {rows:,} contacts in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s); custom values "
          f"validated and encoded at {rows / validate_time:,.0f} rows/s, executemany at "
          f"{rows / insert_time:,.0f} rows/s")
    if vendor() == "postgresql":
        database.execute_sql('ANALYZE "contact"')
    else:
        database.execute_sql("ANALYZE")


def timed(function, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        function()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def plain_sql(owner_ids):
    """The same question in hand-written SQL (owners spelled out, no access engine)."""
    from crm_core.db import database, vendor

    owners = ", ".join(str(i) for i in owner_ids)
    if vendor() == "sqlite":
        where = ("instr(json_extract(custom, '$.interests'), '\"tennis\"') > 0 "
                 "AND json_extract(custom, '$.budget') >= 1000 "
                 "AND (json_extract(custom, '$.vip') = 1 OR json_extract(custom, '$.met_on') >= '2025-06-01')")
    else:
        where = ("custom @> '{\"interests\": [\"tennis\"]}' AND (custom->>'budget')::numeric >= 1000 "
                 "AND (custom @> '{\"vip\": true}' OR custom->>'met_on' >= '2025-06-01')")
    page = f'SELECT * FROM "contact" WHERE owner_id IN ({owners}) AND deleted_at IS NULL AND {where} ' \
           f'ORDER BY id DESC LIMIT 50'
    count = f'SELECT COUNT(*) FROM (SELECT id FROM "contact" WHERE owner_id IN ({owners}) ' \
            f'AND deleted_at IS NULL AND {where} LIMIT 10001) AS capped'

    def run():
        database.execute_sql(page).fetchall()
    return run, count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-segments-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"

    from flask import g

    from crm_core.app import create_app
    from crm_core.customfields import services as custom_fields
    from crm_core.db import database
    from crm_core.org import services as org
    from crm_core.segments import services as segments
    from crm_core.testing import base_config, make_user, migrate

    app = create_app(base_config(url, folder / "instance"))
    with app.test_request_context(), app.extensions["crm_db"].connection_context():
        migrate(app)
        manager = make_user("manager@example.com", "Manager", password=None)
        reps = [make_user(f"rep{i}@example.com", f"Rep {i}", password=None) for i in range(50)]
        for user in [manager, *reps]:
            org.set_roles(user, ["sales_rep"])
        sales = org.create_department("Sales", head=manager.id)
        for user in [manager, *reps[:20]]:
            org.place_user(user, sales.id)
        custom_fields.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                                    "labels": {"en": "Interests"}, "choices": INTERESTS})
        custom_fields.create_field({"object": "contact", "key": "budget", "type": "money", "currency": "EUR",
                                    "labels": {"en": "Budget"}})
        custom_fields.create_field({"object": "contact", "key": "vip", "type": "boolean", "labels": {"en": "VIP"}})
        custom_fields.create_field({"object": "contact", "key": "met_on", "type": "date", "labels": {"en": "Met on"}})
        build(args.rows, [r.id for r in reps])
        from crm_core.db import refresh_statistics

        refresh_statistics()  # as after an import of this size (or the hourly job)
        print(f"segment: {json.dumps(SEGMENT)}")
        for who, user, owners in (("rep", reps[0], [reps[0].id]),
                                  ("manager", manager, [manager.id] + [r.id for r in reps[:20]])):
            def first_page():
                g.pop("_crm_access", None)  # no per-request cache carried between runs
                return segments.run("contact", user.id, SEGMENT, page=1, per_page=50)
            result = first_page()
            p50, worst = timed(first_page, args.runs)
            raw_page, raw_count = plain_sql(owners)
            raw50, raw_worst = timed(raw_page, args.runs)
            print(f"{who:8s} first page ({len(result['items'])} rows): p50 {p50:.1f} ms (max {worst:.1f}); "
                  f"plain SQL p50 {raw50:.1f} ms (max {raw_worst:.1f})")

            def counted():
                g.pop("_crm_access", None)
                return segments.run("contact", user.id, SEGMENT, page=1, per_page=50, count=True)
            total = counted()
            c50, _ = timed(counted, 3)
            raw_c50, _ = timed(lambda: database.execute_sql(raw_count).fetchone(), 3)
            print(f"{who:8s} with the capped count (total {total['total']:,}"
                  f"{'+' if total['total_capped'] else ''}): p50 {c50:.1f} ms; plain SQL count p50 {raw_c50:.1f} ms")


if __name__ == "__main__":
    main()
