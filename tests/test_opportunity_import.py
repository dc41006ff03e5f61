"""Opportunities through the importer: lookup columns (a stage by name within the row's
pipeline), the opportunity's rules and stage gates per row, the first stage history row of
each new opportunity, updates by external id through the service, row hashes, money with
its currency and dates in common formats."""

import datetime as dt
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.imports import converters, services
from crm_core.imports.converters import Bad
from crm_core.leads import services as leads
from crm_core.opportunities import services as opportunities
from crm_core.opportunities.models import LostReason, Opportunity, Pipeline, Stage, StageChange
from crm_core.testing import make_sales_team

from tests.test_imports import codes, csv_bytes


@pytest.fixture
def people(app):
    return make_sales_team()


def run(user, rows, **options):
    g.pop("_crm_access", None)
    return services.start_import("opportunity", csv_bytes(rows), "deals.csv", user.id, **options)


def messages(run_):
    return [(e["row"], e["column"], e["message"]) for e in services.errors(run_)]


def test_lookups_by_name_email_and_external_id_and_the_stage_within_the_rows_pipeline(app, people):
    rita, maria = people["rita"], people["maria"]
    acme = accounts.create_account({"name": "Acme", "external_id": "A-1"}, actor_id=rita.id)
    contact = accounts.create_contact({"last_name": "Le", "email": "le@acme.example", "account_id": acme.id},
                                      actor_id=rita.id)
    campaign = leads.create_campaign({"name": "Expo"}, actor_id=rita.id)
    second = opportunities.create_pipeline({"name": "Renewals", "stages": [
        {"name": "Qualified", "probability": 25}, {"name": "Renewed", "kind": "won", "probability": 100}]},
        actor_id=maria.id)
    result = run(rita, [
        ["name", "account", "contact", "owner", "pipeline", "stage", "campaign", "amount", "currency",
         "expected_close_date", "external_id"],
        ["Big deal", "acme", "le@acme.example", "maria@example.com", "", "Negotiating", "expo", "1 000,50",
         "eur", "2027-03-01", "D-1"],
        ["Renewal", "A-1", "", "", "renewals", "qualified", "", "$2,500.00", "", "15.03.2027", "D-2"],
    ])
    assert (result.status, result.created_count, codes(result)) == ("done", 2, [])
    big = Opportunity.get(Opportunity.external_id == "D-1")
    standard = opportunities.default_pipeline()
    assert (big.account_id, big.contact_id, big.owner_id, big.campaign_id) == (acme.id, contact.id, maria.id,
                                                                            campaign.id)
    assert (big.pipeline_id, big.stage.key, big.status, big.probability) == (standard.id, "negotiating", "open", 70)
    assert (big.amount, big.currency, big.expected_close_date) == (Decimal("1000.50"), "EUR", dt.date(2027, 3, 1))
    renewal = Opportunity.get(Opportunity.external_id == "D-2")
    # "Qualified" exists in both pipelines: the row's pipeline decides.
    assert (renewal.pipeline_id, renewal.stage.pipeline_id, renewal.probability) == (second.id, second.id, 25)
    assert (renewal.owner_id, renewal.amount, renewal.currency) == (rita.id, Decimal("2500"), "USD")
    assert renewal.expected_close_date == dt.date(2027, 3, 15)
    history = {c.opportunity_id: c for c in StageChange.select()}
    assert history[big.id].to_stage_id == big.stage_id and history[big.id].from_stage_id is None
    assert (history[big.id].amount, history[big.id].currency, history[big.id].probability) == (
        Decimal("1000.50"), "EUR", 70)
    assert history[big.id].changed_by_id == rita.id


def test_closed_stages_set_status_closed_date_and_need_a_lost_reason(app, people):
    rita = people["rita"]
    accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    LostReason.create(name="Price")
    header = ["name", "account", "stage", "lost_reason", "closed_date", "probability"]
    result = run(rita, [header,
                        ["Won one", "Acme", "Sale Agreed", "", "2017-03-01", ""],
                        ["Lost one", "Acme", "sale_lost", "price", "", "5"],
                        ["Open one", "Acme", "", "", "2017-03-01", ""]])
    assert (result.created_count, codes(result)) == (3, [])
    won, lost, open_ = (Opportunity.get(Opportunity.name == n) for n in ("Won one", "Lost one", "Open one"))
    assert (won.status, won.closed_date, won.probability) == ("won", dt.date(2017, 3, 1), 100)
    assert (lost.status, lost.lost_reason.name, lost.probability) == ("lost", "Price", 5)
    assert lost.closed_date is not None
    # No stage: the pipeline's first open stage, and an open deal has no closed date.
    assert (open_.status, open_.stage.key, open_.closed_date) == ("open", "qualified", None)

    refused = run(rita, [header, ["Lost again", "Acme", "Sale Lost", "", "", ""]])
    assert (refused.status, refused.created_count) == ("refused", 0)
    assert codes(refused) == [(2, "lost_reason", "rejected")]
    assert "Choose why the deal was lost." in messages(refused)[0][2]
    assert not Opportunity.select().where(Opportunity.name == "Lost again").exists()


