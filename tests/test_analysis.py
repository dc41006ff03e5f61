"""Pipeline analysis by dimension, lost deals, stage history and velocity: exact rows from
known data, over what each reader may see, and the report dimension hook."""

import datetime as dt
import types
from decimal import Decimal

import peewee
import pytest
from flask import g

from crm_core import PluginManifest, hookimpl
from crm_core.accounts import services as accounts
from crm_core.analysis import ReportDimension
from crm_core.analysis import reports
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, Pipeline, Stage, StageChange
from crm_core.org import services as org
from crm_core.plugins import RegistryError
from crm_core.testing import api_client, make_sales_team, make_user
from crm_core.users.models import User

UTC = dt.timezone.utc


def stage(key):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


@pytest.fixture
def world(app):
    """Rita (Sales, under Maria) and Bob (Other) own deals; Maria one; amounts in USD and EUR."""
    people = make_sales_team()
    rita, bob, maria = people["rita"], people["bob"], people["maria"]
    retail = accounts.create_account({"name": "Minh An", "industry": "Retail", "country": "VN"},
                                     actor_id=rita.id)
    mining = accounts.create_account({"name": "Hòa Phát", "industry": "Mining", "country": "PL"},
                                     actor_id=bob.id)
    price = opps.create_lost_reason({"name": "Price"})
    timing = opps.create_lost_reason({"name": "Timing"})

    def deal(owner, account, name, amount, currency="USD", **values):
        return opps.create_opportunity({"name": name, "account_id": account.id, "amount": Decimal(amount),
                                        "currency": currency, **values}, actor_id=owner.id)

    deals = {
        "a": deal(rita, retail, "A", "1000", source="web", expected_close_date=dt.date(2026, 3, 15)),
        "b": deal(rita, retail, "B", "2000", source="referral", expected_close_date=dt.date(2026, 4, 10)),
        "c": deal(rita, retail, "C", "500", "EUR", source="web", expected_close_date=dt.date(2026, 3, 20)),
        "d": deal(bob, mining, "D", "3000", source="web", expected_close_date=dt.date(2026, 3, 1)),
        "e": deal(maria, retail, "E", "100", expected_close_date=dt.date(2026, 2, 1)),
        "lost1": deal(rita, retail, "L1", "700", competitors="Acme\nGlobex", expected_close_date=dt.date(2026, 1, 5)),
        "lost2": deal(bob, mining, "L2", "300", competitors="acme", expected_close_date=dt.date(2026, 1, 6)),
    }
    opps.move(deals["b"], stage("negotiating").id, actor_id=rita.id)           # 70 %
    opps.move(deals["d"], stage("proposal_submitted").id, actor_id=bob.id)     # 40 %
    opps.move(deals["e"], stage("sale_agreed").id, actor_id=maria.id, closed_date=dt.date(2026, 2, 3))
    opps.move(deals["lost1"], stage("proposal_submitted").id, actor_id=rita.id)
    opps.move(deals["lost1"], stage("sale_lost").id, actor_id=rita.id, lost_reason_id=price.id,
              closed_date=dt.date(2026, 1, 10))
    opps.move(deals["lost2"], stage("sale_lost").id, actor_id=bob.id, lost_reason_id=timing.id,
              closed_date=dt.date(2026, 1, 20))
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    g.pop("_crm_access", None)  # a new user: forget this context's answers
    return {**people, "admin": admin, "deals": {k: Opportunity.get_by_id(v.id) for k, v in deals.items()},
            "price": price, "timing": timing}


def flat(report):
    """{label: {currency: (count, amount, weighted)}} of a report's rows."""
    return {row["label"]: {e["currency"]: (e["count"], e["amount"], e.get("weighted_amount")) for e in row["totals"]}
            for row in report["rows"]}


# -- the pipeline by a dimension ----------------------------------------------------------------------

def test_pipeline_by_owner_as_the_administrator_counts_everything_per_currency(world):
    report = reports.pipeline_report(world["admin"].id, "owner", reports.Filters(status="open"))
    assert flat(report) == {
        "Rita": {"USD": (2, Decimal("3000"), Decimal("1500.00")), "EUR": (1, Decimal("500"), Decimal("50.00"))},
        "Bob": {"USD": (1, Decimal("3000"), Decimal("1200.00"))}}
    assert [row["label"] for row in report["rows"]] == ["Rita", "Bob"]  # the larger group first
    assert report["count"] == 4
    assert report["totals"] == [
        {"currency": "EUR", "count": 1, "amount": Decimal("500"), "weighted_amount": Decimal("50.00")},
        {"currency": "USD", "count": 3, "amount": Decimal("6000"), "weighted_amount": Decimal("2700.00")}]


