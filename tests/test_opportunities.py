"""Opportunities on pipelines: defaults from the pipeline and stage, stage moves with their
history, closing and reopening, the lost reason, team selling through the access engine,
and the stage hooks (checks, the in-transaction transition, the notification)."""

import datetime
from decimal import Decimal

import pytest

from crm_core import hookimpl
from crm_core.accounts import services as accounts
from crm_core.errors import UserError, VersionConflict
from crm_core.opportunities import PipelineSpec, StageSpec
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage, StageChange
from crm_core.opportunities.transitions import StageRequirements
from crm_core.permissions import engine
from crm_core.plugins import RegistryError
from crm_core.testing import make_sales_team


@pytest.fixture
def team(app):
    return make_sales_team()


@pytest.fixture
def account(team):
    return accounts.create_account({"name": "Minh An"}, actor_id=team["rita"].id)


def stage(key, pipeline_key="sales"):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == pipeline_key)))


def new(account, actor, **values):
    return opps.create_opportunity({"name": "Deal", "account_id": account.id, **values}, actor_id=actor.id)


def listener(app, name, **methods):
    """Register a throw-away plugin object with hook implementations; returns an unregister."""
    holder = type(name, (), {k: staticmethod(hookimpl(**({"wrapper": True} if v.__name__.startswith("wrap_") else {}))(v))
                             for k, v in methods.items()})
    pm = app.extensions["crm"].pm
    pm.register(holder, name=name)
    return lambda: pm.unregister(name=name)


def test_a_new_opportunity_takes_the_default_pipeline_its_first_stage_and_its_probability(app, team, account):
    deal = new(account, team["rita"], amount=Decimal("1200.50"))
    assert deal.pipeline.key == "sales" and deal.stage.key == "qualified"
    assert deal.probability == 10 and deal.status == "open" and deal.currency == "USD"
    assert deal.owner_id == team["rita"].id and deal.amount == Decimal("1200.50")
    history = list(StageChange.select().where(StageChange.opportunity == deal.id))
    assert [(h.from_stage_id, h.to_stage_id) for h in history] == [(None, deal.stage_id)]


def test_the_company_currency_is_the_default(app_factory):
    app = app_factory(CRM_CURRENCY="VND")
    with app.app_context():
        people = make_sales_team()
        account = accounts.create_account({"name": "An Phát"}, actor_id=people["rita"].id)
        assert new(account, people["rita"], amount=Decimal("15000000")).currency == "VND"


def test_moving_takes_the_stage_probability_unless_one_is_given(app, team, account):
    deal = new(account, team["rita"])
    opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    assert Opportunity.get_by_id(deal.id).probability == 70
    opps.move(deal, stage("proposal_submitted").id, actor_id=team["rita"].id, probability=55)
    deal = Opportunity.get_by_id(deal.id)
    assert deal.probability == 55 and deal.stage.key == "proposal_submitted"
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 3


def test_winning_closes_the_deal_today_and_reopening_clears_it(app, team, account):
    deal = new(account, team["rita"])
    opps.move(deal, stage("sale_agreed").id, actor_id=team["rita"].id)
    deal = Opportunity.get_by_id(deal.id)
    assert deal.status == "won" and deal.closed_date == datetime.date.today() and deal.probability == 100
    opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    deal = Opportunity.get_by_id(deal.id)
    assert deal.status == "open" and deal.closed_date is None


def test_a_lost_deal_needs_a_reason_from_the_company_list(app, team, account):
    deal = new(account, team["rita"])
    with pytest.raises(StageRequirements) as refused:
        opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id)
    assert "lost_reason_id" in refused.value.fields
    assert Opportunity.get_by_id(deal.id).stage.key == "qualified"  # nothing written
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 1
    with pytest.raises(UserError) as unknown:
        opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id, lost_reason_id=999)
    assert "lost_reason_id" in unknown.value.fields
    price = opps.create_lost_reason({"name": "Price"})
    opps.move(deal, stage("sale_lost").id, actor_id=team["rita"].id, lost_reason_id=price.id)
    deal = Opportunity.get_by_id(deal.id)
    assert deal.status == "lost" and deal.lost_reason_id == price.id
    with pytest.raises(UserError):  # still lost: the reason cannot be taken away
        opps.update_opportunity(deal, {"lost_reason_id": None}, actor_id=team["rita"].id)


