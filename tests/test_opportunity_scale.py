"""`crm demo --scale`: generated opportunities keep every opportunity invariant, have their
stage history, spread over owners, pipelines, stages and currencies, and are readable
through the access rules like any other (a rep sees their team's, not another team's)."""

import datetime as dt

from flask import g

from crm_core.opportunities import scale
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Stage, StageChange
from crm_core.permissions import engine
from crm_core.users.models import User


def test_generated_opportunities_keep_the_rules_and_their_history(app):
    from crm_core.demo import _generate_users

    _generate_users("Quartz-Lantern-Otter-91", 60, 7)
    opps.create_pipeline({"name": "Renewals", "stages": [
        {"name": "Due", "probability": 50}, {"name": "Renewed", "kind": "won", "probability": 100}]})
    counts = scale.load(600, seed=7)
    assert (counts["opportunities"], counts["accounts"], counts["teams"]) == (600, 60, 2)
    stages = {s.id: s for s in Stage.select()}
    deals = list(Opportunity.select())
    assert len(deals) == 600
    for deal in deals:
        stage = stages[deal.stage_id]
        assert stage.pipeline_id == deal.pipeline_id and deal.status == stage.kind
        assert deal.probability == stage.probability
        assert (deal.closed_date is not None) == (deal.status != "open")
        assert (deal.lost_reason_id is not None) == (deal.status == "lost")
        assert deal.account.owner_id is not None and deal.amount > 0
    history = {}
    for change in StageChange.select().order_by(StageChange.changed_at, StageChange.id):
        history.setdefault(change.opportunity_id, []).append(change)
    for deal in deals:
        moves = history[deal.id]
        assert moves[0].from_stage_id is None and moves[-1].to_stage_id == deal.stage_id
        assert all(a.to_stage_id == b.from_stage_id for a, b in zip(moves, moves[1:]))
        assert moves[-1].changed_at == deal.stage_changed_at
    assert {d.status for d in deals} == {"open", "won", "lost"}
    assert len({d.currency for d in deals}) >= 5 and len({d.pipeline_id for d in deals}) == len(opps.pipelines()) >= 2
    assert len({d.owner_id for d in deals}) == 60

    # Teams of 50: a rep sees the deals of nobody else's team; the head sees the team's.
    reps = scale.generated_reps()
    head, rep, outsider = reps[0], reps[1], reps[50]
    g.pop("_crm_access", None)
    visible = {d.owner_id for d in engine().query(rep.id, "opportunity")}
    assert visible == {rep.id}
    team = {d.owner_id for d in engine().query(head.id, "opportunity")}
    assert team == {r.id for r in reps[:50]} and outsider.id not in team


def test_a_named_size_tops_up_to_its_size(app):
    assert scale.missing("small") == (100, 10_000)
    from crm_core.demo import _generate_users

    _generate_users("Quartz-Lantern-Otter-91", 10, 7)
    scale.load(30, seed=1)
    assert scale.missing("small") == (90, 9_970)
    assert scale.generate(0, [1]) == {"accounts": 0, "opportunities": 0, "stage_changes": 0}


def test_dates_are_in_the_past_and_close_dates_follow_the_history(app):
    owner = User.create(email="rep0000001@demo.example.com", name="Rep", password_hash="x", locale="en",
                        timezone="UTC", active=True, is_admin=False, version=1)
    today = dt.date(2026, 6, 1)
    scale.generate(50, [owner.id], seed=3, today=today)
    for deal in Opportunity.select():
        assert deal.created_at.date() <= today and deal.stage_changed_at.date() <= today
        if deal.closed_date:
            assert deal.closed_date == deal.stage_changed_at.date()
