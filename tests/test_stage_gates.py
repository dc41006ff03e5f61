"""Stage gates configured per stage: every core kind (a field, a custom field, a minimum, a
team role), plugins' kinds through crm_register_stage_requirements, forwards and
backwards, gates on a new opportunity, nothing written on refusal, and the configuration's
own validation."""

import json
import types
from decimal import Decimal

import pytest
from flask import g

from crm_core import PluginManifest, hookimpl
from crm_core.accounts import services as accounts
from crm_core.api.errors import handle_user_error
from crm_core.audit.models import SecurityEvent
from crm_core.customfields import services as custom_fields
from crm_core.errors import UserError, VersionConflict
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage, StageChange
from crm_core.opportunities.transitions import StageRequirements
from crm_core.plugins import RegistryError
from crm_core.stagegates import ParamInput, RequirementKind
from crm_core.stagegates import services as gates
from crm_core.stagegates.models import StageGate
from crm_core.testing import make_sales_team


@pytest.fixture
def team(app):
    return make_sales_team()


@pytest.fixture
def account(team):
    return accounts.create_account({"name": "Minh An"}, actor_id=team["rita"].id)


def stage(key):
    opps.pipelines()  # the core's pipeline is written when first needed
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


def new(account, actor, **values):
    return opps.create_opportunity({"name": "Deal", "account_id": account.id, **values}, actor_id=actor.id)


def gate(stage_key, kind="field", also_backwards=False, **params):
    return gates.create_gate({"stage_id": stage(stage_key).id, "kind": kind, "params": params,
                              "also_backwards": also_backwards})


def refused(deal, stage_key, actor, **values):
    """The move's refusal (the deal, its version and its stage history unchanged)."""
    before = Opportunity.get_by_id(deal.id)
    history = StageChange.select().where(StageChange.opportunity == deal.id).count()
    with pytest.raises(StageRequirements) as error:
        opps.move(before, stage(stage_key).id, actor_id=actor.id, **values)
    after = Opportunity.get_by_id(deal.id)
    assert (after.stage_id, after.version, after.amount) == (before.stage_id, before.version, before.amount)
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == history
    return error.value


def test_a_field_gate_refuses_the_move_until_the_field_is_filled(app, team, account):
    gate("proposal_submitted", field="amount")
    gate("proposal_submitted", field="expected_close_date")
    deal = new(account, team["rita"])
    error = refused(deal, "proposal_submitted", team["rita"])
    assert set(error.fields) == {"amount", "expected_close_date"}
    assert str(error.fields["amount"]) == "Before “Proposal Submitted”: Fill in “Amount”."
    assert error.code == "stage_requirements" and len(error.unmet) == 2
    # Filled in the same step: the gate sees the values after the change.
    opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id,
              amount=Decimal("1200"), expected_close_date="2026-12-31")
    assert Opportunity.get_by_id(deal.id).stage.key == "proposal_submitted"


def test_text_fields_of_blanks_and_references_count_as_empty(app, team, account):
    gate("negotiating", field="next_step")
    gate("negotiating", field="contact_id")
    deal = new(account, team["rita"], next_step="   ")
    assert set(refused(deal, "negotiating", team["rita"]).fields) == {"next_step", "contact_id"}
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Lan"}, actor_id=team["rita"].id)
    opps.move(Opportunity.get_by_id(deal.id), stage("negotiating").id, actor_id=team["rita"].id,
              next_step="Send the contract", contact_id=contact.id)


def test_a_minimum_refuses_amounts_below_it(app, team, account):
    gate("proposal_submitted", field="amount", minimum="0", exclusive=True)
    deal = new(account, team["rita"], amount=Decimal("0"))
    error = refused(deal, "proposal_submitted", team["rita"])
    assert str(error.fields["amount"]) == "Before “Proposal Submitted”: “Amount” must be more than 0."
    opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id,
              amount=Decimal("0.01"))
    gate("negotiating", field="probability", minimum="50")
    error = refused(deal, "negotiating", team["rita"], probability=49)
    assert str(error.fields["probability"]) == "Before “Negotiating”: “Probability” must be at least 50."
    opps.move(Opportunity.get_by_id(deal.id), stage("negotiating").id, actor_id=team["rita"].id, probability=50)


