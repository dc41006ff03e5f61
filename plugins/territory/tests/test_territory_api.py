"""The territory API (/api/v1/plugins/territory/): models, territories, members, with the
error envelope, If-Match versions, who may change what, and messages in the caller's language."""

import pytest

from crm_core.org import services as org
from crm_core.testing import api_client, make_user
from crm_territory import services
from crm_territory.models import Territory, TerritoryMember, TerritoryModel

BASE = "/api/v1/plugins/territory"


def etag(record):
    return {"If-Match": f'"{record.version}"'}


@pytest.fixture
def world(app):
    admin = make_user(is_admin=True)
    rep, boss, manager_role = make_user(name="Rep"), make_user(name="Boss"), make_user()
    org.set_roles(rep, ["sales_rep"])
    org.set_roles(boss, ["sales_rep"])
    org.set_roles(manager_role, ["sales_manager"])
    model = services.create_model("2027")
    world_ = services.create_territory(model.id, "World")
    asia = services.create_territory(model.id, "Asia", parent_id=world_.id, manager_id=boss.id)
    south = services.create_territory(model.id, "South Vietnam", parent_id=asia.id)
    poland = services.create_territory(model.id, "Poland", parent_id=world_.id)
    services.activate_model(model)
    return {"admin": admin, "rep": rep, "boss": boss, "sales_manager": manager_role, "model": model,
            "world": world_, "asia": asia, "south": south, "poland": poland}


def error_of(response, status):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


# -- models ------------------------------------------------------------------------------------------

