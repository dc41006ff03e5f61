"""Assignment rules on an import: the compiled proposer over N generated lead rows.

Builds a fresh SQLite instance with 12 rules (countries, industries, sources, a campaign)
and a round-robin group of 20 reps with a capacity, then times ``propose(values)`` over
N rows (default 1,000,000) and prints rows/s. Beside it, the raw figure for the same work:
the same decisions made by a hand-written chain of ifs over the same rows (the floor for
pure Python), and a plain ``executemany`` of the rows into the indexed lead table.

    python bench/assignment_propose.py [N]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time


def main(count=1_000_000):
    from crm_core.app import create_app
    from crm_core.testing import base_config, make_user, migrate

    folder = tempfile.mkdtemp()
    app = create_app(base_config(f"sqlite:///{folder}/bench.sqlite3", folder))
    with app.app_context():
        migrate(app)
        from crm_core.assignment import services as assignment
        from crm_core.assignment.engine import compile_rules
        from crm_core.db import database

        reps = [make_user(f"rep{i}@example.com", f"Rep {i}", password=None).id for i in range(20)]
        group = assignment.create_group("Everyone", [{"user_id": r} for r in reps], capacity=10**6)
        countries = ["VN", "PL", "CN", "TW", "RU", "GB", "DE", "FR", "US", "JP"]
        industries = ["Retail", "Mining", "Food", "Software", "Energy", "Transport"]
        for i, country in enumerate(countries[:8]):
            assignment.create_rule("lead", {"name": f"{country} retail", "owner_id": reps[i], "conditions": [
                {"field": "country", "op": "equals", "value": country},
                {"field": "industry", "op": "in", "value": ["Retail", "Food"]}]})
        assignment.create_rule("lead", {"name": "Web", "owner_id": reps[10], "conditions": [
            {"field": "source", "op": "equals", "value": "web"}]})
        assignment.create_rule("lead", {"name": "Campaign 7", "owner_id": reps[11], "conditions": [
            {"field": "campaign_id", "op": "equals", "value": 7}]})
        assignment.create_rule("lead", {"name": "Big regions", "owner_id": reps[12], "conditions": [
            {"field": "region", "op": "starts_with", "value": "North"}]})
        assignment.create_rule("lead", {"name": "The rest", "group_id": group.id})
        rng = random.Random(5)
        rows = [{"last_name": f"L{i}", "country": rng.choice(countries), "industry": rng.choice(industries),
                 "source": rng.choice(["web", "event", "phone", "email"]), "campaign_id": rng.randint(1, 40),
                 "region": rng.choice(["North", "South", "East", None])} for i in range(count)]

        started = time.perf_counter()
        with compile_rules("lead", for_creation=True) as proposer:
            owners = [proposer.propose(row) for row in rows]
        took = time.perf_counter() - started
        print(f"compiled proposer: {count:,} rows in {took:.2f} s = {count / took:,.0f} rows/s "
              f"({sum(o is not None for o in owners):,} assigned)")

        # Raw: the same decisions written out by hand (no rule engine at all).
        started = time.perf_counter()
        turn = 0
        for row in rows:
            country, industry = row["country"], row["industry"]
            if country in countries[:8] and industry in ("Retail", "Food"):
                continue
            if row["source"] == "web" or row["campaign_id"] == 7 or (row["region"] or "").startswith("North"):
                continue
            turn += 1
        raw = time.perf_counter() - started
        print(f"raw Python ifs:    {count:,} rows in {raw:.2f} s = {count / raw:,.0f} rows/s")

        sample = min(count, 200_000)
        data = [(1, 1, r["last_name"], r["country"], r["industry"], r["source"], o or reps[0], "new")
                for r, o in zip(rows[:sample], owners[:sample])]
        connection = database.connection()
        started = time.perf_counter()
        with database.atomic():
            connection.executemany(
                "INSERT INTO lead (version, created_by_id, last_name, country, industry, source, owner_id, status, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '2026-01-01', '2026-01-01')", data)
        insert = time.perf_counter() - started
        print(f"raw executemany:   {sample:,} rows in {insert:.2f} s = {sample / insert:,.0f} rows/s "
              "(insert into the indexed lead table)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
