"""The organisation API for administrators, and record sharing."""

import pytest

from crm_core.permissions import engine
from crm_core.records import create_record
from crm_core.testing import api_client, make_user
from crm_fx.models import FxAccount

pytestmark = pytest.mark.crm_plugins("fx")


def test_departments_tree_heads_and_cycles(client):
    boss = client.post("/api/v1/users", json={"email": "boss@example.com", "name": "Boss",
                                              "password": "a long boss pass phrase"}).json
    sales = client.post("/api/v1/departments", json={"name": "Sales", "head_id": boss["id"]})
    assert sales.status_code == 201
    north = client.post("/api/v1/departments", json={"name": "North", "parent_id": sales.json["id"]}).json
    cycle = client.patch(f"/api/v1/departments/{sales.json['id']}", json={"parent_id": north["id"]},
                         headers={"If-Match": '"1"'})
    assert cycle.status_code == 422 and "parent_id" in cycle.json["error"]["fields"]
    missing = client.post("/api/v1/departments", json={"name": "X", "parent_id": 999999})
    assert missing.status_code == 422
    listed = client.get("/api/v1/departments").json
    assert {d["name"] for d in listed["items"]} == {"Sales", "North"}
    blocked = client.delete(f"/api/v1/departments/{sales.json['id']}")
    assert blocked.status_code == 409


def test_teams_roles_defaults_and_rules(client):
    user = client.post("/api/v1/users", json={"email": "m@example.com", "name": "M",
                                              "password": "a long member pass phrase"}).json
    team = client.post("/api/v1/teams", json={"name": "Key accounts", "member_ids": [user["id"]]})
    assert team.status_code == 201 and team.json["member_ids"] == [user["id"]]
    assert client.post("/api/v1/teams", json={"name": "Key accounts"}).status_code == 409
    roles = client.get("/api/v1/roles").json
    assert {r["key"] for r in roles} >= {"administrator", "sales_manager", "sales_rep", "auditor"}
    rep = next(r for r in roles if r["key"] == "sales_rep")
    updated = client.put(f"/api/v1/roles/{rep['id']}/permissions",
                         json={"object": "fx_account", "read": True, "create": True})
    assert updated.status_code == 200
    assert updated.json["permissions"][0]["read"] and not updated.json["permissions"][0]["edit"]
    assert client.put("/api/v1/access/defaults/fx_account", json={"access": "read"}).status_code == 200
    defaults = {d["object"]: d["access"] for d in client.get("/api/v1/access/defaults").json}
    assert defaults == {"fx_account": "read", "fx_contact": "private"}
    rule = client.post("/api/v1/access/sharing-rules", json={
        "object": "fx_account", "name": "Retail", "field": "industry", "values": ["retail"],
        "target_type": "team", "target_id": team.json["id"], "level": "edit"})
    assert rule.status_code == 201 and rule.json["values"] == ["retail"]
    bad = client.post("/api/v1/access/sharing-rules", json={
        "object": "fx_account", "name": "Bad", "field": "colour", "values": ["red"],
        "target_type": "team", "target_id": team.json["id"], "level": "edit"})
    assert bad.status_code == 422


def test_only_administrators_manage_the_organisation(app):
    rep = make_user("rep@example.com")
    from crm_core.org.services import set_roles
    set_roles(rep, ["sales_rep"])
    rep_client = api_client(app, rep)
    for method, path, body in [("post", "/api/v1/departments", {"name": "X"}),
                               ("get", "/api/v1/roles", None),
                               ("put", "/api/v1/access/defaults/fx_account", {"access": "read"}),
                               ("get", "/api/v1/access/sharing-rules", None)]:
        response = getattr(rep_client, method)(path, json=body) if body else getattr(rep_client, method)(path)
        assert response.status_code == 403, (method, path)


def test_sharing_a_record_needs_full_access_and_unknown_is_404(app):
    from crm_core.org.services import set_roles
    owner, other, third = (make_user(f"{n}@example.com") for n in ("owner", "other", "third"))
    for user in (owner, other, third):
        set_roles(user, ["sales_rep"])
    account = create_record(FxAccount, name="A", owner_id=owner.id)
    owner_client, other_client = api_client(app, owner), api_client(app, other)
    body = {"object": "fx_account", "record_id": account.id, "target_type": "user",
            "target_id": other.id, "level": "read"}
    hidden = other_client.post("/api/v1/access/shares", json=body)
    missing = other_client.post("/api/v1/access/shares", json={**body, "record_id": 999999})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json
    shared = owner_client.post("/api/v1/access/shares", json=body)
    assert shared.status_code == 201
    from flask import g
    g.pop("_crm_access", None)
    assert engine().level(other.id, account).name == "READ"
    reshare = other_client.post("/api/v1/access/shares", json={**body, "target_id": third.id})
    assert reshare.status_code == 403  # READ is not enough to share


def test_explain_says_why(client, app):
    owner = make_user("o@example.com")
    from crm_core.org.services import set_roles
    set_roles(owner, ["sales_rep"])
    account = create_record(FxAccount, name="A", owner_id=owner.id)
    response = client.get(f"/api/v1/access/explain?user_id={owner.id}&object=fx_account&record_id={account.id}")
    assert response.status_code == 200
    assert response.json["level"] == "all"
    assert response.json["reasons"] == [{"level": "all", "code": "owner", "detail": ""}]


def test_users_get_department_manager_and_roles(client):
    dept = client.post("/api/v1/departments", json={"name": "Hà Nội"}).json
    lead = client.post("/api/v1/users", json={"email": "lead@example.com", "name": "Lead",
                                              "password": "a long lead pass phrase"}).json
    rep = client.post("/api/v1/users", json={"email": "rep2@example.com", "name": "Rep",
                                             "password": "a long rep pass phrase"}).json
    response = client.patch(f"/api/v1/users/{rep['id']}", headers={"If-Match": '"1"'},
                            json={"department_id": dept["id"], "manager_id": lead["id"],
                                  "roles": ["Sales rep"]})
    assert response.status_code == 200, response.json
    assert (response.json["department_id"], response.json["manager_id"], response.json["roles"]) == (
        dept["id"], lead["id"], ["Sales rep"])
    unknown = client.patch(f"/api/v1/users/{rep['id']}", headers={"If-Match": response.headers["ETag"]},
                           json={"roles": ["Emperor"]})
    assert unknown.status_code == 422 and "Emperor" in unknown.json["error"]["fields"]["roles"][0]
    me = client.get("/api/v1/users/me")
    demote = client.patch(f"/api/v1/users/{me.json['id']}", headers={"If-Match": me.headers["ETag"]},
                          json={"roles": ["Sales rep"]})
    assert demote.status_code == 422