def test_models_list_create_read_patch(app, world):
    admin = api_client(app, world["admin"])
    created = admin.post(f"{BASE}/models", json={"name": "2028", "description": "next"})
    assert created.status_code == 201 and created.headers["ETag"] == '"1"'
    model = created.get_json()
    assert (model["state"], model["name"]) == ("planning", "2028")
    listed = admin.get(f"{BASE}/models?state=planning").get_json()
    assert [m["name"] for m in listed["items"]] == ["2028"] and listed["total"] == 1
    read = admin.get(f"{BASE}/models/{model['id']}")
    assert read.headers["ETag"] == '"1"'
    patched = admin.patch(f"{BASE}/models/{model['id']}", json={"name": "FY 2028"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.get_json()["name"] == "FY 2028"


def test_activation_is_the_switch_over(app, world):
    admin = api_client(app, world["admin"])
    new = services.create_model("2028")
    error_of(admin.post(f"{BASE}/models/{new.id}/activate"), 428)
    error_of(admin.post(f"{BASE}/models/{new.id}/activate", headers={"If-Match": '"9"'}), 412)
    response = admin.post(f"{BASE}/models/{new.id}/activate", headers=etag(new))
    assert response.status_code == 200 and response.get_json()["state"] == "active"
    assert TerritoryModel.get_by_id(world["model"].id).state == "archived"
    archived = TerritoryModel.get_by_id(world["model"].id)
    error = error_of(admin.post(f"{BASE}/models/{archived.id}/activate", headers=etag(archived)), 422)
    assert set(error["fields"]) == {"state"}


def test_the_active_model_is_not_deleted(app, world):
    admin = api_client(app, world["admin"])
    model = TerritoryModel.get_by_id(world["model"].id)
    error_of(admin.delete(f"{BASE}/models/{model.id}"), 422)
    planned = services.create_model("draft")
    error_of(admin.delete(f"{BASE}/models/{planned.id}", headers={"If-Match": '"5"'}), 412)
    assert admin.delete(f"{BASE}/models/{planned.id}").status_code == 204
    error_of(admin.get(f"{BASE}/models/{planned.id}"), 404)


def test_only_territory_managers_change_models(app, world):
    for who in ("rep", "boss", "sales_manager"):
        client = api_client(app, world[who])
        assert client.get(f"{BASE}/models").status_code == 200
        error_of(client.post(f"{BASE}/models", json={"name": "Mine"}), 403)
        error_of(client.post(f"{BASE}/models/{world['model'].id}/activate", headers=etag(world["model"])), 403)
    assert TerritoryModel.select().count() == 1
    error_of(app.test_client().get(f"{BASE}/models"), 401)


def test_bad_model_input(app, world):
    admin = api_client(app, world["admin"])
    error = error_of(admin.post(f"{BASE}/models", json={"name": "", "state": "active"}), 422)
    assert {"name", "state"} <= set(error["fields"])
    error_of(admin.get(f"{BASE}/models?state=gone"), 400)
    assert TerritoryModel.select().count() == 1


# -- territories -------------------------------------------------------------------------------------

def test_territories_of_the_active_model_by_default(app, world):
    rep = api_client(app, world["rep"])
    page = rep.get(f"{BASE}/territories?per_page=10").get_json()
    assert page["total"] == 4
    south = next(t for t in page["items"] if t["name"] == "South Vietnam")
    assert south["path"] == ["World", "Asia", "South Vietnam"] and south["access_level"] == "edit"
    other = services.create_model("2028")
    services.create_territory(other.id, "Everything")
    names = [t["name"] for t in rep.get(f"{BASE}/territories?model_id={other.id}").get_json()["items"]]
    assert names == ["Everything"]
    assert rep.get(f"{BASE}/territories?parent_id={world['world'].id}&sort=name").get_json()["total"] == 2


def test_no_active_model_no_territories(app, world):
    TerritoryModel.update(state="archived").execute()
    assert api_client(app, world["rep"]).get(f"{BASE}/territories").get_json()["total"] == 0


def test_create_patch_delete_a_territory(app, world):
    admin = api_client(app, world["admin"])
    created = admin.post(f"{BASE}/territories", json={
        "name": "North Vietnam", "parent_id": world["asia"].id, "criteria": {"country": ["vn"], "region": ["Hà Nội"]},
        "access_level": "read", "manager_id": world["boss"].id, "position": 2})
    assert created.status_code == 201
    territory = created.get_json()
    assert territory["model_id"] == world["model"].id and territory["criteria"] == {
        "country": ["VN"], "region": ["Hà Nội"]}
    assert territory["path"] == ["World", "Asia", "North Vietnam"]
    patched = admin.patch(f"{BASE}/territories/{territory['id']}", json={"parent_id": world["world"].id},
                          headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.get_json()["path"] == ["World", "North Vietnam"]
    assert patched.headers["ETag"] == '"2"'
    assert admin.delete(f"{BASE}/territories/{territory['id']}", headers={"If-Match": '"2"'}).status_code == 204
    error_of(admin.get(f"{BASE}/territories/{territory['id']}"), 404)


def test_bad_territories_are_refused_with_every_field_and_nothing_written(app, world):
    admin = api_client(app, world["admin"])
    before = Territory.select().count()
    error = error_of(admin.post(f"{BASE}/territories", json={
        "name": "X", "parent_id": 999999, "criteria": {"country": "VN", "planet": ["Mars"]},
        "manager_id": 999999}), 422)
    assert set(error["fields"]) == {"parent_id", "criteria.country", "criteria.planet", "manager_id"}
    error = error_of(admin.post(f"{BASE}/territories", json={"name": "X", "access_level": "write",
                                                            "colour": "red"}), 422)
    assert {"access_level", "colour"} <= set(error["fields"])
    error = error_of(admin.post(f"{BASE}/territories", json={"name": "asia", "parent_id": world["world"].id}), 409)
    assert error["code"] == "duplicate"
    assert Territory.select().count() == before


def test_cycles_children_and_versions(app, world):
    admin = api_client(app, world["admin"])
    asia = Territory.get_by_id(world["asia"].id)
    error = error_of(admin.patch(f"{BASE}/territories/{asia.id}", json={"parent_id": world["south"].id},
                                 headers=etag(asia)), 422)
    assert set(error["fields"]) == {"parent_id"}
    error_of(admin.patch(f"{BASE}/territories/{asia.id}", json={"name": "Asia-Pacific"}), 428)
    error_of(admin.patch(f"{BASE}/territories/{asia.id}", json={"name": "Asia-Pacific"},
                         headers={"If-Match": '"77"'}), 412)
    assert error_of(admin.delete(f"{BASE}/territories/{asia.id}"), 409)["code"] == "has_children"
    assert Territory.get_by_id(asia.id).name == "Asia" and Territory.get_by_id(asia.id).parent_id == world["world"].id


def test_without_an_active_model_a_territory_needs_its_model(app, world):
    TerritoryModel.update(state="archived").execute()
    admin = api_client(app, world["admin"])
    error = error_of(admin.post(f"{BASE}/territories", json={"name": "Lost"}), 422)
    assert set(error["fields"]) == {"model_id"}


def test_reps_read_territories_but_do_not_change_them(app, world):
    rep = api_client(app, world["rep"])
    south = Territory.get_by_id(world["south"].id)
    assert rep.get(f"{BASE}/territories/{south.id}").status_code == 200
    error_of(rep.post(f"{BASE}/territories", json={"name": "Mine"}), 403)
    error_of(rep.patch(f"{BASE}/territories/{south.id}", json={"name": "Mine"}, headers=etag(south)), 403)
    error_of(rep.delete(f"{BASE}/territories/{south.id}"), 403)
    error_of(rep.get(f"{BASE}/territories/999999"), 404)


def test_messages_in_the_callers_language(app, world):
    admin = api_client(app, world["admin"])
    error = error_of(admin.post(f"{BASE}/territories?lang=vi", json={"name": "asia", "parent_id": world["world"].id},
                                headers={"Accept-Language": "vi"}), 409)
    assert error["fields"]["name"] == ["Đã có một khu vực khác cùng tên ở vị trí này của cây."]


# -- members ------------------------------------------------------------------------------------------

def test_members_by_an_administrator(app, world):
    admin = api_client(app, world["admin"])
    url = f"{BASE}/territories/{world['south'].id}/members"
    added = admin.post(url, json={"user_id": world["rep"].id})
    assert added.status_code == 201 and added.get_json()["name"] == "Rep"
    assert [m["user_id"] for m in admin.get(url).get_json()] == [world["rep"].id]
    error = error_of(admin.post(f"{BASE}/territories/{world['poland'].id}/members",
                                json={"user_id": world["rep"].id}), 409)
    assert set(error["fields"]) == {"user_id"}
    error_of(admin.post(url, json={"user_id": 999999}), 422)
    error_of(admin.post(url, json={}), 422)
    assert admin.delete(f"{url}/{world['rep'].id}").status_code == 204
    error_of(admin.delete(f"{url}/{world['rep'].id}"), 404)
    assert not TerritoryMember.select().exists()


def test_a_territory_manager_manages_the_members_of_the_subtree_only(app, world):
    boss = api_client(app, world["boss"])
    south_members = f"{BASE}/territories/{world['south'].id}/members"
    assert boss.post(south_members, json={"user_id": world["rep"].id}).status_code == 201
    error_of(boss.post(f"{BASE}/territories/{world['poland'].id}/members", json={"user_id": world["rep"].id}), 403)
    error_of(boss.post(f"{BASE}/territories/{world['world'].id}/members", json={"user_id": world["rep"].id}), 403)
    rep = api_client(app, world["rep"])
    error_of(rep.delete(f"{south_members}/{world['rep'].id}"), 403)
    assert rep.get(south_members).status_code == 200
    assert boss.delete(f"{south_members}/{world['rep'].id}").status_code == 204


def test_members_of_a_missing_territory(app, world):
    admin = api_client(app, world["admin"])
    error_of(admin.get(f"{BASE}/territories/999999/members"), 404)
    error_of(admin.post(f"{BASE}/territories/999999/members", json={"user_id": world["rep"].id}), 404)
