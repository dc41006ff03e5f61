"""The first page of 50 opportunities, filtered and sorted, as a rep, over N opportunities.

Builds a fresh instance (SQLite by default, or the database of CRM_DATABASE_URL, which it
empties) with 1,000 users in a department tree (20 departments of 50) and N opportunities
(default 1,000,000) spread over the owners, stages and close dates; then times, as a rep,
the list the API answers (``GET /api/v1/opportunities?sort=...``: the access engine's query,
the count and the page, serialised) for several sorts and filters, and beside it the same
page as plain SQL without access rules (``WHERE owner_id = ? ORDER BY ... LIMIT 50``).

    python bench/bench_opportunity_list.py [N]
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time

CASES = ("sort=expected_close_date", "sort=-amount", "sort=-updated_at", "sort=name", "sort=stage",
         "sort=-probability&status=open", "stage_id={stage}&sort=-amount",
         "close_from=2026-06-01&close_to=2026-09-30&sort=expected_close_date")
PLAIN = {"sort=expected_close_date": "expected_close_date", "sort=-amount": "amount DESC",
         "sort=-updated_at": "updated_at DESC", "sort=name": "name"}


def p50(function, runs=15):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(count=1_000_000):
    from flask import g

    from crm_core.app import create_app
    from crm_core.testing import api_client, base_config, make_user, migrate, reset_database

    folder = tempfile.mkdtemp()
    url = os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{folder}/bench.sqlite3"
    app = create_app(base_config(url, folder))
    with app.app_context():
        migrate(app)
        from crm_core.accounts.models import Account
        from crm_core.db import database
        from crm_core.opportunities import services
        from crm_core.opportunities.models import Opportunity
        from crm_core.org import services as org
        from crm_core.users.models import User

        reset_database(database)
        rng = random.Random(6)
        top = org.create_department("Company")
        departments = [org.create_department(f"Region {i}", parent=top.id) for i in range(20)]
        rep = make_user("rep@example.com", "Rep", password=None)
        org.set_roles(rep, ["sales_rep"])
        org.place_user(rep, departments[0].id)
        now = dt.datetime.now(dt.timezone.utc)
        users = [{"email": f"u{i}@example.com", "name": f"User {i}", "password_hash": "x", "active": True,
                  "department": departments[i % 20].id, "created_at": now, "updated_at": now}
                 for i in range(999)]
        with database.atomic():
            for start in range(0, len(users), 500):
                User.insert_many(users[start:start + 500]).execute()
        owners = [u.id for u in User.select(User.id)]
        account = Account.create(name="Bench account", owner_id=rep.id)
        stages = services.stages(services.default_pipeline())
        started = time.perf_counter()
        batch = []
        with database.atomic():
            for i in range(count):
                stage = rng.choice(stages)
                batch.append({"name": f"Deal {rng.randrange(10**8):08d}", "account": account.id,
                              "owner_id": owners[i % len(owners)], "pipeline": stage.pipeline_id,
                              "stage": stage.id, "status": stage.kind, "currency": "USD",
                              "amount": rng.randrange(1, 10**6) * 10**4, "probability": stage.probability,
                              "expected_close_date": dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(730)),
                              "created_at": now, "updated_at": now - dt.timedelta(seconds=rng.randrange(10**7)),
                              "stage_changed_at": now, "version": 1})
                if len(batch) == 2000:
                    Opportunity.insert_many(batch).execute()
                    batch = []
            if batch:
                Opportunity.insert_many(batch).execute()
        if url.startswith("postgres"):
            database.execute_sql("ANALYZE")
        else:
            database.execute_sql("ANALYZE")
        print(f"{count:,} opportunities of {len(owners):,} owners written in {time.perf_counter() - started:.0f} s "
              f"({url.split(':')[0]})")
        g.pop("_crm_access", None)
        if os.environ.get("BENCH_EXPLAIN"):
            from crm_core.opportunities import lists
            from crm_core.permissions import engine

            query = lists.ordered(engine().query(rep.id, "opportunity"), "-amount").limit(50)
            sql, params = query.sql()
            print(sql, params)
            print(database.execute_sql("EXPLAIN QUERY PLAN " + sql if not url.startswith("postgres")
                                       else "EXPLAIN ANALYZE " + sql, params).fetchall())
        client = api_client(app, rep)
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            g.pop("_crm_access", None)
            profile = cProfile.Profile()
            profile.enable()
            client.get("/api/v1/opportunities?sort=-amount")
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        for case in CASES:
            query = case.format(stage=stages[1].id)

            def api():
                g.pop("_crm_access", None)
                response = client.get(f"/api/v1/opportunities?{query}")
                assert response.status_code == 200 and response.json["items"], response.json

            from urllib.parse import parse_qsl

            from crm_core.opportunities import lists
            from crm_core.permissions import engine

            args = dict(parse_qsl(query))
            args, _bad = lists.parse_args(args)

            def page():
                # The page's queries through the access engine (its per-request cache warm).
                selected = lists.where(engine().query(rep.id, "opportunity"), args)
                selected.count()
                list(lists.ordered(selected, dict(parse_qsl(query)).get("sort")).paginate(1, 50))

            line = f"{query:<70} API p50 {p50(api):7.1f} ms   page query p50 {p50(page):6.1f} ms"
            if case in PLAIN:
                sql = (f"SELECT * FROM opportunity WHERE owner_id = {rep.id} AND deleted_at IS NULL "
                       f"ORDER BY {PLAIN[case]}, id LIMIT 50")
                line += f"   plain SQL p50 {p50(lambda: database.execute_sql(sql).fetchall()):6.1f} ms"
            print(line)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
