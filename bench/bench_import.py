"""Import of a lead CSV on SQLite (issue 5's benchmark), beside a plain executemany.

    .venv/bin/python bench/bench_import.py [--rows 1000000] [--database postgresql://...]

Generates the file itself (names, companies, emails, countries, sources, an owner column
naming 20 reps by email, a campaign by name, an external id on half the rows), imports it
as a sales manager through the whole pipeline (reading and decoding, per-column
converters, relations, external-id and row-hash duplicate keys, owners, a money custom
field, duplicate matching under "block" and the exact match keys of every new row, the
assignment rules' round robin for the quarter of rows naming no owner and their owners'
notifications, batched inserts in one transaction), times the job that stores the name
keys afterwards, imports the file again (every row a known duplicate), and for
comparison inserts the same rows with one plain ``executemany`` into the same indexed
table, with and without the same match keys. Prints rows per second (and per CPU second
of this process, which a busy machine disturbs less) for each.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIRST = ["Thảo", "Jan", "Anna", "Иван", "伟", "Minh", "Piotr", "Olga", "志明", "Maria"]
LAST = ["Nguyễn", "Kowalski", "Müller", "Иванов", "王", "Trần", "Nowak", "Smirnova", "陳", "García"]
COMPANY = ["Minh An", "Budimex", "Siemens", "Ромашка", "华为", "Sông Hồng", "Orlen", "Газпром", "台積電", "Inditex"]
COUNTRIES = ["VN", "PL", "DE", "RU", "CN", "TW", "ES", "FR"]
SOURCES = ["web", "referral", "event", "phone", "email", "partner", "advertising", "other"]


def make_csv(rows, reps):
    random.seed(5)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["external_id", "first_name", "last_name", "company", "email", "phone", "country",
                     "industry", "source", "status", "owner", "campaign", "custom.budget"])
    for i in range(rows):
        writer.writerow([f"EXT-{i}" if i % 2 else "", random.choice(FIRST), f"{random.choice(LAST)} {i}",
                         random.choice(COMPANY), f"lead{i}@example.com", f"+84 90 {i:07d}",
                         random.choice(COUNTRIES), "Retail", random.choice(SOURCES), "new",
                         "" if i % 4 == 0 else reps[i % len(reps)], "Vietbuild 2026",
                         f"{i % 5000}.{i % 100:02d}"])
    return buffer.getvalue().encode("utf-8")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default=None, help="default: a new SQLite file")
    args = parser.parse_args()

    from crm_core.app import create_app
    from crm_core.testing import migrate

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    url = args.database or f"sqlite:///{folder / 'crm.sqlite3'}"
    app = create_app({"CRM_ENV": "test", "CRM_SECRET_KEY": secrets.token_urlsafe(32),
                      "CRM_INSTANCE_PATH": str(folder), "CRM_DATABASE_URL": url,
                      "CRM_IMPORT_MAX_ROWS": max(args.rows, 1), "CRM_IMPORT_MAX_MB": 1024})
    with app.app_context():
        from crm_core.db import database, vendor
        from crm_core.imports.pipeline import Importer
        from crm_core.imports.reading import Limits, read
        from crm_core.imports.registry import import_objects
        from crm_core.leads import services as leads
        from crm_core.leads.models import Lead
        from crm_core.org import services as org
        from crm_core.testing import make_user

        migrate(app)
        from crm_core.testing import reset_database
        reset_database(database.obj)
        manager = make_user("manager@example.com", "Manager", password=None)
        org.set_roles(manager, ["sales_manager"])
        sales = org.create_department("Sales", head=manager.id)
        reps = []
        for n in range(20):
            rep = make_user(f"rep{n}@example.com", f"Rep {n}", password=None)
            org.set_roles(rep, ["sales_rep"])
            org.place_user(rep, sales.id)
            reps.append(rep.email)
        leads.create_campaign({"name": "Vietbuild 2026"}, actor_id=manager.id)
        from crm_core.assignment import services as assignment
        from crm_core.customfields import services as custom_fields
        from crm_core.customfields.registry import clear_cache
        from crm_core.duplicates import rules as duplicates
        from crm_core.users.models import User

        custom_fields.create_field({"object": "lead", "key": "budget", "type": "money", "currency": "EUR",
                                    "labels": {"en": "Budget"}})
        clear_cache()
        duplicates.save_settings("lead", "block", list(duplicates.spec_of("lead").default_rules))
        group = assignment.create_group("Reps", [{"user_id": u.id} for u in
                                                 User.select().where(User.email.in_(reps)).order_by(User.id)])
        assignment.create_rule("lead", {"name": "Poland", "owner_id": manager.id,
                                        "conditions": [{"field": "country", "op": "equals", "value": "PL"}]})
        assignment.create_rule("lead", {"name": "Everyone else", "group_id": group.id})

        data = make_csv(args.rows, reps)
        print(f"{args.rows:,} rows, {len(data) / 1e6:.1f} MB of CSV, {vendor()}")
        spec = import_objects()["lead"]
        limits = Limits(max_bytes=1 << 30, max_rows=args.rows)

        def timed_import(label):
            started, cpu = time.perf_counter(), time.process_time()
            table = read(data, "leads.csv", limits)
            result = Importer(spec, manager.id, table.header).run(table.rows)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"{label}: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s "
                  f"({cpu:.1f} s of CPU in this process: {args.rows / cpu:,.0f} rows per CPU second; "
                  f"created {result.created:,}, skipped {result.skipped:,}, updated {result.updated:,}, "
                  f"refused {result.refused:,})")
            return seconds

        timed_import("import (validation, custom field, duplicate keys, assignment rules, insert)")
        assert Lead.select().count() == args.rows
        # The name keys are left to a job after the commit (core.store_name_keys):
        # timed here on its own, as the worker would run it.
        from crm_core.duplicates.keys import store_name_keys

        first, last = database.execute_sql('SELECT MIN("id"), MAX("id") FROM "lead"').fetchone()
        started = time.perf_counter()
        store_name_keys("lead", first, last)
        seconds = time.perf_counter() - started
        print(f"the job storing their name keys afterwards: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s")
        timed_import("the same file again (every row a duplicate)")

        # The raw figure: the same rows as tuples, one executemany, same indexed table.
        columns = [c for c in database.get_columns("lead") if c.name != "id"]
        names = [c.name for c in columns]
        rows = [tuple(r) for r in Lead.select(*[getattr(Lead, Lead._meta.columns[n].name) for n in names])
                .tuples().iterator()]
        # The keys the import itself writes (the name keys come later, in their job).
        keys = database.execute_sql('SELECT "object", "record_id", "kind", "value" FROM "match_key" '
                                    "WHERE \"kind\" NOT IN ('name', 'block')").fetchall()
        database.execute_sql('DELETE FROM "imported_row"')
        database.execute_sql('DELETE FROM "match_key"')
        database.execute_sql('DELETE FROM "lead"')
        # The tuples are built before the clock starts: the figure is the database's own.
        prepared = [tuple(_raw(v) for v in row) for row in rows]
        mark = "%s" if vendor() == "postgresql" else "?"
        marks = ", ".join([mark] * len(names))
        started, cpu = time.perf_counter(), time.process_time()
        with database.atomic():
            database.cursor().executemany(
                f'INSERT INTO "lead" ({", ".join(chr(34) + n + chr(34) for n in names)}) VALUES ({marks})',
                prepared)
            database.cursor().executemany(
                f'INSERT INTO "match_key" ("object", "record_id", "kind", "value") VALUES ({mark}, {mark}, {mark}, {mark})',
                keys)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"raw executemany of the same rows and their {len(keys):,} match keys: {seconds:.1f} s, "
              f"{args.rows / seconds:,.0f} rows/s ({args.rows / cpu:,.0f} rows per CPU second)")
        database.execute_sql('DELETE FROM "match_key"')
        database.execute_sql('DELETE FROM "lead"')
        started, cpu = time.perf_counter(), time.process_time()
        with database.atomic():
            database.cursor().executemany(
                f'INSERT INTO "lead" ({", ".join(chr(34) + n + chr(34) for n in names)}) VALUES ({marks})',
                prepared)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"raw executemany of the same rows alone: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s "
              f"({args.rows / cpu:,.0f} rows per CPU second)")


def _raw(value):
    import datetime as dt

    if isinstance(value, dict):
        from crm_core.customfields import dumps

        return dumps(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


if __name__ == "__main__":
    main()
