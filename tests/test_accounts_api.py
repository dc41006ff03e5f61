"""Accounts and contacts through the API: what they hold, the references they must name,
the access rules on every list, detail and change, history and the recycle bin."""

import pytest
from flask import g

from crm_core.accounts.models import Account, Contact
from crm_core.org import services as org
from crm_core.permissions import Level, engine
from crm_core.testing import api_client, make_sales_team


@pytest.fixture
def company(app):
    """Sales (head: Maria) with Rita; Other with Bob."""
    people = make_sales_team()
    maria, rita, bob = people["maria"], people["rita"], people["bob"]
    return {"maria": api_client(app, maria), "rita": api_client(app, rita), "bob": api_client(app, bob),
            "ids": {"maria": maria.id, "rita": rita.id, "bob": bob.id}}


def new_account(client, **values):
    response = client.post("/api/v1/accounts", json={"name": "Công ty Minh An", **values})
    assert response.status_code == 201, response.json
    return response


def test_an_account_holds_what_a_business_partner_needs(company):
    rita = company["rita"]
    created = new_account(rita, kind="prospect", industry="Retail", country="vn", city="Hà Nội",
                          tax_id="0101234567", email=" Sales@MinhAn.VN ", currency="VND",
                          credit_limit="500000000", balance="1250000", credit_rating="A",
                          financial_status="good", employees=120)
    body = created.json
    assert body["owner_id"] == company["ids"]["rita"] and body["country"] == "VN"
    assert body["email"] == "sales@minhan.vn" and body["credit_limit"] == "500000000"
    assert created.headers["ETag"] == '"1"'
    assert rita.get(f"/api/v1/accounts/{body['id']}").json["balance"] == "1250000"


@pytest.mark.parametrize("values, field", [
    ({"name": "  "}, "name"),
    ({"kind": "friend"}, "kind"),
    ({"country": "XX"}, "country"),
    ({"email": "not an email"}, "email"),
    ({"credit_limit": "100"}, "currency"),            # an amount needs its currency
    ({"credit_rating": "excellent"}, "credit_rating"),
    ({"owner_id": 987654}, "owner_id"),
    ({"parent_id": 987654}, "parent_id"),
])
def test_bad_account_input_is_refused_and_nothing_is_written(company, values, field):
    response = company["rita"].post("/api/v1/accounts", json={"name": "X", **values})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert not Account.select().exists()


def test_a_rep_sees_their_own_their_manager_sees_theirs_another_department_nothing(company):
    account = new_account(company["rita"]).json
    url = f"/api/v1/accounts/{account['id']}"
    assert company["maria"].get(url).status_code == 200
    hidden, missing = company["bob"].get(url), company["bob"].get("/api/v1/accounts/987654")
    assert hidden.status_code == missing.status_code == 404 and hidden.json == missing.json
    assert company["bob"].get("/api/v1/accounts").json["total"] == 0
    assert company["maria"].get("/api/v1/accounts").json["total"] == 1
    # a parent the caller cannot see is refused exactly like a missing one
    refused = company["bob"].post("/api/v1/accounts", json={"name": "Sub", "parent_id": account["id"]})
    assert refused.status_code == 422 and "parent_id" in refused.json["error"]["fields"]


