"""Demo opportunities: a second pipeline (the core's standard one comes from the hook),
the company's lost reasons, and about forty deals of the demo accounts across reps,
stages and currencies, with their teams and a stage history walked step by step."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

SOLUTIONS = ("solutions", "Solution sales", (
    ("Prospecting", 10, "open"), ("Identification", 20, "open"), ("Needs Analysis", 35, "open"),
    ("Proposal", 55, "open"), ("Negotiation", 75, "open"), ("Contract", 100, "won"), ("Lost", 0, "lost")))
LOST_REASONS = ("Price", "Competitor", "No budget", "No decision", "Timing")
CURRENCIES = {"VN": ("VND", 50_000_000, 2_000_000_000), "PL": ("PLN", 8_000, 400_000),
              "CN": ("CNY", 20_000, 1_500_000), "TW": ("TWD", 100_000, 6_000_000),
              "RU": ("RUB", 200_000, 15_000_000), "GB": ("GBP", 2_000, 150_000)}
# What the deals are about: (name, source).
TOPICS = (("Warehouse management system", "referral"), ("ERP upgrade", "partner"), ("Field service app", "web"),
          ("Annual support contract", "phone"), ("Data centre migration", "event"), ("Sales training", "email"),
          ("Fleet telematics", "advertising"), ("Security audit", "referral"))


def load(seed=2026):
    """Idempotent: returns how many opportunities it made (0 when they are there already)."""
    from crm_core.accounts.models import Account
    from crm_core.opportunities import services
    from crm_core.opportunities.models import LostReason, Opportunity, Pipeline

    rng = random.Random(seed)
    if not Pipeline.alive().where(Pipeline.key == SOLUTIONS[0]).exists():
        services.create_pipeline({"key": SOLUTIONS[0], "name": SOLUTIONS[1], "position": 1, "stages": [
            {"name": name, "probability": probability, "kind": kind} for name, probability, kind in SOLUTIONS[2]]})
    for position, name in enumerate(LOST_REASONS):
        if not LostReason.alive().where(LostReason.name == name).exists():
            services.create_lost_reason({"name": name, "position": position})
    if Opportunity.alive().where(Opportunity.external_id.startswith("demo-")).exists():
        return 0
    pipelines = services.pipelines()
    reasons = services.lost_reasons()
    today = dt.date.today()
    made = 0
    accounts = list(Account.alive().where(Account.country.in_(list(CURRENCIES))).order_by(Account.id))
    for index, account in enumerate(accounts):
        currency, low, high = CURRENCIES[account.country]
        for number in range(4 if index % 3 else 3):
            topic, source = TOPICS[(index + number) % len(TOPICS)]
            pipeline = pipelines[(index + number) % len(pipelines)]
            stages = services.stages(pipeline)
            target = rng.choice(stages)
            amount = Decimal(rng.randrange(low, high)).quantize(Decimal(1)) // 1000 * 1000
            deal = services.create_opportunity({
                "name": f"{topic} · {account.name}"[:200], "account_id": account.id, "owner_id": account.owner_id,
                "pipeline_id": pipeline.id, "currency": currency, "amount": amount, "source": source,
                "expected_close_date": today + dt.timedelta(days=rng.randrange(-30, 180)),
                "next_step": "Call the decision maker" if target.kind == "open" else None,
                "competitors": "Acme Software\nGlobex" if number % 2 else None,
                "external_id": f"demo-{account.id}-{number}"}, actor_id=account.owner_id)
            _walk(deal, stages, target, reasons, rng)
            _team(deal)
            made += 1
    return made


def _walk(deal, stages, target, reasons, rng):
    """Move the deal through the open stages before ``target``, then into it."""
    from crm_core.opportunities import services

    steps = [s for s in stages if s.kind == "open" and s.position < target.position and s.id != deal.stage_id]
    if target.kind == "lost":
        steps = steps[:rng.randrange(0, len(steps) + 1)]
    for stage in [*steps, target]:
        if stage.id == deal.stage_id:
            continue
        extra = {"lost_reason_id": rng.choice(reasons).id, "lost_note": "Chose a cheaper offer."} \
            if stage.kind == "lost" else {}
        services.move(deal, stage.id, actor_id=deal.owner_id, **extra)


def _team(deal):
    """The owner's manager sponsors the deal; a colleague of the same department helps presales."""
    from crm_core.opportunities import services
    from crm_core.permissions import engine
    from crm_core.users.models import User

    org = engine().organisation()
    manager = org.manager_of(deal.owner_id)
    if manager is not None and manager != deal.owner_id:
        services.add_member(deal, {"user_id": manager, "role": "executive_sponsor", "access": "read"})
    department = org.user_department.get(deal.owner_id)
    colleague = (User.select(User.id).where((User.department == department) & (User.id != deal.owner_id)
                                            & (User.id != (manager or 0)) & (User.active == True))  # noqa: E712
                 .order_by(User.id).first()) if department else None
    if colleague is not None:
        services.add_member(deal, {"user_id": colleague.id, "role": "presales", "access": "edit"})