def test_a_rep_sees_only_their_own_and_a_manager_their_team(world):
    rita = reports.pipeline_report(world["rita"].id, "owner")
    assert set(flat(rita)) == {"Rita"} and rita["count"] == 4  # A, B, C and the lost L1
    maria = reports.pipeline_report(world["maria"].id, "owner")
    assert set(flat(maria)) == {"Rita", "Maria"}
    bob = reports.pipeline_report(world["bob"].id, "source")
    assert flat(bob) == {"Website": {"USD": (1, Decimal("3000"), Decimal("1200.00"))},
                         "Not set": {"USD": (1, Decimal("300"), Decimal("0.00"))}}


def test_dimensions_through_the_account_and_the_close_month_and_quarter(world):
    admin = world["admin"].id
    open_only = reports.Filters(status="open")
    assert flat(reports.pipeline_report(admin, "industry", open_only)) == {
        "Retail": {"USD": (2, Decimal("3000"), Decimal("1500.00")), "EUR": (1, Decimal("500"), Decimal("50.00"))},
        "Mining": {"USD": (1, Decimal("3000"), Decimal("1200.00"))}}
    by_country = reports.pipeline_report(admin, "country", open_only)
    assert {row["key"]: row["label"] for row in by_country["rows"]} == {"VN": "Vietnam", "PL": "Poland"}
    months = reports.pipeline_report(admin, "close_month", open_only)
    assert [(row["key"], row["count"]) for row in months["rows"]] == [("2026-03", 3), ("2026-04", 1)]
    quarters = reports.pipeline_report(admin, "close_quarter")
    assert [(row["key"], row["count"]) for row in quarters["rows"]] == [("2026-Q1", 6), ("2026-Q2", 1)]
    stages = reports.pipeline_report(admin, "stage", open_only)
    assert [row["label"] for row in stages["rows"]] == ["Qualified", "Proposal Submitted", "Negotiating"]


def test_filters_narrow_the_report(world):
    admin = world["admin"].id
    sales = User.get_by_id(world["rita"].id).department_id
    in_sales = reports.pipeline_report(admin, "owner", reports.Filters(department_id=sales))
    assert set(flat(in_sales)) == {"Rita", "Maria"}
    march = reports.pipeline_report(admin, "owner", reports.Filters(date_from=dt.date(2026, 3, 1),
                                                                    date_to=dt.date(2026, 3, 31)))
    assert {row["label"]: row["count"] for row in march["rows"]} == {"Rita": 2, "Bob": 1}
    # A closed deal counts on the day it closed, not the day it was expected to.
    february = reports.pipeline_report(admin, "owner", reports.Filters(date_from=dt.date(2026, 2, 2)))
    assert "Maria" in flat(february)
    won = reports.pipeline_report(admin, "owner", reports.Filters(status="won", owner_id=world["maria"].id))
    assert flat(won) == {"Maria": {"USD": (1, Decimal("100"), Decimal("100.00"))}}


def test_the_api_answers_the_report_and_refuses_what_it_does_not_know(app, world):
    client = api_client(app, world["rita"])
    response = client.get("/api/v1/reports/pipeline?by=owner&status=open")
    assert response.status_code == 200
    body = response.get_json()
    assert body["count"] == 3
    assert body["rows"][0]["totals"] == [
        {"currency": "EUR", "count": 1, "amount": "500", "weighted_amount": "50"},
        {"currency": "USD", "count": 2, "amount": "3000", "weighted_amount": "1500"}]
    unknown = client.get("/api/v1/reports/pipeline?by=horoscope", headers={"Accept-Language": "pl"})
    assert unknown.status_code == 400 and "by" in unknown.get_json()["error"]["fields"]
    assert "owner" in unknown.get_json()["error"]["fields"]["by"][0]
    backwards = client.get("/api/v1/reports/pipeline?by=owner&date_from=2026-03-02&date_to=2026-03-01")
    assert backwards.status_code == 400 and "date_to" in backwards.get_json()["error"]["fields"]
    assert client.get("/api/v1/reports/pipeline?by=owner&colour=red").status_code == 400
    assert app.test_client().get("/api/v1/reports/pipeline?by=owner").status_code == 401


