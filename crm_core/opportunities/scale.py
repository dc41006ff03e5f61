"""`crm demo --scale`: opportunities by the hundred thousand for benchmarks, with their
accounts and stage history, spread over the generated reps (placed in a department tree),
the pipelines, their stages and a few currencies.

Rows are written the way the importer writes them (executemany on SQLite, COPY on
PostgreSQL), each computed here with every rule a service would apply: the status is the
stage's kind, won and lost deals have a closed date (lost ones a reason), the probability is
the stage's, and the stage history runs through the pipeline's open stages to the current
one, ending at ``stage_changed_at``. Aggregates kept by database triggers follow by
themselves. The same seed gives the same data.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from crm_core.db import database, utcnow, vendor

BATCH = 20_000
REPS_PER_TEAM = 50
# The share of each currency (the demo company sells in its people's markets).
CURRENCIES = (("USD", 40), ("EUR", 20), ("VND", 12), ("PLN", 10), ("CNY", 8), ("TWD", 5), ("RUB", 5))
# Rough amounts in each currency: a deal of 1 "unit" is worth about 1,000 US dollars.
UNIT = {"USD": 1000, "EUR": 900, "VND": 25_000_000, "PLN": 4000, "CNY": 7000, "TWD": 31_000, "RUB": 90_000}
SOURCES = ("web", "referral", "event", "phone", "email", "partner", "advertising", "other")
LOST_REASONS = ("Price", "Competitor", "No budget", "No decision", "Timing")
PRODUCTS = ("Licences", "Renewal", "Support plan", "Rollout", "Pilot", "Upgrade", "Training", "Hardware")
# What a generated deal ends up as: (status, weight).
OUTCOMES = (("open", 60), ("won", 22), ("lost", 18))


def generated_reps():
    """The reps ``crm demo --scale`` generated (rep0000001@demo.example.com...), by id."""
    from crm_core.users.models import User

    return list(User.alive().where(User.email.endswith("@demo.example.com") & User.email.startswith("rep"))
                .order_by(User.id))


def organise(reps, actor_id=None):
    """Put reps without a department into teams of 50 under "Field sales", the first of
    each team its head (a sales manager): the tree the funnel benchmark reads. Returns the
    number of teams made."""
    from crm_core.org import services as org
    from crm_core.org.models import Department

    loose = [rep for rep in reps if rep.department_id is None]
    if not loose:
        return 0
    root = Department.alive().where(Department.name == "Field sales").first() or org.create_department(
        "Field sales", actor_id=actor_id)
    start = Department.select().where(Department.parent == root.id).count()
    teams = 0
    for offset in range(0, len(loose), REPS_PER_TEAM):
        members = loose[offset:offset + REPS_PER_TEAM]
        head = members[0]
        team = org.create_department(f"Field team {start + teams + 1}", parent=root.id, head=head.id,
                                     actor_id=actor_id)
        org.set_roles(head, ["sales_manager", "sales_rep"])
        org.place_user(head, team.id, actor_id=actor_id)
        for rep in members[1:]:
            org.set_roles(rep, ["sales_rep"])
            org.place_user(rep, team.id, manager=head.id, actor_id=actor_id)
        teams += 1
    return teams


def generate(count, owner_ids, seed=2026, today=None, progress=None):
    """Write ``count`` opportunities owned by ``owner_ids`` (with an account each 10 of
    them, owned alike) and their stage history. Returns {"accounts", "opportunities",
    "stage_changes"}."""
    from crm_core.accounts.models import Account
    from crm_core.opportunities import services
    from crm_core.opportunities.models import LostReason, Opportunity, StageChange

    if count <= 0 or not owner_ids:
        return {"accounts": 0, "opportunities": 0, "stage_changes": 0}
    rng = random.Random(seed)
    today = today or dt.date.today()
    pipelines = [(p, services.stages(p)) for p in services.pipelines()]
    pipelines = [(p, stages) for p, stages in pipelines if any(s.kind == "open" for s in stages)]
    reasons = _lost_reasons(LostReason)
    currencies = [code for code, weight in CURRENCIES for _ in range(weight)]
    outcomes = [status for status, weight in OUTCOMES for _ in range(weight)]
    now = utcnow()
    written = {"accounts": 0, "opportunities": 0, "stage_changes": 0}
    with database.atomic(**({"lock_type": "IMMEDIATE"} if vendor() == "sqlite" else {})):
        account_count = max(1, count // 10)
        account_ids = _next_ids(Account, account_count)
        account_owner = {}
        rows = []
        for number, account_id in enumerate(account_ids):
            owner_id = owner_ids[number % len(owner_ids)]
            account_owner[account_id] = owner_id
            rows.append({"id": account_id, "name": f"Scale account {account_id}", "kind": "customer",
                         "owner_id": owner_id, "currency": "USD", "created_at": now, "updated_at": now})
            if len(rows) >= BATCH:
                _write(Account, rows)
                rows = []
        _write(Account, rows)
        written["accounts"] = account_count
        by_owner = {}
        for account_id, owner_id in account_owner.items():
            by_owner.setdefault(owner_id, []).append(account_id)
        done = 0
        while done < count:
            size = min(BATCH, count - done)
            ids = _next_ids(Opportunity, size)
            deals, moves = [], []
            for opportunity_id in ids:
                deal, history = _one(rng, opportunity_id, owner_ids, by_owner, pipelines, currencies, outcomes,
                                     reasons, today)
                deals.append(deal)
                moves.extend(history)
            _write(Opportunity, deals)
            _write(StageChange, moves, with_id=False)
            done += size
            written["stage_changes"] += len(moves)
            if progress:
                progress(done)
        written["opportunities"] = count
    return written


def _one(rng, opportunity_id, owner_ids, by_owner, pipelines, currencies, outcomes, reasons, today):
    """One opportunity's row and its stage history rows."""
    owner_id = owner_ids[rng.randrange(len(owner_ids))]
    accounts = by_owner.get(owner_id)
    account_id = rng.choice(accounts) if accounts else rng.choice(next(iter(by_owner.values())))
    pipeline, stages = pipelines[0] if rng.random() < 0.7 or len(pipelines) == 1 else rng.choice(pipelines[1:])
    open_stages = [s for s in stages if s.kind == "open"]
    status = rng.choice(outcomes)
    closing = [s for s in stages if s.kind == status]
    if status == "open" or not closing:
        status = "open"
        path = open_stages[:rng.randrange(1, len(open_stages) + 1)]
    else:
        path = open_stages[:rng.randrange(1, len(open_stages) + 1)] + [closing[0]]
    stage = path[-1]
    currency = rng.choice(currencies)
    amount = (Decimal(UNIT[currency]) * Decimal(str(round(rng.lognormvariate(2.5, 1.0), 2)))).quantize(
        Decimal("0.01"))
    days = rng.randrange(1, 540)
    started = dt.datetime.combine(today - dt.timedelta(days=days), dt.time(), tzinfo=dt.timezone.utc)
    # Distinct minutes, in order: the history reads the same sorted by time or by id.
    changed = [started + dt.timedelta(minutes=minute)
               for minute in sorted(rng.sample(range(days * 1440), len(path)))]
    closed = changed[-1].date() if status != "open" else None
    deal = {"id": opportunity_id, "name": f"{rng.choice(PRODUCTS)} {opportunity_id}", "account": account_id,
            "owner_id": owner_id, "pipeline": pipeline.id, "stage": stage.id, "status": status,
            "currency": currency, "amount": amount, "probability": stage.probability,
            "expected_close_date": closed or today + dt.timedelta(days=rng.randrange(-30, 240)),
            "closed_date": closed, "source": rng.choice(SOURCES),
            "lost_reason": rng.choice(reasons) if status == "lost" else None,
            "stage_changed_at": changed[-1], "created_at": changed[0], "updated_at": changed[-1],
            "created_by_id": owner_id, "updated_by_id": owner_id}
    history = []
    previous = None
    for step, at in zip(path, changed):
        history.append({"opportunity": opportunity_id, "from_stage": previous, "to_stage": step.id,
                        "changed_at": at, "changed_by_id": owner_id, "currency": currency, "amount": amount,
                        "probability": step.probability})
        previous = step.id
    return deal, history