def test_a_custom_field_of_opportunities_can_be_required(app, team, account):
    custom_fields.create_field({"object": "opportunity", "key": "budget", "type": "money", "currency": "USD",
                                "labels": {"en": "Budget", "pl": "Budżet"}})
    gate("proposal_submitted", **{"field": "custom.budget", "minimum": "1000"})
    deal = new(account, team["rita"])
    assert str(refused(deal, "proposal_submitted", team["rita"]).fields["custom.budget"]) == (
        "Before “Proposal Submitted”: Fill in “Budget”.")
    error = refused(deal, "proposal_submitted", team["rita"], custom={"budget": "999.99"})
    assert "must be at least 1000" in str(error.fields["custom.budget"])
    opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id,
              custom={"budget": "1000"})
    # Stored values count on a later move too.
    gate("negotiating", field="custom.budget")
    opps.move(Opportunity.get_by_id(deal.id), stage("negotiating").id, actor_id=team["rita"].id)


def test_a_team_role_gate_needs_a_member_with_that_role(app, team, account):
    gate("negotiating", kind="team_role", role="presales")
    deal = new(account, team["rita"])
    error = refused(deal, "negotiating", team["rita"])
    assert str(error.fields["stage_id"]) == "Before “Negotiating”: Add a team member with the role “Presales”."
    opps.add_member(deal, {"user_id": team["bob"].id, "role": "technical"}, actor_id=team["rita"].id)
    refused(deal, "negotiating", team["rita"])
    opps.add_member(deal, {"user_id": team["maria"].id, "role": "presales"}, actor_id=team["rita"].id)
    opps.move(Opportunity.get_by_id(deal.id), stage("negotiating").id, actor_id=team["rita"].id)


def test_gates_apply_when_an_opportunity_is_created_into_a_stage(app, team, account):
    gate("negotiating", field="amount")
    gate("negotiating", kind="team_role", role="presales")
    with pytest.raises(StageRequirements) as error:
        new(account, team["rita"], stage_id=stage("negotiating").id)
    assert set(error.value.fields) == {"amount", "stage_id"}
    assert Opportunity.select().count() == 0 and StageChange.select().count() == 0
    # The first open stage has no gate: the deal starts there and moves on later.
    assert new(account, team["rita"]).stage.key == "qualified"


def test_gates_on_a_stage_count_only_forwards_unless_also_backwards(app, team, account):
    gate("proposal_submitted", field="amount")
    deal = new(account, team["rita"], amount=Decimal("10"))
    opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    opps.update_opportunity(Opportunity.get_by_id(deal.id), {"amount": None}, actor_id=team["rita"].id)
    # Back to "Proposal Submitted" without an amount: a forwards-only gate lets it go.
    opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id)
    assert Opportunity.get_by_id(deal.id).stage.key == "proposal_submitted"
    gate("qualified", field="next_step", also_backwards=True)
    assert set(refused(deal, "qualified", team["rita"]).fields) == {"next_step"}


def test_reopening_a_lost_deal_is_a_move_backwards(app, team, account):
    reason = opps.create_lost_reason({"name": "Price"})
    gate("qualified", field="next_step")
    gate("negotiating", field="next_step", also_backwards=True)
    deal = new(account, team["rita"], next_step="Call")
    opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id, lost_reason_id=reason.id, next_step=None)
    opps.move(Opportunity.get_by_id(deal.id), stage("qualified").id, actor_id=team["rita"].id)
    assert set(refused(deal, "negotiating", team["rita"]).fields) == {"next_step"}
    assert gates.moving_back(stage("sale_lost"), stage("qualified"))
    assert not gates.moving_back(stage("negotiating"), stage("sale_lost"))  # closing is forwards
    assert not gates.moving_back(None, stage("qualified"))


def test_the_refusal_answers_422_with_every_message_in_the_callers_language(app, team, account):
    gate("proposal_submitted", field="amount")
    gate("proposal_submitted", kind="team_role", role="presales")
    deal = new(account, team["rita"])
    error = refused(deal, "proposal_submitted", team["rita"])
    with app.test_request_context("/api/v1/opportunities", headers={"Accept-Language": "pl"}):
        g.pop("_flask_babel", None)  # the test's app context chose a language already
        response = handle_user_error(error)
    body = response.get_json()["error"]
    assert response.status_code == 422 and body["code"] == "stage_requirements"
    assert set(body["fields"]) == {"amount", "stage_id"}
    assert body["fields"]["amount"] == ["Przed „Proposal Submitted”: Uzupełnij pole „Kwota”."]
    assert "presales" in body["fields"]["stage_id"][0].lower()
    assert "2" in body["message"] and "Proposal Submitted" in body["message"]


