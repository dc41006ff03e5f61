"""Change approval of opportunities: which changes the company's thresholds hold, the
approved values the row keeps meanwhile (what the funnel and forecast read), approving
through update_opportunity (stage gates included), rejecting, superseding, stale and
concurrent decisions, who needs no approval, the ``ext.approval`` part and the panel."""

import datetime
import json
from decimal import Decimal

import pytest
from flask import g

from crm_core import hookimpl
from crm_core.accounts import services as accounts
from crm_core.api.ext import record_ext
from crm_core.approvals import services as approvals
from crm_core.approvals.models import ApprovalRequest, ApprovalStep
from crm_core.errors import UserError
from crm_core.notifications.models import Notification
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage, StageChange
from crm_core.opportunities.transitions import StageRequirements
from crm_core.org import services as org
from crm_core.org.models import FieldRule
from crm_core.records import update_record
from crm_core.testing import make_sales_team, make_user

KIND = "opportunity_change"


@pytest.fixture
def team(app):
    people = make_sales_team()
    approvals.set_policy(KIND, {"active": True})
    return people


@pytest.fixture
def deal(team):
    account = accounts.create_account({"name": "Minh An"}, actor_id=team["rita"].id)
    return opps.create_opportunity({"name": "Warehouse racks", "account_id": account.id,
                                    "amount": Decimal("1000"),
                                    "expected_close_date": datetime.date(2026, 6, 30)}, actor_id=team["rita"].id)


def stage(key, pipeline_key="sales"):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == pipeline_key)))


def fresh(deal):
    return Opportunity.get_by_id(deal.id)


def pending(deal):
    return approvals.pending_of("opportunity", deal.id)


def test_a_change_within_the_thresholds_applies_at_once(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("1150"), "probability": 25,
                                   "expected_close_date": datetime.date(2026, 7, 20)}, actor_id=team["rita"].id)
    row = fresh(deal)
    assert (row.amount, row.probability, row.expected_close_date) == (Decimal("1150"), 25, datetime.date(2026, 7, 20))
    assert pending(deal) == [] and Notification.select().count() == 0


def test_a_change_beyond_a_threshold_is_held_and_the_rest_applies(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("1500"), "next_step": "Call the buyer"},
                            actor_id=team["rita"].id)
    row = fresh(deal)
    # The row (what lists, the funnel and the forecast read) keeps the approved amount.
    assert row.amount == Decimal("1000") and row.next_step == "Call the buyer"
    [request] = pending(deal)
    assert approvals.proposal(request) == {"amount": "1500"}
    assert approvals.base_of(request) == {"amount": "1000.0000"}
    assert approvals.reasons_of(request) == [{"code": "amount_percent", "limit": 20}]
    assert request.requested_by_id == team["rita"].id
    assert [(s.approver_id, s.state) for s in approvals.steps(request)] == [(team["maria"].id, "pending")]
    notice = Notification.get()
    assert (notice.user_id, notice.kind, notice.object, notice.record_id) == (
        team["maria"].id, "approval_requested", "opportunity", deal.id)


def test_the_policy_switched_off_holds_nothing(team, deal):
    approvals.set_policy(KIND, {"active": False})
    opps.update_opportunity(deal, {"amount": Decimal("9000")}, actor_id=team["rita"].id)
    assert fresh(deal).amount == Decimal("9000") and pending(deal) == []


def test_approval_applies_the_held_stage_move_through_update_opportunity(team, deal):
    opps.move(deal, stage("sale_agreed").id, actor_id=team["rita"].id)
    row = fresh(deal)
    assert (row.stage.key, row.status, row.closed_date, row.probability) == ("qualified", "open", None, 10)
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 1
    [request] = pending(deal)
    assert approvals.reasons_of(request) == [{"code": "stage_won"}]
    approvals.decide(request, team["maria"].id, True, "Well done")
    row = fresh(deal)
    assert (row.stage.key, row.status, row.probability) == ("sale_agreed", "won", 100)
    assert row.closed_date is not None
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 2
    request = ApprovalRequest.get_by_id(request.id)
    assert (request.state, request.decided_by_id) == ("approved", team["maria"].id)
    assert approvals.steps(request)[0].comment == "Well done"
    assert Notification.select().where((Notification.user_id == team["rita"].id)
                                       & (Notification.kind == "approval_approved")).count() == 1