def gate(app, actor_id, opportunity, from_stage, to_stage, values):
    """A plugin's stage gate: Negotiating needs an amount and a next step."""
    if to_stage.key != "negotiating":
        return []
    unmet = []
    if values.get("amount") is None:
        unmet.append(("amount", "Negotiating needs an amount."))
    if not values.get("next_step"):
        unmet.append(("next_step", "Negotiating needs a next step."))
    return unmet


def test_rows_failing_the_stage_gates_are_refused_with_every_message(app, people):
    from tests.test_opportunities import listener

    undo = listener(app, "import_gate", crm_stage_transition_check=gate)
    try:
        rita = people["rita"]
        accounts.create_account({"name": "Acme"}, actor_id=rita.id)
        header = ["name", "account", "stage", "amount", "next_step", "external_id"]
        result = run(rita, [header,
                            ["Good", "Acme", "Negotiating", "10", "Call", "G-1"],
                            ["Bad", "Acme", "Negotiating", "", "", "G-2"]], partial=True)
        assert (result.created_count, codes(result)) == (1, [(3, "amount", "rejected")])
        message = messages(result)[0][2]
        assert "Negotiating needs an amount." in message and "Negotiating needs a next step." in message
        assert not Opportunity.select().where(Opportunity.external_id == "G-2").exists()
        # An update moving into the gated stage goes through the service: refused the same way.
        result = run(rita, [header, ["Good", "Acme", "Qualified", "10", "Call", "G-1"]])
        assert (result.updated_count, codes(result)) == (1, [])
        result = run(rita, [["external_id", "stage", "next_step"], ["G-1", "Negotiating", ""]])
        assert codes(result) == [(2, "next_step", "rejected")]
        assert "Negotiating needs a next step." in messages(result)[0][2]
        good = Opportunity.get(Opportunity.external_id == "G-1")
        assert good.stage.key == "qualified"
        assert [c.to_stage.key for c in StageChange.select().where(StageChange.opportunity == good.id)
                .order_by(StageChange.id)] == ["negotiating", "qualified"]
    finally:
        undo()


def test_updates_by_external_id_move_stages_with_history_and_second_runs_skip(app, people):
    rita = people["rita"]
    accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    header = ["name", "account", "stage", "amount"]
    rows = [header, ["No id", "Acme", "Proposal Submitted", "100"]]
    assert run(rita, rows).created_count == 1
    again = run(rita, rows)
    assert (again.created_count, again.skipped_count) == (0, 1)
    assert Opportunity.select().count() == 1

    first = run(rita, [header + ["external_id"], ["Keyed", "Acme", "Qualified", "5", "K-1"]])
    assert first.created_count == 1
    moved = run(rita, [["external_id", "stage"], ["K-1", "Sale Agreed"]])
    assert (moved.updated_count, codes(moved)) == (1, [])
    keyed = Opportunity.get(Opportunity.external_id == "K-1")
    assert (keyed.status, keyed.probability, keyed.closed_date is not None) == ("won", 100, True)
    assert StageChange.select().where(StageChange.opportunity == keyed.id).count() == 2


def test_bad_values_are_per_row_errors_and_nothing_is_half_written(app, people):
    rita, bob = people["rita"], people["bob"]
    accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    accounts.create_account({"name": "Hidden"}, actor_id=bob.id)
    header = ["name", "account", "stage", "amount", "currency", "expected_close_date", "probability"]
    result = run(rita, [header,
                        ["Ok", "Acme", "", "10", "", "", ""],
                        ["Other's account", "Hidden", "", "", "", "", ""],
                        ["No stage", "Acme", "Nowhere", "", "", "", ""],
                        ["Mixed money", "Acme", "", "EUR 10", "USD", "", ""],
                        ["Swappable day", "Acme", "", "", "", "03/04/2027", ""],
                        ["Too likely", "Acme", "", "", "", "", "150"],
                        ["", "Acme", "", "", "", "", ""]])
    assert result.created_count == 0
    assert codes(result) == [(3, "account", "not_found"), (4, "stage", "not_found"),
                             (5, "amount", "currency_mismatch"), (6, "expected_close_date", "date_ambiguous"),
                             (7, "probability", "rejected"), (8, "name", "required")]
    assert Opportunity.select().count() == 0 and StageChange.select().count() == 0