def test_grouping_by_a_hidden_field_is_a_400_and_hidden_amounts_stay_hidden(app, world):
    org.set_field_rules(org.role_by_key("sales_rep"), {("opportunity", "source"): "hidden",
                                                       ("opportunity", "amount"): "hidden"})
    g.pop("_crm_access", None)
    client = api_client(app, world["rita"])
    hidden = client.get("/api/v1/reports/pipeline?by=source")
    assert hidden.status_code == 400 and hidden.get_json()["error"]["code"] == "hidden_field"
    report = client.get("/api/v1/reports/pipeline?by=owner").get_json()
    assert report["count"] == 4
    assert {e["amount"] for row in report["rows"] for e in row["totals"]} == {None}


def plugin_module(name, *hooks):
    """A plugin that is not installed: a module with a manifest and @hookimpl functions."""
    module = types.ModuleType(f"crm_{name}")
    module.manifest = PluginManifest(name=name, label=name.title(), version="1.0")
    for function in hooks:
        setattr(module, function.__name__, hookimpl(function))
    return module


def test_hook_crm_register_report_dimensions(app_factory, register_plugin):
    def crm_register_report_dimensions(app):
        # A stand-in for the territory plugin: the first letter of the owner's name.
        from crm_core.users.models import User

        def join(query):
            return query.join(User, peewee.JOIN.LEFT_OUTER, on=(Opportunity.owner_id == User.id))

        return [ReportDimension("initial", "Initial", peewee.fn.SUBSTR(User.name, 1, 1), join=join,
                                names=lambda values, user_id: {v: f"Letter {v}" for v in values})]

    register_plugin(plugin_module("initials", crm_register_report_dimensions))
    app = app_factory()
    with app.app_context():
        assert "initial" in app.extensions["crm"].registries["report dimensions"]
        assert app.extensions["crm"].registries["report dimensions"].owner("initial") == "initials"
        people = make_sales_team()
        for owner in ("rita", "rita", "bob"):
            account = accounts.create_account({"name": "Minh An"}, actor_id=people[owner].id)
            opps.create_opportunity({"name": "X", "account_id": account.id, "amount": Decimal("10")},
                                    actor_id=people[owner].id)
        admin = make_user(is_admin=True)
        g.pop("_crm_access", None)
        report = reports.pipeline_report(admin.id, "initial")
        assert [(row["label"], row["count"]) for row in report["rows"]] == [("Letter R", 2), ("Letter B", 1)]
        # Still under the access engine: Bob's report has only his own deal.
        assert [(row["label"], row["count"]) for row in reports.pipeline_report(people["bob"].id, "initial")["rows"]] \
            == [("Letter B", 1)]
        client = api_client(app, admin)
        assert client.get("/api/v1/reports/pipeline?by=initial").get_json()["count"] == 3


def test_a_dimension_registered_twice_stops_the_start(app_factory, register_plugin):
    def crm_register_report_dimensions(app):
        return [ReportDimension("owner", "Owner again", Opportunity.owner_id)]

    register_plugin(plugin_module("again", crm_register_report_dimensions))
    with pytest.raises(RegistryError, match="report dimension 'owner' is registered twice"):
        app_factory()


# -- lost deals ------------------------------------------------------------------------------------------

def test_lost_deals_by_reason_stage_owner_and_competitor(world):
    admin = world["admin"].id
    assert flat(reports.lost_deals_report(admin, "reason")) == {
        "Price": {"USD": (1, Decimal("700"), None)}, "Timing": {"USD": (1, Decimal("300"), None)}}
    # The stage each deal was in before it was lost comes from its stage history.
    assert flat(reports.lost_deals_report(admin, "stage")) == {
        "Qualified": {"USD": (1, Decimal("300"), None)}, "Proposal Submitted": {"USD": (1, Decimal("700"), None)}}
    assert [row["label"] for row in reports.lost_deals_report(admin, "stage")["rows"]] == [
        "Qualified", "Proposal Submitted"]
    by_competitor = reports.lost_deals_report(admin, "competitor")
    assert {row["label"]: row["count"] for row in by_competitor["rows"]} == {"Acme": 2, "Globex": 1}
    assert by_competitor["count"] == 3  # a deal naming two competitors counts for each
    january_first_half = reports.lost_deals_report(admin, "owner", reports.Filters(date_to=dt.date(2026, 1, 15)))
    assert flat(january_first_half) == {"Rita": {"USD": (1, Decimal("700"), None)}}
    assert set(flat(reports.lost_deals_report(world["bob"].id, "reason"))) == {"Timing"}