def test_rejection_needs_a_comment_and_discards_the_change(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("200")}, actor_id=team["rita"].id)
    [request] = pending(deal)
    with pytest.raises(UserError) as refused:
        approvals.decide(request, team["maria"].id, False, "  ")
    assert "comment" in refused.value.fields
    assert ApprovalRequest.get_by_id(request.id).state == "pending"
    approvals.decide(request, team["maria"].id, False, "The customer confirmed 1000.")
    assert ApprovalRequest.get_by_id(request.id).state == "rejected"
    assert fresh(deal).amount == Decimal("1000")
    assert Notification.get(Notification.user_id == team["rita"].id).kind == "approval_rejected"


def test_the_gate_of_the_moment_decides_at_approval(app, team, deal):
    opps.move(deal, stage("sale_agreed").id, actor_id=team["rita"].id)
    [request] = pending(deal)

    class Gate:
        @staticmethod
        @hookimpl
        def crm_stage_transition_check(app, actor_id, opportunity, from_stage, to_stage, values):
            return [("next_step", "Write the next step.")] if to_stage.kind == "won" else []

    app.extensions["crm"].pm.register(Gate, name="gate")
    try:
        with pytest.raises(StageRequirements) as refused:
            approvals.decide(request, team["maria"].id, True)
        assert refused.value.fields == {"next_step": "Write the next step."}
    finally:
        app.extensions["crm"].pm.unregister(name="gate")
    # Nothing of the approval was written: the request still waits for Maria.
    request = ApprovalRequest.get_by_id(request.id)
    assert request.state == "pending" and approvals.current_step(request).approver_id == team["maria"].id
    assert fresh(deal).status == "open"


def test_two_approvers_at_once_one_wins(app, team, deal):
    admin = make_user(is_admin=True)
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    [seen_by_maria] = pending(deal)
    seen_by_admin = ApprovalRequest.get_by_id(seen_by_maria.id)
    approvals.decide(seen_by_maria, team["maria"].id, True)
    with pytest.raises(UserError) as late:
        approvals.decide(seen_by_admin, admin.id, False, "Too much")
    assert late.value.code == "changed"
    assert ApprovalRequest.get_by_id(seen_by_maria.id).state == "approved"
    assert fresh(deal).amount == Decimal("5000")