def test_the_api_imports_opportunities_and_says_why_in_the_importers_language(app, people):
    from tests.test_imports import upload_json
    from crm_core.testing import api_client

    rita = people["rita"]
    rita.locale = "pl"  # a refused row's service message is kept in the language of who imports
    rita.save()
    accounts.create_account({"name": "Acme"}, actor_id=rita.id)
    client = api_client(app, rita)
    answer = client.post("/api/v1/imports", json=upload_json("opportunity", [
        ["name", "account", "stage"], ["Lost", "Acme", "Sale Lost"]]), headers={"Accept-Language": "pl"})
    assert answer.status_code in (200, 201), answer.get_json()
    error = answer.get_json()["errors"][0]
    assert (error["code"], error["message"].startswith("Etap „Sale Lost” nie jest")) == ("rejected", True), error
    assert Opportunity.select().count() == 0


@pytest.mark.parametrize("text, expected", [
    ("2017-03-01", dt.date(2017, 3, 1)), ("2017/3/1", dt.date(2017, 3, 1)), ("1.3.2017", dt.date(2017, 3, 1)),
    ("1 Mar 2017", dt.date(2017, 3, 1)), ("Mar 1, 2017", dt.date(2017, 3, 1)),
    ("13/3/2017", dt.date(2017, 3, 13)), ("3/13/2017", dt.date(2017, 3, 13)), ("2017-03-01T10:00", dt.date(2017, 3, 1)),
])
def test_dates_in_common_formats(text, expected):
    assert converters.date(text) == expected


@pytest.mark.parametrize("text, code", [("3/4/2017", "date_ambiguous"), ("31/31/2017", "date"), ("soon", "date")])
def test_dates_that_cannot_be_read_or_could_be_swapped_are_refused(text, code):
    with pytest.raises(Bad) as refused:
        converters.date(text)
    assert refused.value.code == code


@pytest.mark.parametrize("text, expected", [
    ("1054", Decimal("1054")), ("$1,054", (Decimal("1054"), "USD")), ("1 054,50 EUR", (Decimal("1054.50"), "EUR")),
    ("pln 12", (Decimal("12"), "PLN")), ("12 €", (Decimal("12"), "EUR")),
])
def test_money_with_its_currency(text, expected):
    assert converters.money(text) == expected


def test_the_import_page_takes_opportunities_with_a_saved_mapping(app, people):
    import io

    from crm_core.testing import page_and_token, signed_in

    rita = people["rita"]
    accounts.create_account({"name": "Cancity"}, actor_id=rita.id)
    browser = signed_in(app, rita)
    html, token = page_and_token(browser, "/imports/mappings")
    saved = browser.post("/imports/mappings", data={
        "csrf_token": token, "object": "opportunity", "name": "Maven",
        "mapping": "opportunity_id = external_id\nproduct = name\ndeal_stage = stage\nclose_value = amount\n"
                   "engage_date =\n"})
    assert saved.status_code == 302
    mapping = services.mappings()[0]
    html, token = page_and_token(browser, "/imports/")
    assert 'value="opportunity"' in html
    data = csv_bytes([["opportunity_id", "product", "account", "deal_stage", "engage_date", "close_value"],
                      ["1C1I7A6R", "GTX Plus Basic", "Cancity", "Qualified", "2016-10-20", "1054"]])
    response = browser.post("/imports/", data={"csrf_token": token, "object": "opportunity",
                                               "mapping_id": str(mapping.id), "file": (io.BytesIO(data), "deals.csv")},
                            content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    deal = Opportunity.get(Opportunity.external_id == "1C1I7A6R")
    assert (deal.name, deal.amount, deal.owner_id) == ("GTX Plus Basic", Decimal("1054"), rita.id)
    # Bob (another department) sees neither the run nor the opportunity.
    run_id = response.headers["Location"].rstrip("/").split("/")[-1]
    assert signed_in(app, people["bob"]).get(f"/imports/{run_id}").status_code == 404