def test_the_gates_of_a_stage_are_read_in_one_query(app, team, account):
    for name in ("amount", "expected_close_date", "next_step", "description"):
        gate("negotiating", field=name)
    deal = new(account, team["rita"])
    from_stage, to_stage, values = stage("qualified"), stage("negotiating"), opps.opportunity_values(deal)
    statements = []
    database = app.extensions["crm_db"]
    original = database.execute_sql

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    database.execute_sql = counting
    try:
        found = gates.unmet(deal, from_stage, to_stage, values)
    finally:
        database.execute_sql = original
    assert len(found) == 4 and len(statements) == 1, statements


# -- configuration ----------------------------------------------------------------------------------

def test_the_configuration_is_validated(app, team):
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": stage("negotiating").id, "kind": "field", "params": {"field": "colour"}})
    assert set(error.value.fields) == {"params.field"}
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": stage("negotiating").id, "kind": "field", "params": {"field": "custom.nope"}})
    assert set(error.value.fields) == {"params.field"}
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": stage("negotiating").id, "kind": "field",
                           "params": {"field": "next_step", "minimum": "3"}})
    assert set(error.value.fields) == {"params.minimum"}
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": stage("negotiating").id, "kind": "team_role", "params": {"role": "boss"}})
    assert set(error.value.fields) == {"params.role"}
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": 999999, "kind": "quotes.accepted", "params": {}})
    assert set(error.value.fields) == {"stage_id", "kind"}
    with pytest.raises(UserError) as error:
        gates.create_gate({"stage_id": stage("negotiating").id, "kind": "field", "params": {"field": "amount",
                                                                                              "colour": "red"}})
    assert set(error.value.fields) == {"params.colour"}
    assert StageGate.select().count() == 0


def test_changing_a_gate_checks_its_version_and_params(app, team):
    made = gate("negotiating", field="amount")
    assert made.version == 1 and json.loads(made.params) == {"field": "amount", "exclusive": False}
    changed = gates.update_gate(made, {"params": {"field": "amount", "minimum": "5"}, "also_backwards": True},
                                expected_version=1)
    assert set(changed) == {"params", "also_backwards"} and made.version == 2
    with pytest.raises(VersionConflict):
        gates.update_gate(made, {"also_backwards": False}, expected_version=1)
    with pytest.raises(UserError) as error:
        gates.update_gate(made, {"kind": "team_role"})
    assert set(error.value.fields) == {"params"}
    with pytest.raises(UserError) as error:
        gates.update_gate(made, {"stage_id": stage("qualified").id})
    assert set(error.value.fields) == {"stage_id"}
    gates.update_gate(made, {"kind": "team_role", "params": {"role": "presales"}}, expected_version=2)
    assert StageGate.get_by_id(made.id).kind == "team_role"
    with pytest.raises(VersionConflict):
        gates.delete_gate(made, expected_version=1)
    gates.delete_gate(made, expected_version=3)
    assert StageGate.select().count() == 0
    kinds = [e.kind for e in SecurityEvent.select().order_by(SecurityEvent.id) if e.kind.startswith("stage_gate")]
    assert kinds == ["stage_gate_created", "stage_gate_changed", "stage_gate_changed", "stage_gate_deleted"]


def test_a_gate_of_a_kind_whose_plugin_is_off_does_not_block_deals(app, team, account):
    StageGate.create(stage=stage("negotiating").id, kind="quotes.accepted", params="{}")
    deal = new(account, team["rita"])
    opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    assert "not enabled" in str(gates.describe(StageGate.get()))


# -- plugins' kinds -----------------------------------------------------------------------------------

