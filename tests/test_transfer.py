"""Mass transfer of ownership: a preview first, then only the records the actor may
transfer, each with its history and without the old owner's manual shares; logged."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account
from crm_core.audit.models import FieldHistory, SecurityEvent
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.org.models import RecordShare
from crm_core.permissions import Level
from crm_core.testing import api_client, make_user


@pytest.fixture
def team(app):
    maria, rita, bob, tom = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob", "tom"))
    for user in (maria, rita, bob, tom):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=maria.id)
    other = org.create_department("Other")
    for user in (maria, rita, tom):
        org.place_user(user, sales.id)
    org.place_user(bob, other.id)
    g.pop("_crm_access", None)
    return {"maria": maria, "rita": rita, "bob": bob, "tom": tom}


def test_a_manager_gives_a_reps_leads_to_another(app, team):
    rita, bob, tom = team["rita"].id, team["bob"].id, team["tom"].id
    mine = [leads.create_lead({"last_name": f"Lead {i}"}, actor_id=rita) for i in range(3)]
    converted = leads.create_lead({"last_name": "Done", "company": "Done Ltd", "status": "qualified"}, actor_id=rita)
    leads.convert(converted, actor_id=rita)
    bobs = leads.create_lead({"last_name": "Bob's"}, actor_id=bob)
    org.share_record("lead", mine[0].id, "user", bob, Level.READ, actor_id=rita)
    manager = api_client(app, team["maria"])
    body = {"object": "lead", "from_owner_id": rita, "to_owner_id": tom}
    preview = manager.post("/api/v1/transfers", json=body)
    assert preview.status_code == 200, preview.json
    assert preview.json["count"] == 3 and not preview.json["transferred"]
    assert [lead["id"] for lead in preview.json["sample"]] == [lead.id for lead in mine]
    assert Lead.select().where(Lead.owner_id == tom).count() == 0
    # A lead appears after the preview: nothing moves, preview again
    extra = leads.create_lead({"last_name": "Late"}, actor_id=rita)
    changed = manager.post("/api/v1/transfers", json={**body, "expected_count": 3})
    assert changed.status_code == 409 and Lead.select().where(Lead.owner_id == tom).count() == 0
    done = manager.post("/api/v1/transfers", json={**body, "expected_count": 4})
    assert done.status_code == 200 and done.json == {"count": 4, "transferred": True, "sample": []}
    assert {lead.id for lead in Lead.select().where(Lead.owner_id == tom)} == {l.id for l in mine} | {extra.id}
    assert Lead.get_by_id(converted.id).owner_id == rita and Lead.get_by_id(bobs.id).owner_id == bob
    assert not RecordShare.select().where(RecordShare.record_id == mine[0].id).exists()
    assert FieldHistory.select().where((FieldHistory.table == "lead") & (FieldHistory.field == "owner_id")
                                       & (FieldHistory.new_value == str(tom))).count() == 4
    assert SecurityEvent.select().where(SecurityEvent.kind == "records_transferred").count() == 1


def test_only_what_the_actor_may_transfer(app, team):
    rita, bob, tom = team["rita"].id, team["bob"].id, team["tom"].id
    own = accounts.create_account({"name": "Own"}, actor_id=rita)
    shared = accounts.create_account({"name": "Shared to Rita"}, actor_id=bob)
    org.share_record("account", shared.id, "user", rita, Level.EDIT, actor_id=bob)
    hidden = accounts.create_account({"name": "Bob's"}, actor_id=bob)
    g.pop("_crm_access", None)
    client = api_client(app, team["rita"])
    body = {"object": "account", "ids": [own.id, shared.id, hidden.id], "to_owner_id": tom}
    preview = client.post("/api/v1/transfers", json=body)
    assert preview.json["count"] == 1 and [a["id"] for a in preview.json["sample"]] == [own.id]
    assert client.post("/api/v1/transfers", json={**body, "expected_count": 1}).json["count"] == 1
    assert [a.owner_id for a in Account.select().order_by(Account.id)] == [tom, bob, bob]


@pytest.mark.parametrize("body, field", [
    ({"object": "lead", "to_owner_id": 1}, "ids"),
    ({"object": "lead", "ids": [1], "to_owner_id": 9999}, "to_owner_id"),
    ({"object": "campaign", "ids": [1], "to_owner_id": 1}, "object"),
    ({"object": "lead", "ids": [], "to_owner_id": 1}, "ids"),
])
def test_bad_transfers_are_refused(app, team, body, field):
    leads.create_lead({"last_name": "X"}, actor_id=team["rita"].id)
    response = api_client(app, team["maria"]).post("/api/v1/transfers", json={**body, "expected_count": 1},
                                                   headers={"Accept-Language": "ru"})
    assert response.status_code == 422 and field in response.json["error"]["fields"], response.json
    assert Lead.select().where(Lead.owner_id == team["rita"].id).count() == 1


def test_transfer_needs_the_edit_permission(app, team):
    auditor = make_user("auditor@example.com", "Auditor")
    org.set_roles(auditor, ["auditor"])
    g.pop("_crm_access", None)
    response = api_client(app, auditor).post("/api/v1/transfers", json={
        "object": "lead", "from_owner_id": team["rita"].id, "to_owner_id": team["tom"].id})
    assert response.status_code == 403
