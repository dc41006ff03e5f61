"""Purging inactive leads: a preview first, then exactly the previewed leads into the
recycle bin as one deletion; only for holders of leads.purge, only leads they may delete."""

import datetime as dt

import pytest
from flask import g

from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.recycle.models import RecycleGroup
from crm_core.testing import api_client, make_user, page_and_token, signed_in

OLD = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def team(app):
    maria, rita, bob = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob"))
    org.set_roles(maria, ["sales_manager"])
    org.set_roles(rita, ["sales_rep"])
    org.set_roles(bob, ["sales_manager"])
    sales = org.create_department("Sales", head=maria.id)
    org.place_user(rita, sales.id)
    org.place_user(maria, sales.id)
    stale = [leads.create_lead({"last_name": f"Old {i}", "status": status}, actor_id=rita.id)
             for i, status in enumerate(("new", "unqualified", "contacted", "qualified"))]
    fresh = leads.create_lead({"last_name": "Fresh", "status": "new"}, actor_id=rita.id)
    Lead.update(updated_at=OLD).where(Lead.id.in_([lead.id for lead in stale])).execute()
    g.pop("_crm_access", None)
    return {"maria": maria, "rita": rita, "bob": bob, "stale": stale, "fresh": fresh}


BODY = {"statuses": ["new", "unqualified", "contacted"], "inactive_since": "2026-01-01"}


def test_preview_then_purge_exactly_those(app, team):
    maria = api_client(app, team["maria"])
    preview = maria.post("/api/v1/leads/purge", json=BODY)
    assert preview.status_code == 200, preview.json
    assert preview.json["count"] == 3 and not preview.json["purged"]
    assert {lead["last_name"] for lead in preview.json["sample"]} == {"Old 0", "Old 1", "Old 2"}
    assert Lead.alive().count() == 5  # a preview writes nothing
    done = maria.post("/api/v1/leads/purge", json={**BODY, "expected_count": 3})
    assert done.status_code == 200 and done.json["purged"]
    assert {lead.last_name for lead in Lead.alive()} == {"Old 3", "Fresh"}
    group = RecycleGroup.get_by_id(done.json["group_id"])
    assert maria.post(f"/api/v1/recycle-bin/{group.id}/restore").status_code in (200, 204)
    assert Lead.alive().count() == 5


def test_a_set_that_changed_since_the_preview_is_not_purged(app, team):
    maria = api_client(app, team["maria"])
    assert maria.post("/api/v1/leads/purge", json=BODY).json["count"] == 3
    Lead.update(updated_at=OLD).where(Lead.id == team["fresh"].id).execute()  # went stale meanwhile
    changed = maria.post("/api/v1/leads/purge", json={**BODY, "expected_count": 3})
    assert changed.status_code == 409 and Lead.alive().count() == 5


def test_only_holders_of_the_permission_and_only_leads_they_may_delete(app, team):
    assert api_client(app, team["rita"]).post("/api/v1/leads/purge", json=BODY).status_code == 403
    # Bob manages nobody: he holds the permission but may delete none of Rita's leads.
    assert api_client(app, team["bob"]).post("/api/v1/leads/purge", json=BODY).json["count"] == 0
    bad = api_client(app, team["maria"]).post("/api/v1/leads/purge", json={
        "statuses": ["converted"], "inactive_since": "2026-01-01"})
    assert bad.status_code == 422 and Lead.alive().count() == 5
    future = api_client(app, team["maria"]).post("/api/v1/leads/purge", json={
        "statuses": ["new"], "inactive_since": "2999-01-01"})
    assert future.status_code == 422


def test_the_purge_page_previews_and_confirms(app, team):
    browser = signed_in(app, team["maria"])
    assert "/leads/purge" in browser.get("/leads").get_data(as_text=True)
    assert "/leads/purge" not in signed_in(app, team["rita"]).get("/leads").get_data(as_text=True)
    _html, token = page_and_token(browser, "/leads/purge")
    preview = browser.post("/leads/purge", data={"statuses": ["new", "unqualified"],
                                                 "inactive_since": "2026-01-01", "csrf_token": token})
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "2 leads would be purged" in page and 'name="expected_count" value="2"' in page
    done = browser.post("/leads/purge", data={"statuses": ["new", "unqualified"], "inactive_since": "2026-01-01",
                                              "expected_count": "2", "csrf_token": token})
    assert done.status_code == 302 and Lead.alive().count() == 3
    assert signed_in(app, team["rita"]).get("/leads/purge").status_code == 403