def test_a_record_changed_meanwhile_makes_the_request_stale(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    [request] = pending(deal)
    update_record(fresh(deal), {"amount": Decimal("1100")}, actor_id=team["bob"].id)  # not through the service
    with pytest.raises(UserError) as stale:
        approvals.decide(request, team["maria"].id, True)
    assert stale.value.code == "stale"
    assert fresh(deal).amount == Decimal("1100") and ApprovalRequest.get_by_id(request.id).state == "pending"


def test_a_newer_change_of_the_same_field_supersedes_the_pending_request(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    [first] = pending(deal)
    opps.update_opportunity(deal, {"amount": Decimal("7000")}, actor_id=team["rita"].id)
    [second] = pending(deal)
    assert ApprovalRequest.get_by_id(first.id).state == "superseded"
    assert approvals.proposal(second) == {"amount": "7000"}
    # A change within the threshold restates the amount: nothing waits any more.
    opps.update_opportunity(fresh(deal), {"amount": Decimal("1100")}, actor_id=team["rita"].id)
    assert pending(deal) == [] and ApprovalRequest.get_by_id(second.id).state == "superseded"
    # A change of another field leaves a pending request alone.
    opps.update_opportunity(fresh(deal), {"amount": Decimal("9000")}, actor_id=team["rita"].id)
    opps.update_opportunity(fresh(deal), {"next_step": "Visit"}, actor_id=team["rita"].id)
    assert len(pending(deal)) == 1


def test_no_approval_when_the_actor_is_the_approver_an_administrator_or_nobody_is_above(team, deal):
    opps.update_opportunity(deal, {"amount": Decimal("3000")}, actor_id=team["maria"].id)
    assert fresh(deal).amount == Decimal("3000")
    admin = make_user(is_admin=True)
    opps.update_opportunity(fresh(deal), {"amount": Decimal("9000")}, actor_id=admin.id)
    assert fresh(deal).amount == Decimal("9000")
    # Maria heads Sales and nobody is above her: her own deals change at once.
    account = accounts.create_account({"name": "Sông Hồng"}, actor_id=team["maria"].id)
    own = opps.create_opportunity({"name": "Own", "account_id": account.id, "amount": Decimal("10")},
                                  actor_id=team["maria"].id)
    opps.update_opportunity(own, {"amount": Decimal("1000")}, actor_id=team["maria"].id)
    assert fresh(own).amount == Decimal("1000")
    assert ApprovalRequest.select().count() == 0


def test_two_levels_ask_the_manager_then_the_next_one_up(team, deal):
    ceo = make_user("ceo@example.com", "Ceo")
    org.set_roles(ceo, ["sales_manager"])
    top = org.create_department("Head office", head=ceo.id)
    org.place_user(ceo, top.id)
    org.move_department(_sales(), top.id)
    g.pop("_crm_access", None)
    approvals.set_policy(KIND, {"levels": 2})
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    [request] = pending(deal)
    assert [s.approver_id for s in approvals.steps(request)] == [team["maria"].id, ceo.id]
    # Someone above the approver may decide for them; the requester and a stranger may not.
    assert approvals.may_decide(ceo.id, request) and approvals.may_decide(team["maria"].id, request)
    assert not approvals.may_decide(team["rita"].id, request) and not approvals.may_decide(team["bob"].id, request)
    approvals.decide(request, team["maria"].id, True, "Fine by me")
    request = ApprovalRequest.get_by_id(request.id)
    assert request.state == "pending" and approvals.current_step(request).approver_id == ceo.id
    assert fresh(deal).amount == Decimal("1000")
    assert not approvals.may_decide(team["maria"].id, request)
    approvals.decide(request, ceo.id, True)
    assert fresh(deal).amount == Decimal("5000")
    # Maria changing her subordinate's deal needs only the level above her.
    opps.update_opportunity(fresh(deal), {"amount": Decimal("20000")}, actor_id=team["maria"].id)
    [request] = pending(deal)
    assert [s.approver_id for s in approvals.steps(request)] == [ceo.id]


def _sales():
    from crm_core.org.models import Department

    return Department.get(Department.name == "Sales")


@pytest.mark.parametrize("change, reason", [
    ({"expected_close_date": datetime.date(2026, 9, 30)}, {"code": "close_date", "limit": 30}),
    ({"expected_close_date": None}, {"code": "close_date_cleared"}),
    ({"probability": 60}, {"code": "probability", "limit": 20}),
])
def test_close_date_and_probability_thresholds(team, deal, change, reason):
    opps.update_opportunity(deal, change, actor_id=team["rita"].id)
    [request] = pending(deal)
    assert approvals.reasons_of(request) == [reason]
    assert fresh(deal).expected_close_date == datetime.date(2026, 6, 30) and fresh(deal).probability == 10


def test_backward_and_skipping_moves_when_the_policy_says_so(team, deal):
    opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    assert fresh(deal).stage.key == "negotiating"  # skipping is allowed by default
    approvals.set_policy(KIND, {"stage_backward": True, "stage_skip": True, "amount_absolute": "100"})
    opps.move(fresh(deal), stage("qualified").id, actor_id=team["rita"].id)
    assert fresh(deal).stage.key == "negotiating"
    assert approvals.reasons_of(pending(deal)[0]) == [{"code": "stage_backward"}]
    account = accounts.create_account({"name": "Hà Nội"}, actor_id=team["rita"].id)
    other = opps.create_opportunity({"name": "Second", "account_id": account.id}, actor_id=team["rita"].id)
    opps.move(other, stage("negotiating").id, actor_id=team["rita"].id)
    assert approvals.reasons_of(pending(other)[0]) == [{"code": "stage_skip"}]
    opps.update_opportunity(fresh(other), {"amount": Decimal("150")}, actor_id=team["rita"].id)
    assert approvals.reasons_of(pending(other)[-1]) == [{"code": "amount_absolute", "limit": "100"}]


def test_bad_policy_settings_are_refused_by_field(team):
    with pytest.raises(UserError) as refused:
        approvals.set_policy(KIND, {"levels": 3, "amount_percent": -1, "stage_won": "yes",
                                    "amount_absolute": "lots", "colour": "red"})
    assert set(refused.value.fields) == {"levels", "amount_percent", "stage_won", "amount_absolute", "colour"}
    assert approvals.settings_of(KIND)["levels"] == 1


def test_the_ext_part_shows_the_pending_change_to_readers_only(app, team, deal):
    from crm_core.approvals.ext import approval_part

    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    part = approval_part(team["maria"], "opportunity", [deal])["approval"][deal.id]
    assert part["proposed"] == {"amount": "5000"} and part["current"] == {"amount": "1000.0000"}
    assert part["approver_id"] == team["maria"].id and part["state"] == "pending"
    assert part["reasons"] == ["The amount changes by more than 20 percent."]
    with app.test_request_context("/"):
        ext = record_ext("opportunity", [deal], actor=team["maria"])
        assert ext[deal.id]["approval"]["request_id"] == pending(deal)[0].id
        assert record_ext("account", [deal.account], actor=team["maria"]) == {deal.account_id: {}}
    # Field security: a reader who may not see the amount does not see it proposed.
    FieldRule.create(role=org.role_by_key("sales_rep"), object="opportunity", field="amount", level=0)
    g.pop("_crm_access", None)
    part = approval_part(team["maria"], "opportunity", [deal])["approval"][deal.id]
    assert part["proposed"] == {} and part["current"] == {}


def test_the_record_panel_offers_the_decision_to_the_approver_only(app, team, deal):
    from crm_core.web.slots import render_slot

    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)

    def panel(user):
        g.pop("_crm_access", None)
        with app.test_request_context("/opportunities/1"):
            from flask_login import login_user

            from crm_core.web.auth import Actor

            login_user(Actor(user, "session"))
            return str(render_slot("record_panels", object="opportunity", record=fresh(deal)))

    as_maria = panel(team["maria"])
    assert "Change waiting for approval" in as_maria and 'value="approve"' in as_maria
    assert "$1,000.00" in as_maria and "$5,000.00" in as_maria
    as_rita = panel(team["rita"])
    assert 'value="approve"' not in as_rita and 'value="cancel"' in as_rita
    assert panel(team["bob"]) == ""
    assert json.loads(ApprovalStep.get().request.proposed) == {"amount": "5000"}


def test_the_demo_switches_the_policy_on_and_leaves_one_change_waiting(app):
    from crm_core.approvals import demo

    people = make_sales_team()
    binh = make_user(demo.REP, "Trần Thị Bình")
    org.set_roles(binh, ["sales_rep"])
    org.place_user(binh, _sales().id)
    g.pop("_crm_access", None)
    accounts.create_account({"name": demo.ACCOUNT}, actor_id=binh.id)
    assert demo.load() == 1
    [request] = ApprovalRequest.select()
    assert approvals.proposal(request) == {"amount": "607500000"}
    assert [s.approver_id for s in approvals.steps(request)] == [people["maria"].id]
    assert demo.load() == 0 and ApprovalRequest.select().count() == 1


def test_a_held_loss_keeps_its_reason_until_approved(team, deal):
    reason = opps.create_lost_reason({"name": "Price"})
    with pytest.raises(StageRequirements):  # the gates judge the whole change before it is held
        opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id)
    assert pending(deal) == []
    opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id, lost_reason_id=reason.id,
              lost_note="Cheaper offer")
    row = fresh(deal)
    assert (row.status, row.lost_reason_id, row.lost_note) == ("open", None, None)
    [request] = pending(deal)
    assert approvals.proposal(request) == {"stage_id": stage("sale_lost").id, "pipeline_id": row.pipeline_id,
                                           "lost_reason_id": reason.id, "lost_note": "Cheaper offer"}
    approvals.decide(request, team["maria"].id, True)
    row = fresh(deal)
    assert (row.status, row.lost_reason_id, row.lost_note, row.stage.key) == (
        "lost", reason.id, "Cheaper offer", "sale_lost")
