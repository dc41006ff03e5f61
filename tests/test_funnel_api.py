"""The funnel over HTTP: GET /api/v1/reports/funnel as CONTRACT.md describes it, for each
reader; bad input as a clear 422 in the reader's language; the currency rates API; the
funnel page (scopes, chart, links to the opportunity list), the dashboard widget and the
rates page, each showing only what the reader may see."""

import datetime
import re
from decimal import Decimal
from html import unescape

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.funnel.models import CurrencyRate
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Pipeline, Stage
from crm_core.org import services as org
from crm_core.org.models import Department
from crm_core.testing import api_client, make_sales_team, make_user, signed_in
from crm_core.testing import page_and_token as page


@pytest.fixture
def world(app):
    people = make_sales_team()
    people["admin"] = make_user("boss@example.com", "Boss", is_admin=True)
    auditor = make_user("auditor@example.com", "Auditor")
    org.set_roles(auditor, ["auditor"])
    people["auditor"] = auditor
    org.set_default("account", "read")
    account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
    opps.default_pipeline()

    def stage(key):
        return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))

    def deal(owner, amount, key, **values):
        return opps.create_opportunity({"name": f"Deal {amount}", "account_id": account.id, "owner_id": owner.id,
                                        "amount": Decimal(amount), "stage_id": stage(key).id, **values},
                                       actor_id=owner.id)
    lost = opps.create_lost_reason({"name": "Price"})
    deal(people["rita"], "1000", "qualified")
    deal(people["rita"], "2000", "negotiating")
    deal(people["rita"], "3000", "sale_agreed", closed_date=datetime.date(2026, 3, 10))
    deal(people["rita"], "1000", "sale_lost", lost_reason_id=lost.id, closed_date=datetime.date(2026, 5, 1))
    deal(people["bob"], "777", "qualified")
    g.pop("_crm_access", None)
    people["stage"] = stage
    return people


def stages(body):
    return {s["name"]: (s["count"], s["amount"], s["weighted_amount"]) for s in body["stages"]}


def text(response):
    return unescape(response.get_data(as_text=True))


def test_the_funnel_api_answers_per_stage_with_totals_and_win_rate(app, world):
    body = api_client(app, world["rita"]).get("/api/v1/reports/funnel").get_json()
    assert [s["name"] for s in body["stages"]] == ["Qualified", "Proposal Submitted", "Negotiating",
                                                    "Sale Agreed", "Sale Lost"]
    assert {"stage_id", "name", "kind", "count", "amount", "weighted_amount"} <= set(body["stages"][0])
    assert stages(body)["Negotiating"] == (1, "2000", "1400")
    assert (body["total_count"], body["total_amount"], body["weighted_amount"]) == (2, "3000", "1500")
    assert body["win_rate"] == 0.5 and body["win_rate_value"] == 0.75 and body["currency"] == "USD"
    period = api_client(app, world["rita"]).get(
        "/api/v1/reports/funnel?closed_from=2026-03-01&closed_to=2026-03-31").get_json()
    assert (period["won_count"], period["lost_count"], period["win_rate"]) == (1, 0, 1.0)