def test_the_lost_deal_api(app, world):
    client = api_client(app, world["rita"])
    body = client.get("/api/v1/reports/lost-deals?by=stage").get_json()
    assert [(row["label"], row["count"]) for row in body["rows"]] == [("Proposal Submitted", 1)]
    assert body["totals"] == [{"currency": "USD", "count": 1, "amount": "700"}]
    assert client.get("/api/v1/reports/lost-deals?by=weather").status_code == 400


# -- stage history and velocity --------------------------------------------------------------------------

def at(day, hour=9):
    return dt.datetime(2026, 1, day, hour, tzinfo=UTC)


def backdate(deal, *times):
    """Give the deal's moves, in order, these times."""
    changes = list(StageChange.select().where(StageChange.opportunity == deal.id)
                   .order_by(StageChange.changed_at, StageChange.id))
    assert len(changes) == len(times)
    for change, when in zip(changes, times):
        StageChange.update(changed_at=when).where(StageChange.id == change.id).execute()


def test_stage_history_lists_every_move_with_its_time_in_stage(app, world):
    deal = world["deals"]["lost1"]
    backdate(deal, at(1), at(3), at(10))
    history = reports.stage_history(deal, now=at(20))
    assert [(h["from_stage"], h["to_stage"], h["days_in_stage"], h["current"]) for h in history] == [
        (None, "Qualified", 2.0, False), ("Qualified", "Proposal Submitted", 7.0, False),
        ("Proposal Submitted", "Sale Lost", None, True)]
    assert history[0]["changed_by"] == "Rita" and history[0]["amount"] == Decimal("700")
    open_deal = world["deals"]["b"]
    backdate(open_deal, at(1), at(2, 21))
    assert [h["days_in_stage"] for h in reports.stage_history(open_deal, now=at(4, 9))] == [1.5, 1.5]


def test_the_stage_history_api_is_a_404_for_a_deal_the_caller_cannot_see(app, world):
    deal = world["deals"]["lost1"]
    rita = api_client(app, world["rita"]).get(f"/api/v1/opportunities/{deal.id}/stage-history")
    assert rita.status_code == 200
    assert [item["to_stage"] for item in rita.get_json()["items"]] == ["Qualified", "Proposal Submitted", "Sale Lost"]
    assert api_client(app, world["maria"]).get(f"/api/v1/opportunities/{deal.id}/stage-history").status_code == 200
    bob = api_client(app, world["bob"]).get(f"/api/v1/opportunities/{deal.id}/stage-history")
    missing = api_client(app, world["bob"]).get("/api/v1/opportunities/999999/stage-history")
    assert bob.status_code == missing.status_code == 404
    assert bob.get_json() == missing.get_json()


def test_velocity_per_stage_and_days_to_win(app, world):
    deals = world["deals"]
    backdate(deals["lost1"], at(1), at(3), at(10))       # qualified 2 days, proposal 7 days
    backdate(deals["b"], at(1), at(5))                   # qualified 4 days
    backdate(deals["e"], at(2), at(8))                   # qualified 6 days, then won: 6 days to win
    backdate(deals["d"], at(1), at(2))                   # qualified 1 day (Bob's)
    backdate(deals["lost2"], at(1), at(21))              # qualified 20 days (Bob's)
    report = reports.velocity_report(world["admin"].id, reports.Filters(date_to=dt.date(2026, 1, 15)))
    sales = next(p for p in report["pipelines"] if p["name"] == "Sales")
    rows = {s["name"]: (s["count"], s["average_days"], s["median_days"]) for s in sales["stages"]}
    assert rows["Qualified"] == (4, 3.2, 3.0)  # 2, 4, 6 and 1 days; Bob's 20 ended after the period
    assert rows["Proposal Submitted"] == (1, 7.0, 7.0)
    assert rows["Negotiating"] == (0, None, None)
    assert (sales["won_count"], sales["average_days_to_win"], sales["median_days_to_win"]) == (1, 6.0, 6.0)
    mine = reports.velocity_report(world["rita"].id)
    rita_sales = next(p for p in mine["pipelines"] if p["name"] == "Sales")
    assert {s["name"]: s["count"] for s in rita_sales["stages"]}["Qualified"] == 2  # L1 and B only
    assert rita_sales["won_count"] == 0
    client = api_client(app, world["rita"])
    body = client.get("/api/v1/reports/velocity").get_json()
    assert next(p for p in body["pipelines"] if p["name"] == "Sales")["stages"][0]["average_days"] == 3.0