def test_a_stage_of_another_pipeline_is_refused(app, team, account):
    other = opps.create_pipeline({"name": "Solution selling", "stages": [
        {"name": "Prospecting", "probability": 10}, {"name": "Contract", "kind": "won", "probability": 100}]})
    deal = new(account, team["rita"])
    with pytest.raises(UserError) as refused:
        opps.move(deal, opps.stages(other)[0].id, actor_id=team["rita"].id)
    assert "stage_id" in refused.value.fields
    opps.update_opportunity(deal, {"pipeline_id": other.id}, actor_id=team["rita"].id)
    deal = Opportunity.get_by_id(deal.id)
    assert deal.pipeline_id == other.id and deal.stage.name == "Prospecting"


def test_a_stale_version_writes_nothing(app, team, account):
    deal = new(account, team["rita"])
    with pytest.raises(VersionConflict):
        opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id, expected_version=deal.version + 1)
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 1


def test_the_contact_must_belong_to_the_account(app, team, account):
    elsewhere = accounts.create_account({"name": "Elsewhere"}, actor_id=team["rita"].id)
    contact = accounts.create_contact({"account_id": elsewhere.id, "last_name": "Lê"}, actor_id=team["rita"].id)
    with pytest.raises(UserError) as refused:
        new(account, team["rita"], contact_id=contact.id)
    assert "contact_id" in refused.value.fields


def test_an_account_the_rep_cannot_see_is_refused_like_a_missing_one(app, team):
    bobs = accounts.create_account({"name": "Bob's"}, actor_id=team["bob"].id)
    with pytest.raises(UserError) as refused:
        new(bobs, team["rita"])
    assert refused.value.fields["account_id"] is not None


def test_team_members_gain_access_through_the_engine(app, team, account):
    deal = new(account, team["rita"])
    bob = team["bob"].id
    assert not engine().can(bob, deal, "read")
    member = opps.add_member(deal, {"user_id": bob, "role": "presales"}, actor_id=team["rita"].id)
    assert engine().can(bob, deal, "read") and not engine().can(bob, deal, "update")
    assert engine().query(bob, "opportunity").where(Opportunity.id == deal.id).exists()
    # the account comes with it (the implicit parent read)
    assert engine().can(bob, account, "read")
    opps.update_member(member, {"access": "edit"}, actor_id=team["rita"].id)
    assert engine().can(bob, deal, "update")
    with pytest.raises(UserError):
        opps.add_member(deal, {"user_id": bob}, actor_id=team["rita"].id)
    opps.remove_member(member, actor_id=team["rita"].id)
    assert not engine().can(bob, deal, "read")
    assert not engine().query(bob, "opportunity").where(Opportunity.id == deal.id).exists()


def test_a_stage_with_opportunities_keeps_its_kind_and_cannot_be_deleted(app, team, account):
    deal = new(account, team["rita"])
    with pytest.raises(UserError):
        opps.update_stage(deal.stage, {"kind": "won"})
    with pytest.raises(UserError):
        opps.delete_stage(deal.stage)
    with pytest.raises(UserError):
        opps.delete_pipeline(deal.pipeline)  # the core's own, and in use


def test_hook_crm_register_pipelines(app_factory, register_plugin):
    import types

    plugin = types.ModuleType("crm_pipes")
    plugin.manifest = __import__("crm_core").PluginManifest(name="pipes", label="Pipes", version="1.0")

    @hookimpl
    def crm_register_pipelines(app):
        return [PipelineSpec("pipes.renewals", "Renewals", stages=(
            StageSpec("due", "Due", 50), StageSpec("renewed", "Renewed", 100, "won"),
            StageSpec("churned", "Churned", 0, "lost")))]

    plugin.crm_register_pipelines = crm_register_pipelines
    register_plugin(plugin)
    app = app_factory()
    with app.app_context():
        names = {p.key: [s.key for s in opps.stages(p)] for p in opps.pipelines()}
        assert names["pipes.renewals"] == ["due", "renewed", "churned"] and "sales" in names
        renewals = Pipeline.get(Pipeline.key == "pipes.renewals")
        assert renewals.source == "pipes" and not renewals.is_default
        opps.pipelines()  # written once
        assert Pipeline.select().where(Pipeline.key == "pipes.renewals").count() == 1
        with pytest.raises(UserError):
            opps.delete_pipeline(renewals)


