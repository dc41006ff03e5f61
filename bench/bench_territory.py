"""Territory realignment over N accounts (default 100,000): the preview, then the job, on
a first alignment (every record placed anew) and after the plan changed (records move),
beside the raw database placing the same records with one INSERT ... SELECT of a CASE.

    .venv/bin/python bench/bench_territory.py [--accounts 100000] [--leads 10000] [--database-url URL]

Makes its own data (a fresh SQLite file unless --database-url names an empty database):
accounts in Vietnam (regions), Greater China, Poland (postal codes, head counts), Russia,
Germany and the USA, written by one executemany per 50,000 rows; an active model of 15
territories four levels deep (World > Asia > Vietnam > North/South/Central, Greater
China; Europe > Poland > Warsaw large/small, Russia, DACH; Americas by industry).

"ours" is crm_territory.realign: ``preview`` (what would move, computed now) and ``start``
(the job, run inline here as the tests run it: same code as the worker) reading the
records' values as tuples in batches, placing them in Python, writing the changes with
executemany (COPY on PostgreSQL). "raw" is the database alone doing the same placement:
the tree compiled by hand into a nested CASE, ``INSERT INTO ... SELECT`` into a scratch
table (which the run checks against ours, record by record).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COUNTRIES = [("VN", 30), ("CN", 10), ("TW", 5), ("PL", 20), ("RU", 10), ("DE", 10), ("US", 10), ("BR", 5)]
REGIONS = {"VN": ["Hà Nội", "Hải Phòng", "Hồ Chí Minh", "Cần Thơ", "Đà Nẵng", "Huế"],
           "PL": ["Mazowieckie", "Małopolskie", "Pomorskie"], "RU": ["Москва", "Санкт-Петербург"]}
INDUSTRIES = ["Retail", "Manufacturing", "Construction", "Logistics", "Software"]


def tree(first):
    """(name, parent name, criteria, position): the plan; ``first`` False is the plan changed
    afterwards (Central Vietnam joins North; Warsaw's postal range grows; a new root
    "Key retail" before World takes large retailers)."""
    plan = [
        ("World", None, {}, 1),
        ("Asia", "World", {"country": ["VN", "CN", "TW"]}, 0),
        ("Vietnam", "Asia", {"country": ["VN"]}, 0),
        ("North Vietnam", "Vietnam", {"region": ["Hà Nội", "Hải Phòng"] + ([] if first else ["Đà Nẵng", "Huế"])}, 0),
        ("South Vietnam", "Vietnam", {"region": ["Hồ Chí Minh", "Cần Thơ"]}, 1),
        ("Central Vietnam", "Vietnam", {"region": ["Đà Nẵng", "Huế"]}, 2),
        ("Greater China", "Asia", {"country": ["CN", "TW"]}, 1),
        ("Europe", "World", {"country": ["PL", "RU", "DE"]}, 1),
        ("Poland", "Europe", {"country": ["PL"]}, 0),
        ("Warsaw, large", "Poland", {"postal_code": [["00-001", "04-999" if first else "05-999"]],
                                     "employees": {"min": 250}}, 0),
        ("Warsaw, small", "Poland", {"postal_code": [["00-001", "04-999" if first else "05-999"]]}, 1),
        ("Russia", "Europe", {"country": ["RU"]}, 1),
        ("DACH", "Europe", {"country": ["DE", "AT", "CH"]}, 2),
        ("Americas", "World", {"country": ["US", "BR"]}, 2),
        ("Americas retail", "Americas", {"industry": ["Retail"]}, 0),
    ]
    if not first:
        plan.append(("Key retail", None, {"industry": ["Retail"], "employees": {"min": 1000}}, 0))
    return plan


def build(accounts, leads, owners):
    from crm_core.accounts.models import Account
    from crm_core.db import database, utcnow

    rng = random.Random(7)
    stamp = Account.created_at.db_value(utcnow())
    p = database.param
    weights = [w for _, w in COUNTRIES]
    names = [c for c, _ in COUNTRIES]

    def values():
        country = rng.choices(names, weights)[0]
        region = rng.choice(REGIONS[country]) if country in REGIONS else None
        postal = f"{rng.randint(0, 99):02d}-{rng.randint(0, 999):03d}" if country == "PL" else None
        return country, region, postal, rng.choice(INDUSTRIES), rng.choice((5, 40, 300, 2000))

    columns = ["name", "kind", "owner_id", "country", "region", "postal_code", "industry", "employees",
               "version", "created_at", "updated_at", "custom"]
    sql = f'INSERT INTO "account" ({", ".join(columns)}) VALUES ({", ".join([p] * len(columns))})'
    lead_columns = ["last_name", "company", "owner_id", "country", "region", "industry", "status", "version",
                    "created_at", "updated_at", "custom"]
    lead_sql = f'INSERT INTO "lead" ({", ".join(lead_columns)}) VALUES ({", ".join([p] * len(lead_columns))})'
    started = time.perf_counter()
    for table_sql, count, row in ((sql, accounts, lambda i, v: (f"Firma {i}", "prospect", owners[i % len(owners)],
                                                                 *v, 1, stamp, stamp, "{}")),
                                  (lead_sql, leads, lambda i, v: (f"Lê {i}", f"Firma {i}", owners[i % len(owners)],
                                                                  v[0], v[1], v[3], "new", 1, stamp, stamp, "{}"))):
        batch = []
        for i in range(count):
            batch.append(row(i, values()))
            if len(batch) == 50_000 or i == count - 1:
                with database.atomic():
                    database.cursor().executemany(table_sql, batch)
                batch = []
    database.execute_sql("ANALYZE")
    say(f"data: {accounts:,} accounts and {leads:,} leads in {time.perf_counter() - started:.1f} s")


def make_model(first, model=None):
    from crm_territory import services

    if model is None:
        model = services.create_model("Bench")
    ids = {}
    existing = {t.name: t for t in services.territories_of_model(model.id)}
    for name, parent, criteria, position in tree(first):
        parent_id = ids.get(parent)
        if name in existing:
            services.update_territory(existing[name], {"criteria": criteria, "position": position,
                                                       "parent_id": parent_id})
            ids[name] = existing[name].id
        else:
            ids[name] = services.create_territory(model.id, name, parent_id=parent_id, criteria=criteria,
                                                  position=position).id
    return model, ids


# -- the raw database ---------------------------------------------------------------------------------------

def _condition(criteria, object_name):
    parts = []
    for key, value in criteria.items():
        if object_name == "lead" and key in ("postal_code", "employees"):
            continue
        if key in ("country", "region", "industry"):
            parts.append(f"{key} IN ({', '.join(repr(v) for v in value)})")
        elif key == "postal_code":
            parts.append("(" + " OR ".join(f"REPLACE(postal_code, ' ', '') BETWEEN '{low}' AND '{high}'"
                                           for low, high in value) + ")")
        elif key == "employees":
            if "min" in value:
                parts.append(f"employees >= {value['min']}")
            if "max" in value:
                parts.append(f"employees <= {value['max']}")
    return " AND ".join(parts) or "1 = 1"


def case_sql(first, ids, object_name):
    """The walk as SQL: CASE over the roots, each a nested CASE over its children."""
    plan = sorted(tree(first), key=lambda t: t[3])
    children = {}
    for name, parent, criteria, _position in plan:
        children.setdefault(parent, []).append((name, criteria))

    def level(parent, fallback):
        branches = children.get(parent, [])
        if not branches:
            return fallback
        whens = " ".join(f"WHEN {_condition(c, object_name)} THEN {level(n, ids[n])}" for n, c in branches)
        return f"CASE {whens} ELSE {fallback} END"

    return level(None, "NULL")


def raw_placement(db, first, ids, model_id):
    db.execute_sql("DROP TABLE IF EXISTS bench_raw_placement")
    db.execute_sql("CREATE TABLE bench_raw_placement (model_id INTEGER, object VARCHAR(32), record_id INTEGER, "
                   "territory_id INTEGER, source VARCHAR(8))")
    started = time.perf_counter()
    with db.atomic():
        for object_name, table in (("account", "account"), ("lead", "lead")):
            db.execute_sql(f"INSERT INTO bench_raw_placement SELECT {model_id}, '{object_name}', id, t, 'rule' FROM "
                           f"(SELECT id, {case_sql(first, ids, object_name)} AS t FROM \"{table}\" "
                           f"WHERE deleted_at IS NULL) placed WHERE t IS NOT NULL")
    return time.perf_counter() - started


def differences(db, model_id):
    """Records placed differently by ours and by the raw SQL (checked, not timed)."""
    db.execute_sql("CREATE INDEX bench_raw_placement_record ON bench_raw_placement (object, record_id)")
    query = ("SELECT COUNT(*) FROM bench_raw_placement r FULL OUTER JOIN (SELECT * FROM territory_record "
             "WHERE model_id = {m}) o ON o.object = r.object AND o.record_id = r.record_id "
             "WHERE o.territory_id IS DISTINCT FROM r.territory_id")
    from crm_core.db import vendor

    if vendor(db) == "sqlite":
        # SQLite has no FULL OUTER JOIN before 3.39: both directions of a LEFT JOIN.
        one = ("SELECT COUNT(*) FROM bench_raw_placement r LEFT JOIN territory_record o ON o.model_id = {m} "
               "AND o.object = r.object AND o.record_id = r.record_id WHERE o.territory_id IS NOT r.territory_id")
        two = ("SELECT COUNT(*) FROM territory_record o LEFT JOIN bench_raw_placement r ON o.object = r.object "
               "AND o.record_id = r.record_id WHERE o.model_id = {m} AND r.record_id IS NULL")
        return sum(db.execute_sql(q.format(m=model_id)).fetchone()[0] for q in (one, two))
    return db.execute_sql(query.format(m=model_id)).fetchone()[0]


def say(text):
    print(text, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("CRM_DATABASE_URL"))
    args = parser.parse_args()

    from crm_core.app import create_app
    from crm_core.testing import base_config, make_user, migrate

    folder = Path(tempfile.mkdtemp(prefix="bench-territory-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    app = create_app(base_config(url, folder))
    migrate(app)
    db = app.extensions["crm_db"]
    # No connection_context around the run: the job opens and closes its own, as in the worker.
    with app.app_context():
        from crm_core.db import vendor
        from crm_territory import realign, services
        from crm_territory.models import TerritoryRealignment

        admin = make_user("admin@example.com", "Admin", password=None, is_admin=True)
        owners = [make_user(f"rep{i}@example.com", f"Rep {i}", password=None).id for i in range(50)]
        build(args.accounts, args.leads, owners)
        model, ids = make_model(first=True)
        services.activate_model(model)
        total = args.accounts + args.leads
        say(f"{vendor()}: {total:,} records, a model of {len(ids)} territories, realign_batch "
              f"{realign.batch_size():,}")
        results = []
        for first in (True, False):
            if not first:
                model, ids = make_model(first=False, model=model)
            label = "first alignment" if first else "after the plan changed"
            started, preview_cpu = time.perf_counter(), time.process_time()
            run, sample = realign.preview(model, admin.id)
            preview_seconds, preview_cpu = time.perf_counter() - started, time.process_time() - preview_cpu
            started, cpu = time.perf_counter(), time.process_time()
            run = realign.start(model, admin.id)
            job_seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            run = TerritoryRealignment.get_by_id(run.id)
            raw_seconds = raw_placement(db, first, ids, model.id)
            wrong = differences(db, model.id)
            results.append(job_seconds)
            say(f"{label}: preview {preview_seconds:.2f} s wall, {preview_cpu:.2f} s CPU ({run.moved:,} would move, sample of {len(sample)}); "
                  f"job {job_seconds:.2f} s wall, {cpu:.2f} s CPU, state {run.state}, {run.examined:,} examined, "
                  f"{run.moved:,} moved ({total / job_seconds:,.0f} records/s); raw INSERT ... SELECT CASE "
                  f"{raw_seconds:.2f} s; records placed differently from the raw SQL: {wrong}")
        db.execute_sql("DROP TABLE IF EXISTS bench_raw_placement")
    return 0 if max(results) < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