def test_each_reader_counts_only_what_they_may_see(app, world):
    def total(user, query=""):
        response = api_client(app, user).get(f"/api/v1/reports/funnel{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["total_count"]

    assert total(world["rita"]) == 2
    assert total(world["maria"]) == 2  # her department: Rita's
    assert total(world["bob"]) == 1  # another department: only his own
    assert total(world["admin"]) == 3 and total(world["auditor"]) == 3
    assert total(world["bob"], f"?owner_id={world['rita'].id}") == 0
    sales = Department.get(Department.name == "Sales")
    assert total(world["admin"], f"?department_id={sales.id}") == 2
    assert total(world["bob"], f"?department_id={sales.id}") == 0
    team = org.create_team("Mixed", [world["rita"].id, world["bob"].id])
    assert total(world["admin"], f"?team_id={team.id}") == 3
    assert total(world["maria"], f"?team_id={team.id}") == 2


def test_bad_input_is_a_clear_422_in_the_readers_language(app, world):
    client = api_client(app, world["rita"])
    response = client.get("/api/v1/reports/funnel?department_id=999999", headers={"Accept-Language": "vi"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["department_id"] == ["Phòng ban không tồn tại."]
    response = client.get("/api/v1/reports/funnel?currency=EUR")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "missing_rate"
    response = client.get("/api/v1/reports/funnel?closed_from=2026-05-01&closed_to=2026-01-01")
    assert response.status_code == 422 and "closed_to" in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/reports/funnel?pipeline_id=999999").status_code == 422
    assert client.get("/api/v1/reports/funnel?owner_id=abc").status_code == 400  # a malformed query argument
    assert client.get("/api/v1/reports/funnel?currency=EURO").status_code == 422


def test_the_currency_rates_api(app, world):
    admin, rita = api_client(app, world["admin"]), api_client(app, world["rita"])
    assert rita.post("/api/v1/currency-rates", json={"currency": "EUR", "rate": "1.1",
                                                      "valid_from": "2026-01-01"}).status_code == 403
    created = admin.post("/api/v1/currency-rates", json={"currency": "eur", "rate": "1.10",
                                                          "valid_from": "2020-01-01"})
    assert created.status_code == 201 and created.get_json()["rate"] == "1.1"
    assert created.get_json()["currency"] == "EUR"
    refused = admin.post("/api/v1/currency-rates", json={"currency": "EUR", "rate": "-1", "valid_from": "2020-01-01"})
    assert refused.status_code == 422 and set(refused.get_json()["error"]["fields"]) == {"rate"}
    again = admin.post("/api/v1/currency-rates", json={"currency": "EUR", "rate": "1.2", "valid_from": "2020-01-01"})
    assert again.status_code == 422 and set(again.get_json()["error"]["fields"]) == {"valid_from"}
    assert CurrencyRate.select().count() == 1
    listed = rita.get("/api/v1/currency-rates").get_json()
    assert listed["company_currency"] == "USD" and [r["currency"] for r in listed["items"]] == ["EUR"]
    body = rita.get("/api/v1/reports/funnel?currency=EUR").get_json()
    assert body["total_amount"] == "2727.2727" and body["currency"] == "EUR"
    rate_id = created.get_json()["id"]
    assert rita.get(f"/api/v1/currency-rates/{rate_id}").status_code == 200
    assert rita.delete(f"/api/v1/currency-rates/{rate_id}").status_code == 403
    assert admin.delete(f"/api/v1/currency-rates/{rate_id}").status_code == 204
    assert admin.delete(f"/api/v1/currency-rates/{rate_id}").status_code == 404


def test_hidden_amounts_are_not_summed_for_the_reader(app, world):
    from crm_core.org.models import FieldRule

    FieldRule.create(role=org.role_by_key("sales_rep").id, object="opportunity", field="amount", level=0)
    g.pop("_crm_access", None)
    body = api_client(app, world["rita"]).get("/api/v1/reports/funnel").get_json()
    assert body["total_count"] == 2 and body["total_amount"] is None and body["weighted_amount"] is None
    assert all(s["amount"] is None and s["weighted_amount"] is None for s in body["stages"])
    assert body["win_rate"] == 0.5 and body["win_rate_value"] is None
    assert api_client(app, world["admin"]).get("/api/v1/reports/funnel").get_json()["total_amount"] == "3777"


# -- pages ------------------------------------------------------------------------------------

def test_the_funnel_page_draws_the_stages_with_links_to_the_list(app, world):
    browser = signed_in(app, world["rita"])
    html, _ = page(browser, "/reports/funnel")
    html = unescape(html)
    qualified = world["stage"]("qualified")
    assert f'/opportunities/?pipeline_id={qualified.pipeline_id}&stage_id={qualified.id}&owner_id={world["rita"].id}' in html
    assert "<svg" in html and "1 opportunity" in html and "$1,000.00" in html
    assert "Win rate by count" in html and "50%" in html
    assert "$777" not in html  # Bob's deal
    sales = Department.get(Department.name == "Sales")
    html = text(browser.get(f"/reports/funnel?scope=department:{sales.id}"))
    assert f"department_id={sales.id}" in html and "$777" not in html
    assert "$777" not in text(browser.get("/reports/funnel?scope=all"))
    assert "$777" not in text(browser.get(f"/reports/funnel?scope=owner:{world['bob'].id}"))
    admin = signed_in(app, world["admin"])
    assert "$1,777.00" in text(admin.get("/reports/funnel?scope=all"))  # Rita's 1,000 and Bob's 777


def test_the_funnel_page_in_another_language_and_with_bad_input(app, world):
    browser = signed_in(app, world["rita"])
    html = text(browser.get("/reports/funnel?lang=pl"))
    assert "Lejek sprzedaży" in html
    refused = browser.get("/reports/funnel?currency=EUR&lang=en")
    assert refused.status_code == 422 and "Currency rates" in text(refused)
    refused = browser.get("/reports/funnel?closed_from=2026-05-01&closed_to=2026-01-01")
    assert refused.status_code == 422 and "Choose an end on or after the start." in text(refused)


def test_a_reader_without_opportunities_gets_a_403_and_anonymous_the_login(app, world):
    nobody = make_user("nobody@example.com", "Nobody")
    assert signed_in(app, nobody).get("/reports/funnel").status_code == 403
    assert app.test_client().get("/reports/funnel").status_code == 302


def test_the_dashboard_shows_the_readers_own_funnel(app, world):
    html = text(signed_in(app, world["rita"]).get("/"))
    assert "My funnel" in html and "$2,000.00" in html and "$777" not in html
    html = text(signed_in(app, world["bob"]).get("/"))
    assert "My funnel" in html and "$777.00" in html and "$2,000.00" not in html


def test_the_rates_page_lets_the_administrator_add_and_delete_rates(app, world):
    admin = signed_in(app, world["admin"])
    html, token = page(admin, "/currency-rates")
    assert "No rates yet." in html
    refused = admin.post("/currency-rates", data={"currency": "EUR", "rate": "abc", "valid_from": "2026-01-01",
                                                  "csrf_token": token})
    assert refused.status_code == 422 and "Enter a rate greater than zero" in text(refused)
    assert admin.post("/currency-rates", data={"currency": "EUR", "rate": "1.1", "valid_from": "2026-01-01"}
                      ).status_code == 400  # no CSRF token
    saved = admin.post("/currency-rates", data={"currency": "EUR", "rate": "1.1", "valid_from": "2026-01-01",
                                                "csrf_token": token})
    assert saved.status_code == 302
    rate = CurrencyRate.get()
    rep = signed_in(app, world["rita"])
    html, rep_token = page(rep, "/currency-rates")
    assert "1.1" in html and "New rate" not in html
    assert rep.post(f"/currency-rates/{rate.id}/delete", data={"csrf_token": rep_token}).status_code == 403
    assert admin.post(f"/currency-rates/{rate.id}/delete", data={"csrf_token": token}).status_code == 302
    assert CurrencyRate.select().count() == 0
    assert re.search(r"No rates yet", text(admin.get("/currency-rates")))


# -- restricted to one value of a report dimension ----------------------------------------------------

def test_the_funnel_restricted_by_a_dimension_counts_exactly_those_opportunities(app, world):
    polish = accounts.create_account({"name": "Wisła", "country": "PL"}, actor_id=world["rita"].id)
    opps.create_opportunity({"name": "Polish deal", "account_id": polish.id, "owner_id": world["rita"].id,
                             "amount": Decimal("500"), "stage_id": world["stage"]("qualified").id},
                            actor_id=world["rita"].id)
    g.pop("_crm_access", None)
    maria = api_client(app, world["maria"])

    def funnel(query, client=maria):
        response = client.get(f"/api/v1/reports/funnel?{query}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    by_country = funnel("dimension=country&value=PL")
    assert (by_country["total_count"], by_country["total_amount"]) == (1, "500")
    assert (by_country["dimension"], by_country["value"], by_country["value_label"]) == ("country", "PL", "Poland")
    without = funnel("dimension=country&value=")  # no country: Rita's deals on Minh An
    assert (without["total_count"], without["value"]) == (2, None)
    assert without["won_count"] == 1 and without["lost_count"] == 1
    # The same numbers as the owner filter, by another road (the exact scan).
    by_owner = funnel(f"dimension=owner&value={world['rita'].id}")
    assert stages(by_owner) == stages(funnel(f"owner_id={world['rita'].id}"))
    assert by_owner["value_label"] == "Rita"
    qualified = funnel(f"dimension=stage&value={world['stage']('qualified').id}")
    assert qualified["total_count"] == 2  # Rita's two qualified deals (Bob's is not Maria's to see)
    # Still under the access rules: Bob sees none of Rita's deals.
    assert funnel(f"dimension=owner&value={world['rita'].id}", api_client(app, world["bob"]))["total_count"] == 0
    period = funnel("dimension=country&value=&closed_from=2026-03-01&closed_to=2026-03-31")
    assert (period["won_count"], period["lost_count"]) == (1, 0)


def test_an_unknown_or_hidden_dimension_is_a_400_in_the_readers_language(app, world):
    rita = world["rita"]
    org.set_field_rules(org.role_by_key("sales_rep"), {("account", "country"): "hidden"})
    rita.locale = "pl"
    rita.save()
    g.pop("_crm_access", None)
    client = api_client(app, rita)
    unknown = client.get("/api/v1/reports/funnel?dimension=colour&value=red")
    assert unknown.status_code == 400
    assert unknown.get_json()["error"]["fields"]["dimension"][0].startswith("Wybierz jedną z wartości: owner, source")
    hidden = client.get("/api/v1/reports/funnel?dimension=country&value=PL")
    assert hidden.status_code == 400 and hidden.get_json()["error"]["code"] == "hidden_field"
    assert "account.country" in hidden.get_json()["error"]["fields"]
    bad_value = client.get("/api/v1/reports/funnel?dimension=owner&value=rita")
    assert bad_value.status_code == 400
    assert bad_value.get_json()["error"]["fields"]["value"] == ["„rita” nie jest wartością tego wymiaru."]
    alone = client.get("/api/v1/reports/funnel?value=PL")
    assert alone.status_code == 400  # query parameters that do not fit: 400, like the others
    assert alone.get_json()["error"]["fields"]["dimension"] == ["Wskaż wymiar, do którego należy ta wartość."]


def test_the_funnel_page_passes_the_dimension_through(app, world):
    with signed_in(app, world["maria"]) as client:
        page = client.get(f"/reports/funnel?scope=all&dimension=owner&value={world['rita'].id}")
        assert page.status_code == 200
        html = text(page)
        assert '<input type="hidden" name="dimension" value="owner">' in html
        assert "Only the opportunities whose Owner is “Rita”." in html
        assert "1 opportunity" in html and "Open opportunities</dt><dd>2<" in html
        assert client.get("/reports/funnel?dimension=colour&value=red").status_code == 400


def test_the_openapi_document_describes_the_funnel_dimension(app, world):
    spec = api_client(app, world["admin"]).get("/api/v1/openapi.json").get_json()
    names = {p["name"] for p in spec["paths"]["/api/v1/reports/funnel"]["get"]["parameters"]}
    assert {"dimension", "value"} <= names


def test_a_computed_dimension_compares_its_value_as_text(app, world):
    opps.create_opportunity({"name": "May deal", "account_id": accounts.create_account(
        {"name": "Omsk"}, actor_id=world["rita"].id).id, "owner_id": world["rita"].id,
        "amount": Decimal("10"), "stage_id": world["stage"]("qualified").id,
        "expected_close_date": datetime.date(2026, 5, 20)}, actor_id=world["rita"].id)
    g.pop("_crm_access", None)
    client = api_client(app, world["rita"])
    may = client.get("/api/v1/reports/funnel?dimension=close_month&value=2026-05").get_json()
    assert (may["total_count"], may["total_amount"]) == (1, "10")
    number = client.get("/api/v1/reports/funnel?dimension=close_month&value=7")
    assert number.status_code == 200 and number.get_json()["total_count"] == 0