def quotes_plugin(name="quotes", key="quotes.in_state"):
    import marshmallow as ma

    from crm_core.api.frame import Schema

    seen = []

    class Params(Schema):
        state = ma.fields.String(required=True, validate=ma.validate.OneOf(["sent", "accepted"]))

    def check(opportunity, values, params):
        seen.append((getattr(opportunity, "id", None), values.get("amount"), params))
        if values.get("description") != f"quote {params['state']}":
            return f"Get a quote {params['state']}."
        return None

    plugin = types.ModuleType(f"crm_{name}")
    plugin.manifest = PluginManifest(name=name, label=name.title(), version="1.0")

    @hookimpl
    def crm_register_stage_requirements(app):
        return [RequirementKind(key, "A quote in a state", check, Params,
                                inputs=(ParamInput("state", "State", "choice", (("sent", "Sent"), ("accepted", "Accepted"))),),
                                describe=lambda params: f"A quote {params['state']}")]

    plugin.crm_register_stage_requirements = crm_register_stage_requirements
    return plugin, seen


def test_hook_crm_register_stage_requirements(app_factory, register_plugin):
    plugin, seen = quotes_plugin()
    register_plugin(plugin)
    app = app_factory()
    with app.app_context():
        people = make_sales_team()
        g.pop("_crm_access", None)
        customer = accounts.create_account({"name": "An Phát"}, actor_id=people["rita"].id)
        with pytest.raises(UserError) as error:
            gate("sale_agreed", kind="quotes.in_state", state="lost")
        assert set(error.value.fields) == {"params.state"}
        made = gate("sale_agreed", kind="quotes.in_state", state="accepted")
        assert str(gates.describe(made)) == "A quote accepted"
        deal = new(customer, people["rita"], amount=Decimal("5"))
        error = refused(deal, "sale_agreed", people["rita"])
        assert str(error.fields["stage_id"]) == "Before “Sale Agreed”: Get a quote accepted."
        assert seen[-1] == (deal.id, Decimal("5"), {"state": "accepted"})
        opps.move(Opportunity.get_by_id(deal.id), stage("sale_agreed").id, actor_id=people["rita"].id,
                  description="quote accepted")
        assert Opportunity.get_by_id(deal.id).status == "won"


def test_a_plugins_requirement_kind_needs_its_prefix(app_factory, register_plugin):
    plugin, _seen = quotes_plugin(name="badquotes", key="in_state")
    register_plugin(plugin)
    with pytest.raises(RegistryError, match="must start with 'badquotes.'"):
        app_factory()


def test_the_demo_gates_are_added_once_and_leave_a_believable_deal_through(app, team, account):
    from crm_core.stagegates import demo

    assert demo.load() == 3 and demo.load() == 0
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Lan"}, actor_id=team["rita"].id)
    deal = new(account, team["rita"])
    assert set(refused(deal, "proposal_submitted", team["rita"]).fields) == {"amount", "expected_close_date"}
    opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id,
              amount=Decimal("25000"), expected_close_date="2027-01-31")
    assert set(refused(deal, "sale_agreed", team["rita"]).fields) == {"contact_id"}
    opps.move(Opportunity.get_by_id(deal.id), stage("sale_agreed").id, actor_id=team["rita"].id,
              contact_id=contact.id)


def test_the_opportunity_page_panel_lists_what_each_stage_requires(app, team, account):
    gate("negotiating", field="amount")
    gate("sale_agreed", kind="team_role", role="presales")
    deal = new(account, team["rita"], amount=Decimal("10"))
    opps.move(deal, stage("proposal_submitted").id, actor_id=team["rita"].id)
    gate("qualified", field="next_step")  # backwards from where the deal is: not shown
    deal = Opportunity.get_by_id(deal.id)
    rows = gates.preview(deal)
    assert [(s.key, [(str(d), m and str(m)) for d, m in r]) for s, r in rows] == [
        ("negotiating", [("“Amount” filled in", None)]),
        ("sale_agreed", [("A team member with the role “Presales”",
                          "Add a team member with the role “Presales”.")])]
    host = app.extensions["crm"]

    def panels(**context):
        return "".join(str(part) for part in host.call_in_order(
            "crm_page_slot", app=app, slot="record_panels", actor=team["rita"], context=context))

    with app.test_request_context("/"):
        html = panels(object="opportunity", record=deal)
        # other parts add their panels to the same slot: look at this one only
        html = html.split('aria-labelledby="stage-gates-panel"', 1)[1].split("</section>", 1)[0]
        assert "What the stages require" in html and "Sale Agreed" in html and "Qualified" not in html
        assert "stage-gates-panel" not in panels(object="account", record=account)
