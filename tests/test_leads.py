"""Leads and campaigns: capture, the access rules, qualification and conversion (linking to
what exists, once under concurrency, nothing half-written), and their pages."""

import threading

import pytest
from flask import g

from crm_core.accounts.models import Account, Contact
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.testing import api_client, make_user, page_and_token, signed_in


@pytest.fixture
def team(app):
    maria, rita, bob = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob"))
    for user in (maria, rita, bob):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=maria.id)
    org.place_user(maria, sales.id)
    org.place_user(rita, sales.id)
    g.pop("_crm_access", None)
    return {"maria": maria, "rita": rita, "bob": bob}


def new_lead(client, **values):
    response = client.post("/api/v1/leads", json={"last_name": "Nguyễn", "company": "Minh An", **values})
    assert response.status_code == 201, response.json
    return response


def test_a_lead_keeps_its_source_and_campaign(app, team):
    rita = api_client(app, team["rita"])
    campaign = rita.post("/api/v1/campaigns", json={"name": "Vietbuild 2026", "channel": "Trade fair",
                                                    "currency": "VND", "cost": "120000000",
                                                    "start_date": "2026-06-01", "end_date": "2026-06-05"})
    assert campaign.status_code == 201, campaign.json
    lead = new_lead(rita, source="event", campaign_id=campaign.json["id"], email="Thao@MinhAn.vn",
                    country="vn").json
    assert (lead["source"], lead["campaign_id"], lead["status"], lead["email"], lead["country"]) == (
        "event", campaign.json["id"], "new", "thao@minhan.vn", "VN")
    listed = rita.get(f"/api/v1/leads?campaign_id={campaign.json['id']}&source=event").json
    assert listed["total"] == 1
    backwards = rita.post("/api/v1/campaigns", json={"name": "X", "start_date": "2026-06-05",
                                                     "end_date": "2026-06-01"})
    assert backwards.status_code == 422 and "end_date" in backwards.json["error"]["fields"]


@pytest.mark.parametrize("values, field", [
    ({"last_name": " "}, "last_name"), ({"source": "rumour"}, "source"), ({"status": "converted"}, "status"),
    ({"country": "XX"}, "country"), ({"email": "nope"}, "email"), ({"campaign_id": 987654}, "campaign_id"),
])
def test_bad_leads_are_refused(app, team, values, field):
    response = api_client(app, team["rita"]).post("/api/v1/leads", json={"last_name": "X", **values})
    assert response.status_code == 422 and field in response.json["error"]["fields"], response.json
    assert not Lead.select().exists()


def test_leads_follow_the_access_rules(app, team):
    lead = new_lead(api_client(app, team["rita"])).json
    assert api_client(app, team["maria"]).get(f"/api/v1/leads/{lead['id']}").status_code == 200
    bob = api_client(app, team["bob"])
    assert bob.get(f"/api/v1/leads/{lead['id']}").status_code == 404
    assert bob.get("/api/v1/leads").json["total"] == 0
    assert bob.post(f"/api/v1/leads/{lead['id']}/convert", json={},
                    headers={"If-Match": '"1"'}).status_code == 404


def test_conversion_makes_an_account_and_a_contact_and_keeps_the_lead(app, team):
    rita = api_client(app, team["rita"])
    lead = new_lead(rita, first_name="Thảo", email="thao@minhan.vn", industry="Retail", country="VN")
    url = f"/api/v1/leads/{lead.json['id']}"
    assert rita.post(f"{url}/convert", json={}).status_code == 428
    done = rita.post(f"{url}/convert", json={}, headers={"If-Match": lead.headers["ETag"]})
    assert done.status_code == 200, done.json
    body = done.json
    assert body["lead"]["status"] == "converted" and body["account"]["name"] == "Minh An"
    assert body["contact"]["account_id"] == body["account"]["id"] and body["contact"]["email"] == "thao@minhan.vn"
    assert body["lead"]["converted_account_id"] == body["account"]["id"]
    # a converted lead is not changed again, nor converted twice
    again = rita.post(f"{url}/convert", json={}, headers={"If-Match": done.headers["ETag"]})
    assert again.status_code == 422
    edit = rita.patch(url, json={"company": "Other"}, headers={"If-Match": done.headers["ETag"]})
    assert edit.status_code == 422
    history = rita.get(f"/api/v1/history/lead/{lead.json['id']}").json
    assert ("status", "new", "converted") in {(h["field"], h["old_value"], h["new_value"]) for h in history}


