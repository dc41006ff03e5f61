"""Duplicate detection over N contacts (default 100,000) with planted duplicates.

Makes its own data in a fresh SQLite database (or CRM_DATABASE_URL): contacts with
distinct people, then planted copies of some of them, each changed the way people
really enter a record twice: the email in other case and spaces, the phone written
nationally or internationally, a typo in the name, first and last name swapped, a
dropped letter. Runs the scan (keys rebuilt from scratch, exact and fuzzy rules) and
prints its time, recall and precision on the planted pairs; beside it, a plain SQL
GROUP BY on the exact columns (email, phone) over the same table, its time and recall.

    python bench/bench_duplicates.py [--contacts 100000] [--planted 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIRST = ("Anna Maria Katarzyna Małgorzata Agnieszka Barbara Ewa Krzysztof Andrzej Piotr Tomasz Paweł "
         "Michał Marcin Jakub Łukasz Nguyễn Thảo Minh Hương Lan Hoa Tuấn Dũng Hùng Quang Phương Linh "
         "Wei Fang Jing Li Min Hui Jun Lei Yan Tao Ivan Olga Dmitry Sergey Natalia Elena Alexei Irina "
         "Mikhail Svetlana John Mary James Linda Robert Susan David Karen Richard Nancy Thomas Lisa "
         "Charles Emily Daniel Sarah Matthew Laura Andrew Jessica Joseph Helen George Sophie").split()
SYLLABLES = ("ka ko mi ra no vi le ta sa ze do bu ri na lo ve ki mo ha pe ro si ly wa gu ny ch sk "
             "bar den fil gor hin jes kul lom mar nor pol rus sel tom ur vak wen yor zan").split()


def surname(rng):
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.capitalize() + rng.choice(("", "ski", "ova", "son", "er", "ic", "an"))


def typo(rng, word):
    if len(word) < 4:
        return word + rng.choice(string.ascii_lowercase)
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]


def national(phone):
    """+48 601234567 -> 0601 234 567 (the same number written nationally)."""
    digits = phone[4:]
    return f"0{digits[:3]} {digits[3:6]} {digits[6:]}"


def make_data(db, n, planted, seed=2026):
    """Insert ``n`` contacts, ``planted`` of them copies; return {copy id: original id}."""
    from crm_core.accounts.models import Account, Contact
    from crm_core.db import utcnow

    rng = random.Random(seed)
    now = utcnow()
    countries = ("PL", "VN", "RU", "CN", "TW", "DE")
    codes = {"PL": "48", "VN": "84", "RU": "7", "CN": "86", "TW": "886", "DE": "49"}
    accounts = []
    with db.atomic():
        for i in range(200):
            accounts.append(Account.insert(name=f"Bench {i}", owner_id=1, country=countries[i % 6], version=1,
                                           created_at=now, updated_at=now).execute())
    account_country = {a: countries[i % 6] for i, a in enumerate(accounts)}
    originals = n - planted
    rows, people, seen = [], [], set()
    for i in range(originals):
        account = accounts[i % len(accounts)]
        first, last = rng.choice(FIRST), surname(rng)
        while (first, last) in seen:  # distinct people: a planted copy is the only twin
            first, last = rng.choice(FIRST), surname(rng)
        seen.add((first, last))
        email = f"{first.lower()}.{last.lower()}{i}@example.com" if rng.random() < 0.7 else None
        phone = (f"+{codes[account_country[account]]} {rng.randint(100000000, 999999999)}"
                 if rng.random() < 0.6 else None)
        people.append((account, first, last, email, phone))
        rows.append((account, 1, first, last, email, phone, now, now, 1, False, False))
    truth = {}
    variants = ("email", "phone", "typo", "swap", "typo_first")
    copies = []
    for j in range(planted):
        index = rng.randrange(originals)
        account, first, last, email, phone = people[index]
        kind = variants[j % len(variants)]
        c_first, c_last, c_email, c_phone = first, last, None, None
        if kind == "email" and email:
            c_email, c_last = "  " + email.upper(), typo(rng, last)
        elif kind == "phone" and phone and account_country[account] == "PL":
            c_phone = national(phone)
        elif kind == "phone" and phone:
            c_phone = phone.replace(" ", "-")
        elif kind == "typo" or kind in ("email", "phone"):
            c_last = typo(rng, last)
        elif kind == "swap":
            c_first, c_last = last, first
        else:
            c_first = typo(rng, first)
        copies.append((index, (account, 1, c_first, c_last, c_email, c_phone, now, now, 1, False, False)))
    columns = '("account_id", "owner_id", "first_name", "last_name", "email", "phone", "created_at", ' \
              '"updated_at", "version", "do_not_call", "do_not_email")'
    p = db.param
    sql = f'INSERT INTO "contact" {columns} VALUES ({", ".join([p] * 11)})'
    with db.atomic():
        cursor = db.cursor()
        cursor.executemany(sql, [tuple(_db(db, v) for v in row) for row in rows])
        cursor.executemany(sql, [tuple(_db(db, v) for v in row) for _, row in copies])
    ids = [i for (i,) in Contact.select(Contact.id).order_by(Contact.id).tuples()]
    original_ids = ids[:originals]
    for j, (index, _) in enumerate(copies):
        truth[ids[originals + j]] = original_ids[index]
    return truth


def _db(db, value):
    from crm_core.db import UTCDateTimeField

    import datetime as dt

    if isinstance(value, dt.datetime):
        return UTCDateTimeField().db_value(value)
    return value


def cluster_of(truth):
    """record id -> its planted cluster (the original's id)."""
    out = {}
    for copy, original in truth.items():
        out[copy] = original
        out[original] = original
    return out


def measure(pairs, truth):
    """(recall, precision): a planted pair is found when both are in one found group; a found
    pair is right when both records come from one planted cluster."""
    from crm_core.duplicates.scan import components

    root, _ = components(pairs)
    found = sum(1 for copy, original in truth.items() if root(copy) == root(original))
    clusters = cluster_of(truth)
    right = sum(1 for a, b in pairs if a in clusters and clusters.get(a) == clusters.get(b))
    return found / len(truth), (right / len(pairs) if pairs else 1.0)


def raw_group_by(db):
    """The plain SQL over the same table: equal email (lower case, trimmed) or equal phone as
    typed, grouped in the database; the members come back aggregated, no query per group."""
    from crm_core.db import vendor

    aggregate = "STRING_AGG(CAST(id AS TEXT), ',')" if vendor(db) == "postgresql" else "GROUP_CONCAT(id)"
    started = time.perf_counter()
    pairs = set()
    for expression in ("LOWER(TRIM(email))", "phone"):
        for (members,) in db.execute_sql(
                f"SELECT {aggregate} FROM contact WHERE {expression} IS NOT NULL AND deleted_at IS NULL "
                f"GROUP BY {expression} HAVING COUNT(*) > 1"):
            ids = sorted(int(i) for i in members.split(","))
            pairs.update((ids[0], other) for other in ids[1:])
    return time.perf_counter() - started, pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=5_000)
    args = parser.parse_args()

    from crm_core.app import create_app
    from crm_core.testing import base_config, migrate

    folder = Path(tempfile.mkdtemp(prefix="bench-dup-"))
    url = os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{folder / 'bench.sqlite3'}"
    app = create_app(base_config(url, folder))
    migrate(app)
    db = app.extensions["crm_db"]
    with app.app_context(), db.connection_context():
        from crm_core.duplicates.models import DuplicatePair
        from crm_core.duplicates.scan import scan

        started = time.perf_counter()
        truth = make_data(db, args.contacts, args.planted)
        print(f"data: {args.contacts:,} contacts ({args.planted:,} planted copies) in "
              f"{time.perf_counter() - started:.1f}s on {db.__class__.__name__}")

        started, cpu = time.perf_counter(), time.process_time()
        result = scan("contact")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        phases = result["contact"]
        pairs = [(p.low_id, p.high_id) for p in DuplicatePair.select(DuplicatePair.low_id, DuplicatePair.high_id)
                 .where(DuplicatePair.object == "contact")]
        recall, precision = measure(pairs, truth)
        print(f"scan (keys rebuilt + exact + fuzzy names, threshold 90): {seconds:.1f}s wall, {cpu:.1f}s CPU "
              f"(keys {phases['keys_seconds']}s, matching {phases['match_seconds']}s, storing "
              f"{phases['store_seconds']}s), {phases['pairs']:,} pairs, recall {recall:.1%}, "
              f"precision {precision:.1%}")

        cpu = time.process_time()
        raw_seconds, raw_pairs = raw_group_by(db)
        cpu = time.process_time() - cpu
        raw_recall, raw_precision = measure(sorted(raw_pairs), truth)
        print(f"plain SQL GROUP BY on email and phone: {raw_seconds:.2f}s wall, {cpu:.2f}s CPU, "
              f"{len(raw_pairs):,} pairs, "
              f"recall {raw_recall:.1%}, precision {raw_precision:.1%}")
    return 0 if seconds < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
