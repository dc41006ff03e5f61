"""Demo data for the analysis: the demo opportunities' stage history spread over the past
weeks (so velocity shows days, not seconds), a pipeline snapshot of a week ago rebuilt from
that history, and today's, so the trend report has something to tell from the first run."""

from __future__ import annotations

import datetime as dt
import random

WEEK = 7


def load(seed=2026):
    """Idempotent: does nothing once a snapshot exists; returns the snapshot rows written."""
    from crm_core.analysis.models import PipelineSnapshot
    from crm_core.analysis.snapshots import take_snapshot, today
    from crm_core.db import database

    if PipelineSnapshot.select().exists():
        return 0
    rng = random.Random(seed)
    with database.atomic():
        _spread_history(rng)
        written = _snapshot_from_history(today() - dt.timedelta(days=WEEK))
    return written + take_snapshot()


def _spread_history(rng):
    """Give every opportunity's moves believable dates: the first stage 10 to 60 days ago,
    each later move a few days after the one before (the latest no later than yesterday)."""
    from crm_core.db import utcnow
    from crm_core.opportunities.models import Opportunity, StageChange

    now = utcnow()
    moves = {}
    for change in StageChange.select().order_by(StageChange.opportunity, StageChange.changed_at, StageChange.id):
        moves.setdefault(change.opportunity_id, []).append(change)
    for opportunity_id, changes in moves.items():
        when = now - dt.timedelta(days=rng.randint(10, 60), hours=rng.randint(0, 9))
        first = when
        for change in changes:
            StageChange.update(changed_at=when).where(StageChange.id == change.id).execute()
            last = when
            when = min(when + dt.timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 8)),
                       now - dt.timedelta(days=1))
        Opportunity.update(created_at=first, stage_changed_at=last).where(Opportunity.id == opportunity_id).execute()


def _snapshot_from_history(day):
    """The open opportunities as they stood when ``day`` began, from their stage history
    (amounts and dates as they are now: the history of stages is what the demo shows)."""
    from crm_core.analysis.models import PipelineSnapshot
    from crm_core.opportunities.models import Opportunity, Stage, StageChange

    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    stages = {s.id: s for s in Stage.select()}
    rows = []
    for opportunity in Opportunity.alive():
        then = (StageChange.select().where((StageChange.opportunity == opportunity.id)
                                           & (StageChange.changed_at < start))
                .order_by(StageChange.changed_at.desc(), StageChange.id.desc()).first())
        stage = stages.get(then.to_stage_id) if then else None
        if stage is None or stage.kind != "open":
            continue
        rows.append({"day": day, "opportunity": opportunity.id, "owner_id": opportunity.owner_id,
                     "pipeline_id": stage.pipeline_id, "stage_id": stage.id, "status": "open",
                     "currency": opportunity.currency, "amount": opportunity.amount,
                     "probability": then.probability if then.probability is not None else stage.probability,
                     "expected_close_date": opportunity.expected_close_date})
    if rows:
        PipelineSnapshot.insert_many(rows).execute()
    return len(rows)