def _lost_reasons(model):
    from crm_core.opportunities import services

    found = [r.id for r in model.alive().where(model.active == True)]  # noqa: E712
    if found:
        return found
    return [services.create_lost_reason({"name": name, "position": position}).id
            for position, name in enumerate(LOST_REASONS)]


def _next_ids(model, count):
    table = model._meta.table_name
    if vendor() == "postgresql":
        cursor = database.execute_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", (table, count))
        return [row[0] for row in cursor.fetchall()]
    # SQLite: the generator holds the write lock (BEGIN IMMEDIATE), so no one else inserts.
    start = (database.execute_sql(f'SELECT MAX(id) FROM "{table}"').fetchone()[0] or 0) + 1
    return list(range(start, start + count))


def _write(model, rows, with_id=True):
    """``rows`` ({field name: value}, missing ones take the field's default) in one
    executemany (COPY on PostgreSQL)."""
    if not rows:
        return
    import peewee

    from crm_core.customfields.models import CustomValuesField
    from crm_core.db import MoneyField, UTCDateTimeField

    fields = [f for name, f in model._meta.fields.items() if with_id or name != "id"]
    sqlite = vendor() == "sqlite"
    # Only the types whose stored form differs from the Python value are converted (the
    # values generated here are valid by construction: no check is repeated per row).
    plan = []
    for field in fields:
        convert = None
        if isinstance(field, (UTCDateTimeField, MoneyField, CustomValuesField)):
            convert = field.db_value
        elif sqlite and isinstance(field, peewee.DateField):
            convert = dt.date.isoformat
        default = field.default
        plan.append((field.name, default() if callable(default) else default, convert))

    def stored(row):
        out = []
        for name, default, convert in plan:
            value = row.get(name, default)
            out.append(convert(value) if convert is not None and value is not None else value)
        return tuple(out)

    tuples = [stored(row) for row in rows]
    names = ", ".join(f'"{field.column_name}"' for field in fields)
    table = model._meta.table_name
    if sqlite:
        marks = ", ".join("?" for _ in fields)
        database.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', tuples)
        return
    with database.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for values in tuples:
            copy.write_row(values)


SIZES = {"small": (100, 10_000), "large": (1_000, 1_000_000)}


def load(count, seed=2026, progress=None):
    """What ``crm demo`` calls: the generated reps in teams, then ``count`` opportunities
    over them (over the active users who are no administrators when none were generated)."""
    from crm_core.users.models import User

    reps = generated_reps()
    teams = organise(reps)
    owners = [rep.id for rep in reps] or [u.id for u in User.alive().where(
        (User.active == True) & (User.is_admin == False)).order_by(User.id)]  # noqa: E712
    written = generate(count, owners, seed=seed + count, progress=progress)
    return {**written, "teams": teams}


def missing(size):
    """(reps, opportunities) still to generate for a named size ("small", "large"): a
    second ``crm demo --scale large`` adds nothing."""
    from crm_core.opportunities.models import Opportunity

    reps, opportunities = SIZES[size]
    return max(0, reps - len(generated_reps())), max(0, opportunities - Opportunity.select().count())