def test_a_plugin_pipeline_needs_its_prefix_and_a_won_stage(app_factory, register_plugin):
    import types

    plugin = types.ModuleType("crm_badpipes")
    plugin.manifest = __import__("crm_core").PluginManifest(name="badpipes", label="Bad pipes", version="1.0")

    @hookimpl
    def crm_register_pipelines(app):
        return [PipelineSpec("renewals", "Renewals", stages=(StageSpec("due", "Due", 50),))]

    plugin.crm_register_pipelines = crm_register_pipelines
    register_plugin(plugin)
    with pytest.raises(RegistryError, match="must start with 'badpipes.'"):
        app_factory()


def test_hook_crm_stage_transition_check(app, team, account):
    seen = []

    def crm_stage_transition_check(app, actor_id, opportunity, from_stage, to_stage, values):
        seen.append((actor_id, from_stage and from_stage.key, to_stage.key))
        if to_stage.key == "proposal_submitted" and not values.get("next_step"):
            return [("next_step", "Say what happens next."), ("stage_id", "Attach the proposal.")]
        return []

    undo = listener(app, "gate_listener", crm_stage_transition_check=crm_stage_transition_check)
    try:
        deal = new(account, team["rita"])
        with pytest.raises(StageRequirements) as refused:
            opps.move(deal, stage("proposal_submitted").id, actor_id=team["rita"].id)
        assert set(refused.value.fields) == {"next_step", "stage_id"}
        assert Opportunity.get_by_id(deal.id).stage.key == "qualified"
        opps.move(Opportunity.get_by_id(deal.id), stage("proposal_submitted").id, actor_id=team["rita"].id,
                  next_step="Call on Monday")  # filled in the same step: the check sees it
    finally:
        undo()
    assert seen[0] == (team["rita"].id, None, "qualified")
    assert seen[-1] == (team["rita"].id, "qualified", "proposal_submitted")


def test_hook_crm_stage_transition(app, team, account):
    order = []

    def crm_stage_transition(app, actor_id, opportunity, from_stage, to_stage):
        order.append(("plain", StageChange.select().where(StageChange.opportunity == opportunity.id).count()))
        if to_stage.key == "negotiating":
            raise RuntimeError("the plugin's own row could not be written")

    def wrap_crm_stage_transition(app, actor_id, opportunity, from_stage, to_stage):
        order.append(("before", to_stage.key))
        result = yield
        order.append(("after", to_stage.key))
        return result

    undo = listener(app, "transition_listener", crm_stage_transition=crm_stage_transition)
    undo_wrap = listener(app, "transition_wrapper", crm_stage_transition=wrap_crm_stage_transition)
    try:
        deal = new(account, team["rita"])
        assert order == [("before", "qualified"), ("plain", 1), ("after", "qualified")]
        version = deal.version
        with pytest.raises(RuntimeError):
            opps.move(deal, stage("negotiating").id, actor_id=team["rita"].id)
    finally:
        undo()
        undo_wrap()
    fresh = Opportunity.get_by_id(deal.id)  # the move rolled back with the plugin's failure
    assert fresh.stage.key == "qualified" and fresh.version == version
    assert StageChange.select().where(StageChange.opportunity == deal.id).count() == 1


def test_hook_crm_stage_changed(app, team, account, caplog):
    heard = []

    def crm_stage_changed(app, actor_id, opportunity, from_stage, to_stage):
        heard.append((from_stage and from_stage.key, to_stage.key,
                      Opportunity.get_by_id(opportunity.id).stage.key))
        if to_stage.key == "sale_agreed":
            raise RuntimeError("listener broke")

    undo = listener(app, "changed_listener", crm_stage_changed=crm_stage_changed)
    try:
        deal = new(account, team["rita"])
        opps.move(deal, stage("sale_agreed").id, actor_id=team["rita"].id)
    finally:
        undo()
    assert heard == [(None, "qualified", "qualified"), ("qualified", "sale_agreed", "sale_agreed")]
    assert Opportunity.get_by_id(deal.id).status == "won"  # a broken listener undoes nothing
    assert "crm_stage_changed failed" in caplog.text