def test_changes_need_the_version_and_keep_history(company):
    rita = company["rita"]
    created = new_account(rita)
    url = f"/api/v1/accounts/{created.json['id']}"
    assert rita.patch(url, json={"industry": "Mining"}).status_code == 428
    changed = rita.patch(url, json={"industry": "Mining"}, headers={"If-Match": created.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] == '"2"'
    stale = rita.patch(url, json={"industry": "Retail"}, headers={"If-Match": created.headers["ETag"]})
    assert stale.status_code == 412
    history = rita.get(f"/api/v1/history/account/{created.json['id']}").json
    assert [(h["field"], h["new_value"]) for h in history] == [("industry", "Mining")]


def test_an_account_cannot_belong_to_its_own_subsidiary(company):
    rita = company["rita"]
    group = new_account(rita, name="Group").json
    child = new_account(rita, name="Child", parent_id=group["id"]).json
    cycle = rita.patch(f"/api/v1/accounts/{group['id']}", json={"parent_id": child["id"]},
                       headers={"If-Match": f'"{group["version"]}"'})
    assert cycle.status_code == 422 and "parent_id" in cycle.json["error"]["fields"]


def test_a_prospect_becomes_a_customer(company, app):
    from crm_core.accounts.services import record_first_order

    account = Account.get_by_id(new_account(company["rita"]).json["id"])
    assert account.became_customer_at is None
    record_first_order(account)
    stored = Account.get_by_id(account.id)
    assert stored.kind == "customer" and stored.became_customer_at is not None
    assert record_first_order(stored) == {}  # once only


def test_a_new_owner_ends_the_old_manual_shares(company, app):
    rita = company["rita"]
    account = new_account(rita).json
    shared = rita.post("/api/v1/access/shares", json={
        "object": "account", "record_id": account["id"], "target_type": "user",
        "target_id": company["ids"]["bob"], "level": "read"})
    assert shared.status_code == 201
    assert company["bob"].get(f"/api/v1/accounts/{account['id']}").status_code == 200
    moved = rita.patch(f"/api/v1/accounts/{account['id']}", json={"owner_id": company["ids"]["maria"]},
                       headers={"If-Match": '"1"'})
    assert moved.status_code == 200
    assert company["bob"].get(f"/api/v1/accounts/{account['id']}").status_code == 404


def test_contacts_follow_their_account_and_form_an_org_chart(company):
    rita, bob = company["rita"], company["bob"]
    account = new_account(rita).json
    boss = rita.post("/api/v1/contacts", json={"account_id": account["id"], "first_name": "Thảo",
                                               "last_name": "Nguyễn", "title": "Giám đốc",
                                               "birthday": "1980-05-17", "interests": "tennis, golf"})
    assert boss.status_code == 201, boss.json
    report = rita.post("/api/v1/contacts", json={"account_id": account["id"], "last_name": "Trần",
                                                 "reports_to_id": boss.json["id"]}).json
    chart = rita.get(f"/api/v1/accounts/{account['id']}/org-chart").json
    assert [(n["contact"]["id"], [r["contact"]["id"] for r in n["reports"]]) for n in chart] == [
        (boss.json["id"], [report["id"]])]
    # reports-to must be a contact of the same account, and never a loop
    elsewhere = new_account(rita, name="Elsewhere").json
    wrong = rita.post("/api/v1/contacts", json={"account_id": elsewhere["id"], "last_name": "X",
                                                "reports_to_id": boss.json["id"]})
    assert wrong.status_code == 422 and "reports_to_id" in wrong.json["error"]["fields"]
    loop = rita.patch(f"/api/v1/contacts/{boss.json['id']}", json={"reports_to_id": report["id"]},
                      headers={"If-Match": boss.headers["ETag"]})
    assert loop.status_code == 422
    assert bob.get(f"/api/v1/contacts/{report['id']}").status_code == 404
    assert bob.get(f"/api/v1/accounts/{account['id']}/org-chart").status_code == 404


def test_deleting_an_account_takes_its_contacts_into_the_bin_and_back(company):
    rita = company["rita"]
    account = new_account(rita).json
    contact = rita.post("/api/v1/contacts", json={"account_id": account["id"], "last_name": "Lê"}).json
    assert rita.delete(f"/api/v1/accounts/{account['id']}").status_code == 204
    assert rita.get(f"/api/v1/contacts/{contact['id']}").status_code == 404
    assert rita.get("/api/v1/contacts").json["total"] == 0
    group = rita.get("/api/v1/recycle-bin").json[0]
    assert rita.post(f"/api/v1/recycle-bin/{group['id']}/restore").status_code in (200, 204)
    assert rita.get(f"/api/v1/contacts/{contact['id']}").status_code == 200


def test_reading_an_account_lets_you_read_nothing_more_but_its_contacts_implicitly(company, app):
    """The implicit parent read: who can read a contact can read its account."""
    from crm_core.records import create_record

    account = Account.get_by_id(new_account(company["rita"]).json["id"])
    contact = create_record(Contact, account=account.id, last_name="Phạm", owner_id=company["ids"]["bob"])
    g.pop("_crm_access", None)
    assert engine().level(company["ids"]["bob"], account) == Level.READ
    assert company["bob"].get(f"/api/v1/accounts/{account.id}").status_code == 200
    assert company["bob"].get(f"/api/v1/contacts/{contact.id}").status_code == 200


def test_hidden_fields_are_left_out_and_cannot_be_written(company, app):
    role = org.role_by_key("sales_rep")
    org.set_field_rules(role, {("account", "credit_limit"): "hidden", ("account", "balance"): "read"})
    g.pop("_crm_access", None)
    rita = company["rita"]
    account = new_account(rita, currency="EUR").json
    assert "credit_limit" not in account and "balance" in account
    refused = rita.patch(f"/api/v1/accounts/{account['id']}", json={"balance": "10"},
                         headers={"If-Match": '"1"'})
    assert refused.status_code == 422 and "balance" in refused.json["error"]["fields"]
    assert rita.get("/api/v1/accounts?sort=credit_limit").status_code == 400