def test_conversion_links_to_the_account_and_contact_that_exist(app, team):
    rita = api_client(app, team["rita"])
    account = rita.post("/api/v1/accounts", json={"name": "MINH AN"}).json
    contact = rita.post("/api/v1/contacts", json={"account_id": account["id"], "last_name": "Nguyễn",
                                                  "email": "thao@minhan.vn"}).json
    lead = new_lead(rita, email="thao@minhan.vn")
    done = rita.post(f"/api/v1/leads/{lead.json['id']}/convert", json={},
                     headers={"If-Match": lead.headers["ETag"]}).json
    assert (done["account"]["id"], done["contact"]["id"]) == (account["id"], contact["id"])
    assert Account.select().count() == 1 and Contact.select().count() == 1


def test_an_account_the_converter_cannot_see_is_refused(app, team):
    bobs = api_client(app, team["bob"]).post("/api/v1/accounts", json={"name": "Bob's"}).json
    rita = api_client(app, team["rita"])
    lead = new_lead(rita)
    refused = rita.post(f"/api/v1/leads/{lead.json['id']}/convert", json={"account_id": bobs["id"]},
                        headers={"If-Match": lead.headers["ETag"]})
    assert refused.status_code == 422 and "account_id" in refused.json["error"]["fields"]
    assert Lead.get_by_id(lead.json["id"]).status == "new" and Account.select().count() == 1


def test_two_people_converting_at_once_make_one_conversion(app, team, crm_database_url):
    """Both read version 1 and convert at the same moment: one 200, one 412, and exactly one
    account and one contact exist afterwards (the loser's were rolled back)."""
    rita, maria = api_client(app, team["rita"]), api_client(app, team["maria"])
    lead = new_lead(rita)
    url = f"/api/v1/leads/{lead.json['id']}/convert"
    start = threading.Barrier(2)
    answers = []

    def convert(client):
        with app.app_context():
            start.wait(timeout=10)
            answers.append(client.post(url, json={}, headers={"If-Match": lead.headers["ETag"]}).status_code)

    workers = [threading.Thread(target=convert, args=(c,)) for c in (rita, maria)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(answers) == [200, 412]
    assert Account.select().count() == 1 and Contact.select().count() == 1


def test_an_unqualified_lead_is_not_converted(app, team):
    lead = leads.create_lead({"last_name": "X", "status": "unqualified"}, actor_id=team["rita"].id)
    response = api_client(app, team["rita"]).post(f"/api/v1/leads/{lead.id}/convert", json={},
                                                  headers={"If-Match": '"1"'})
    assert response.status_code == 422 and not Account.select().exists()


def test_the_lead_page_converts(app, team):
    lead = leads.create_lead({"last_name": "Nguyễn", "company": "Minh An"}, actor_id=team["rita"].id)
    browser = signed_in(app, team["rita"])
    html, token = page_and_token(browser, f"/leads/{lead.id}")
    assert "A new account from this lead" in html
    stale = browser.post(f"/leads/{lead.id}/convert", data={"version": "5", "csrf_token": token})
    assert stale.status_code == 409 and not Account.select().exists()
    done = browser.post(f"/leads/{lead.id}/convert", data={"version": "1", "csrf_token": token})
    assert done.status_code == 302 and "/accounts/" in done.headers["Location"]
    assert Lead.get_by_id(lead.id).status == "converted"
    page = browser.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "Converted on" in page and "Minh An" in page


def test_lead_and_campaign_pages_list_create_and_edit(app, team):
    browser = signed_in(app, team["rita"])
    _html, token = page_and_token(browser, "/campaigns/new")
    created = browser.post("/campaigns", data={"name": "Newsletter", "status": "active",
                                               "currency": "PLN", "cost": "1500,50", "csrf_token": token})
    assert created.status_code == 302
    html, token = page_and_token(browser, "/leads/new")
    assert "Newsletter" in html
    created = browser.post("/leads", data={"last_name": "Kowalski", "company": "Hurtownia", "status": "new",
                                           "source": "email", "csrf_token": token})
    assert created.status_code == 302
    assert "Hurtownia" in browser.get("/leads?source=email").get_data(as_text=True)
    assert "Hurtownia" not in browser.get("/leads?source=event").get_data(as_text=True)
