"""Segments: condition trees over record and custom fields (and/or, equals, contains, in,
ranges, empty, "interests include tennis"), always within the reader's access, refused on
hidden fields; saved, shared with a team, a department or everyone; mailing lists."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.customfields import services as custom_fields
from crm_core.customfields.registry import clear_cache
from crm_core.org import services as org
from crm_core.segments import services as segments
from crm_core.segments.models import Segment
from crm_core.testing import api_client, make_user


@pytest.fixture
def world(app):
    maria, rita, bob = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob"))
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    for user in (maria, rita, bob):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=maria.id)
    north = org.create_department("North", parent=sales.id)
    org.place_user(maria, sales.id)
    org.place_user(rita, north.id)
    team = org.create_team("Tennis fans", [rita.id])
    custom_fields.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                                "labels": {"en": "Interests"},
                                "choices": ["tennis", "golf", "sailing"]})
    custom_fields.create_field({"object": "contact", "key": "budget", "type": "money", "currency": "EUR",
                                "labels": {"en": "Budget"}})
    custom_fields.create_field({"object": "contact", "key": "met_on", "type": "date", "labels": {"en": "Met on"}})
    custom_fields.create_field({"object": "contact", "key": "vip", "type": "boolean", "labels": {"en": "VIP"}})
    clear_cache()
    g.pop("_crm_access", None)

    def contact(owner, last_name, **custom):
        return accounts.create_contact({"last_name": last_name, "email": f"{last_name.lower()}@example.com",
                                        "custom": custom}, actor_id=owner.id)
    people = {
        "anna": contact(rita, "Anna", interests=["tennis", "golf"], budget="5000", met_on="2026-01-10", vip=True),
        "ben": contact(rita, "Ben", interests=["golf"], budget="150.50", met_on="2026-05-01"),
        "cao": contact(rita, "Cao", interests=["tennis"]),
        "dora": contact(bob, "Dora", interests=["tennis"], budget="9000", vip=True),
        "eva": contact(maria, "Eva", budget="700"),
    }
    return {"maria": maria, "rita": rita, "bob": bob, "admin": admin, "team": team, "sales": sales,
            "north": north, **people}


def names(response):
    assert response.status_code == 200, response.json
    return sorted(item["last_name"] for item in response.json["items"])


def run(client, conditions, object_name="contact"):
    return client.post("/api/v1/segments/run", json={"object": object_name, "conditions": conditions})


TENNIS = {"field": "custom.interests", "op": "includes", "value": "tennis"}


@pytest.mark.parametrize("conditions, expected", [
    (TENNIS, ["Anna", "Cao"]),
    ({"all": [TENNIS, {"field": "custom.vip", "op": "eq", "value": True}]}, ["Anna"]),
    ({"any": [TENNIS, {"field": "custom.budget", "op": "gte", "value": "150"}]}, ["Anna", "Ben", "Cao"]),
    ({"field": "custom.budget", "op": "between", "value": ["100", "1000"]}, ["Ben"]),
    ({"field": "custom.budget", "op": "lt", "value": 200}, ["Ben"]),
    ({"field": "custom.budget", "op": "empty"}, ["Cao"]),
    ({"field": "custom.met_on", "op": "between", "value": ["2026-01-01", "2026-03-31"]}, ["Anna"]),
    ({"field": "custom.vip", "op": "not_empty"}, ["Anna"]),
    ({"field": "last_name", "op": "contains", "value": "NN"}, ["Anna"]),
    ({"field": "last_name", "op": "in", "value": ["Ben", "Cao", "Dora"]}, ["Ben", "Cao"]),
    ({"field": "last_name", "op": "ne", "value": "Ben"}, ["Anna", "Cao"]),
    ({"all": [{"any": [TENNIS, {"field": "last_name", "op": "eq", "value": "Ben"}]},
              {"field": "custom.budget", "op": "not_empty"}]}, ["Anna", "Ben"]),
    ({"field": "created_at", "op": "gte", "value": "2000-01-01"}, ["Anna", "Ben", "Cao"]),
    ({"all": []}, ["Anna", "Ben", "Cao"]),
])
def test_conditions_select_the_readers_matching_records(app, world, conditions, expected):
    assert names(run(api_client(app, world["rita"]), conditions)) == expected


def test_results_are_always_filtered_by_access(app, world):
    # Maria manages Rita: she sees Rita's and her own, never Bob's.
    assert names(run(api_client(app, world["maria"]), TENNIS)) == ["Anna", "Cao"]
    assert names(run(api_client(app, world["bob"]), TENNIS)) == ["Dora"]
    assert names(run(api_client(app, world["admin"]), TENNIS)) == ["Anna", "Cao", "Dora"]


def test_a_condition_on_a_hidden_field_is_refused(app, world):
    org.set_field_rules(org.role_by_key("sales_rep"), {("contact", "custom.budget"): "hidden",
                                                       ("contact", "email"): "hidden"})
    g.pop("_crm_access", None)
    rita = api_client(app, world["rita"])
    for field in ("custom.budget", "email"):
        response = run(rita, {"any": [TENNIS, {"field": field, "op": "not_empty"}]})
        assert response.status_code == 400 and field in response.json["error"]["fields"], response.json
    saved = rita.post("/api/v1/segments", json={"name": "Rich", "object": "contact",
                                                "conditions": {"field": "custom.budget", "op": "gt", "value": 1}})
    assert saved.status_code == 400
    fields = {f["name"] for f in rita.get("/api/v1/segments/fields/contact").json["items"]}
    assert "custom.interests" in fields and "custom.budget" not in fields and "email" not in fields


@pytest.mark.parametrize("conditions, where", [
    ({"field": "custom.nope", "op": "eq", "value": 1}, "conditions.field"),
    ({"field": "custom.interests", "op": "contains", "value": "t"}, "conditions.op"),
    ({"field": "custom.interests", "op": "includes", "value": "chess"}, "conditions.value"),
    ({"field": "custom.budget", "op": "between", "value": ["1"]}, "conditions.value"),
    ({"field": "custom.met_on", "op": "gt", "value": "soon"}, "conditions.value"),
    ({"all": [{"field": "last_name", "op": "in", "value": []}]}, "conditions.all.0.value"),
    ({"both": []}, "conditions"),
    ({"all": "x"}, "conditions"),
])
def test_bad_conditions_are_refused_with_a_message(app, world, conditions, where):
    response = run(api_client(app, world["rita"]), conditions)
    assert response.status_code == 422 and where in response.json["error"]["fields"], response.json


def test_segments_are_saved_private_or_shared(app, world):
    rita, maria, bob = (api_client(app, world[n]) for n in ("rita", "maria", "bob"))
    created = rita.post("/api/v1/segments", json={"name": "Tennis", "object": "contact", "conditions": TENNIS})
    assert created.status_code == 201, created.json
    url = f"/api/v1/segments/{created.json['id']}"
    assert maria.get(url).status_code == 404 and bob.get("/api/v1/segments").json["items"] == []
    shared = rita.patch(url, json={"visibility": "department", "department_id": world["sales"].id},
                        headers={"If-Match": created.headers["ETag"]})
    assert shared.status_code == 200, shared.json
    # Maria (Sales) sees it; Bob (no department) does not; running it, each gets their own records.
    assert maria.get(url).status_code == 200 and bob.get(url).status_code == 404
    assert names(maria.get(f"{url}/results")) == ["Anna", "Cao"]
    assert maria.patch(url, json={"name": "Mine now"}, headers={"If-Match": shared.headers["ETag"]}).status_code == 403
    everyone = rita.patch(url, json={"visibility": "everyone"}, headers={"If-Match": shared.headers["ETag"]})
    assert names(bob.get(f"{url}/results")) == ["Dora"]
    stale = rita.patch(url, json={"name": "X"}, headers={"If-Match": shared.headers["ETag"]})
    assert stale.status_code == 412
    team = rita.patch(url, json={"visibility": "team", "team_id": world["team"].id},
                      headers={"If-Match": everyone.headers["ETag"]})
    assert team.status_code == 200 and bob.get(url).status_code == 404
    not_mine = bob.post("/api/v1/segments", json={"name": "X", "object": "contact", "visibility": "team",
                                                  "team_id": world["team"].id})
    assert not_mine.status_code == 422 and "team_id" in not_mine.json["error"]["fields"]
    assert rita.delete(url).status_code == 204 and rita.get(url).status_code == 404


def test_pages_of_results(app, world):
    rita = api_client(app, world["rita"])
    first = rita.post("/api/v1/segments/run?per_page=2", json={"object": "contact", "conditions": {"all": []}})
    assert first.json["total"] is None and len(first.json["items"]) == 2 and first.json["has_more"] is True
    counted = rita.post("/api/v1/segments/run?per_page=2&count=true",
                        json={"object": "contact", "conditions": {"all": []}})
    assert counted.json["total"] == 3 and counted.json["total_capped"] is False
    second = rita.post("/api/v1/segments/run?per_page=2&page=2", json={"object": "contact", "conditions": {"all": []}})
    assert len(second.json["items"]) == 1


def test_mailing_list_yields_readable_records_with_an_email(app, world):
    accounts.update_contact(world["cao"], {"email": None}, actor_id=world["rita"].id)
    accounts.update_contact(world["anna"], {"do_not_email": True}, actor_id=world["rita"].id)
    segment = segments.create_segment({"name": "Tennis", "object": "contact", "conditions": TENNIS,
                                       "visibility": "everyone"}, world["admin"].id)
    assert [c.last_name for c in segments.mailing_list(segment, world["admin"].id)] == ["Dora"]
    assert [c.last_name for c in segments.mailing_list(segment, world["rita"].id)] == []
    assert Segment.select().count() == 1


def test_segments_on_leads_and_accounts(app, world):
    rita = api_client(app, world["rita"])
    rita.post("/api/v1/leads", json={"last_name": "Lý", "country": "VN", "source": "event"})
    rita.post("/api/v1/leads", json={"last_name": "Nowak", "country": "PL"})
    assert names(run(rita, {"all": [{"field": "country", "op": "in", "value": ["VN", "DE"]},
                                    {"field": "source", "op": "eq", "value": "event"}]}, "lead")) == ["Lý"]
    rita.post("/api/v1/accounts", json={"name": "Minh An", "employees": 40})
    response = run(rita, {"field": "employees", "op": "gt", "value": 10}, "account")
    assert [i["name"] for i in response.json["items"]] == ["Minh An"]
