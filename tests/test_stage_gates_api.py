"""/api/v1/stage-gates and the stage gates pages: holders of opportunities.configure
(administrators unless granted) list, add, change (If-Match) and remove requirements;
everyone else is refused; bad input is a 422 in the caller's language, nothing written."""

import pytest
from flask import g

from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Pipeline, Stage
from crm_core.org import services as org
from crm_core.stagegates import services as gates
from crm_core.stagegates.models import StageGate
from crm_core.testing import api_client, make_user, page_and_token, signed_in


@pytest.fixture
def people(app):
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    rita = make_user("rita@example.com", "Rita")
    org.set_roles(rita, ["sales_rep"])
    g.pop("_crm_access", None)
    return {"admin": admin, "rita": rita}


def stage(key):
    opps.pipelines()
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == "sales")))


def test_an_administrator_adds_lists_changes_and_removes_gates(app, people):
    client = api_client(app, people["admin"])
    made = client.post("/api/v1/stage-gates", json={
        "stage_id": stage("proposal_submitted").id, "kind": "field",
        "params": {"field": "amount", "minimum": "0", "exclusive": True}})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert made.headers["ETag"] == '"1"'
    assert body["kind"] == "field" and body["params"] == {"field": "amount", "minimum": "0", "exclusive": True}
    assert body["pipeline_id"] == stage("proposal_submitted").pipeline_id and body["also_backwards"] is False
    assert body["description"] == "“Amount” more than 0"
    client.post("/api/v1/stage-gates", json={"stage_id": stage("negotiating").id, "kind": "team_role",
                                             "params": {"role": "presales"}})
    listing = client.get("/api/v1/stage-gates", query_string={"pipeline_id": body["pipeline_id"]}).get_json()
    assert [item["kind"] for item in listing["items"]] == ["field", "team_role"] and listing["total"] == 2
    only = client.get("/api/v1/stage-gates", query_string={"stage_id": stage("negotiating").id}).get_json()
    assert [item["params"] for item in only["items"]] == [{"role": "presales"}]
    url = f"/api/v1/stage-gates/{body['id']}"
    assert client.patch(url, json={"also_backwards": True}).status_code == 428
    assert client.patch(url, json={"also_backwards": True}, headers={"If-Match": '"9"'}).status_code == 412
    changed = client.patch(url, json={"also_backwards": True}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.get_json()["also_backwards"] is True
    assert changed.headers["ETag"] == '"2"'
    assert client.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert client.delete(url, headers={"If-Match": '"2"'}).status_code == 204
    assert client.get(url).status_code == 404
    assert StageGate.select().count() == 1


def test_bad_gates_are_422_in_the_callers_language_and_nothing_is_written(app, people):
    client = api_client(app, people["admin"])
    answer = client.post("/api/v1/stage-gates", json={
        "stage_id": stage("negotiating").id, "kind": "field", "params": {"field": "colour"}},
        headers={"Accept-Language": "pl"})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"] == {"params.field": ["Wybierz pole szansy sprzedaży."]}
    answer = client.post("/api/v1/stage-gates", json={
        "stage_id": stage("negotiating").id, "kind": "team_role", "params": {"role": "boss"}},
        headers={"Accept-Language": "pl"})
    assert answer.status_code == 422 and list(answer.get_json()["error"]["fields"]) == ["params.role"]
    assert answer.get_json()["error"]["fields"]["params.role"][0].startswith("Wybierz jedną z")
    answer = client.post("/api/v1/stage-gates", json={"stage_id": 424242, "kind": "documents.linked"})
    assert answer.status_code == 422 and set(answer.get_json()["error"]["fields"]) == {"stage_id", "kind"}
    assert StageGate.select().count() == 0


def test_the_kinds_are_listed_with_their_params(app, people):
    client = api_client(app, people["admin"])
    kinds = {kind["key"]: kind for kind in client.get("/api/v1/stage-gates/kinds",
                                                      headers={"Accept-Language": "pl"}).get_json()}
    assert set(kinds) == {"field", "team_role"}
    fields = {param["name"]: param for param in kinds["field"]["params"]}
    assert {"value": "amount", "label": "Kwota"} in fields["field"]["choices"]
    assert [c["value"] for c in kinds["team_role"]["params"][0]["choices"]][:2] == ["owner", "presales"]


def test_only_holders_of_the_permission_configure_gates(app, people):
    made = gates.create_gate({"stage_id": stage("negotiating").id, "kind": "field", "params": {"field": "amount"}})
    rep = api_client(app, people["rita"])
    assert rep.get("/api/v1/stage-gates").status_code == 403
    assert rep.get(f"/api/v1/stage-gates/{made.id}").status_code == 403
    assert rep.post("/api/v1/stage-gates", json={"stage_id": made.stage_id, "kind": "field",
                                                 "params": {"field": "amount"}}).status_code == 403
    assert signed_in(app, people["rita"]).get("/stage-gates/").status_code == 403
    browser = signed_in(app, people["rita"])
    _html, token = page_and_token(browser, "/profile")
    assert browser.post(f"/stage-gates/{made.id}/delete", data={"csrf_token": token}).status_code == 403
    assert StageGate.select().count() == 1
    anonymous = app.test_client().get("/stage-gates/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert app.test_client().get("/api/v1/stage-gates").status_code == 401
    # A role given the named permission may.
    role = org.create_role("Sales operations")
    org.set_role_grants(role, ["opportunities.configure"])
    org.set_roles(people["rita"], ["sales_rep", role])
    g.pop("_crm_access", None)
    assert api_client(app, people["rita"]).get("/api/v1/stage-gates").status_code == 200


def test_the_page_shows_each_stage_with_its_requirements_and_adds_and_removes_them(app, people):
    browser = signed_in(app, people["admin"])
    html, token = page_and_token(browser, "/stage-gates/")
    assert "Proposal Submitted" in html and "Sale Agreed" in html and 'href="/stage-gates/"' in html
    target = stage("proposal_submitted")
    form, token = page_and_token(browser, f"/stage-gates/new?stage_id={target.id}&kind=field")
    assert 'name="param_field"' in form and 'name="param_minimum"' in form
    refused = browser.post("/stage-gates/new", data={"csrf_token": token, "stage_id": target.id, "kind": "field",
                                                      "param_field": "next_step", "param_minimum": "5"},
                           headers={"Accept-Language": "pl"})
    assert refused.status_code == 422 and 'id="e-param_minimum"' in refused.get_data(as_text=True)
    assert StageGate.select().count() == 0
    added = browser.post("/stage-gates/new", data={"csrf_token": token, "stage_id": target.id, "kind": "field",
                                                    "param_field": "amount", "param_minimum": ""})
    assert added.status_code == 302
    made = StageGate.get()
    assert gates.params_of(made) == {"field": "amount", "exclusive": False}
    page = browser.get(f"/stage-gates/?pipeline_id={target.pipeline_id}").get_data(as_text=True)
    assert "“Amount” filled in" in page
    assert browser.post(f"/stage-gates/{made.id}/delete", data={"version": 1}).status_code == 400  # no CSRF
    removed = browser.post(f"/stage-gates/{made.id}/delete", data={"csrf_token": token, "version": made.version})
    assert removed.status_code == 302 and StageGate.select().count() == 0
    assert browser.get("/stage-gates/new?stage_id=999999&kind=field").status_code == 404


def test_the_menu_links_the_page_for_those_who_configure(app, people):
    nav = signed_in(app, people["admin"]).get("/").get_data(as_text=True).split("<nav", 1)[1].split("</nav>")[0]
    assert "Stage gates" in nav
    nav = signed_in(app, people["rita"]).get("/").get_data(as_text=True).split("<nav", 1)[1].split("</nav>")[0]
    assert "Stage gates" not in nav
