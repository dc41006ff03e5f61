"""Opportunities through the API: the record, the shared list filters and sorts, stage
moves with their requirements, the team, bulk edits, export, and the company's pipelines,
stages and lost reasons; every answer as the access engine says."""

import csv
import io

import pytest
from flask import g

from crm_core import hookimpl
from crm_core.accounts import services as accounts
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity, OpportunityMember, Pipeline, Stage, StageChange
from crm_core.org import services as org
from crm_core.testing import api_client, make_sales_team, make_user


@pytest.fixture
def team(app):
    people = make_sales_team()
    clients = {name: api_client(app, user) for name, user in people.items()}
    account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
    bob_account = accounts.create_account({"name": "Sông Hồng"}, actor_id=people["bob"].id)
    return {"people": people, "clients": clients, "account": account, "bob_account": bob_account}


def stage(key, pipeline_key="sales"):
    return Stage.get((Stage.key == key) & (Stage.pipeline == Pipeline.get(Pipeline.key == pipeline_key)))


def create(client, account, **values):
    response = client.post("/api/v1/opportunities", json={"name": "Deal", "account_id": account.id, **values})
    assert response.status_code == 201, response.json
    return response.json


def ids(response):
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def listener(app, name, **methods):
    holder = type(name, (), {k: staticmethod(hookimpl(v)) for k, v in methods.items()})
    pm = app.extensions["crm"].pm
    pm.register(holder, name=name)
    return lambda: pm.unregister(name=name)


# -- the record ---------------------------------------------------------------------------------------

def test_a_lost_reason_that_is_not_text_is_a_422_not_a_crash(team):
    """Found by schemathesis: ``"lost_reason": true`` reached the length check and gave a 500;
    like any field of the wrong type it is a 422 naming the field."""
    rita = team["clients"]["rita"]
    for junk in (True, 12, ["Price"], {"name": "Price"}):
        response = rita.post("/api/v1/opportunities", json={"name": "Deal", "account_id": team["account"].id,
                                                              "lost_reason": junk},
                             headers={"Accept-Language": "pl"})
        assert response.status_code == 422, (junk, response.json)
        assert response.json["error"]["fields"] == {"lost_reason": ["Podaj tekst."]}
    assert rita.get("/api/v1/opportunities").json["total"] == 0

def test_an_opportunity_round_trip_with_money_as_a_string_and_its_currency(team):
    rita = team["clients"]["rita"]
    body = create(rita, team["account"], amount="1500000.5", currency="vnd", expected_close_date="2026-12-31",
                  source="referral", competitors="Acme\nGlobex", next_step="Send the quote")
    assert body["amount"] == "1500000.5" and body["currency"] == "VND" and body["status"] == "open"
    assert body["stage_id"] == stage("qualified").id and body["probability"] == 10
    assert body["owner_id"] == team["people"]["rita"].id
    got = rita.get(f"/api/v1/opportunities/{body['id']}")
    assert got.status_code == 200 and got.headers["ETag"] == '"1"' and got.json["competitors"] == "Acme\nGlobex"
    changed = rita.patch(f"/api/v1/opportunities/{body['id']}", json={"amount": "2000", "probability": 35},
                         headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json["amount"] == "2000" and changed.json["probability"] == 35
    stale = rita.patch(f"/api/v1/opportunities/{body['id']}", json={"amount": "1"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert Opportunity.get_by_id(body["id"]).amount == 2000
    assert rita.patch(f"/api/v1/opportunities/{body['id']}", json={"amount": "1"}).status_code == 428
    assert rita.delete(f"/api/v1/opportunities/{body['id']}").status_code == 204
    assert rita.get(f"/api/v1/opportunities/{body['id']}").status_code == 404


@pytest.mark.parametrize("values, field", [
    ({"name": " "}, "name"),
    ({"amount": "-5"}, "amount"),
    ({"amount": "abc"}, "amount"),
    ({"probability": 101}, "probability"),
    ({"currency": "EURO"}, "currency"),
    ({"source": "gossip"}, "source"),
    ({"stage_id": 987654}, "stage_id"),
    ({"owner_id": 987654}, "owner_id"),
    ({"lost_reason_id": 987654}, "lost_reason_id"),
])
def test_bad_input_is_a_422_naming_the_field_and_nothing_is_written(team, values, field):
    response = team["clients"]["rita"].post("/api/v1/opportunities", json={
        "name": "Deal", "account_id": team["account"].id, **values})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert Opportunity.select().count() == 0


def test_an_account_the_caller_cannot_see_is_refused_like_a_missing_one(team):
    response = team["clients"]["rita"].post("/api/v1/opportunities", json={
        "name": "Deal", "account_id": team["bob_account"].id})
    assert response.status_code == 422 and "account_id" in response.json["error"]["fields"]


def test_messages_come_in_the_callers_language(team):
    response = team["clients"]["rita"].post("/api/v1/opportunities?lang=vi", json={
        "name": "Deal", "account_id": team["account"].id, "probability": 120})
    assert response.status_code == 422
    assert response.json["error"]["fields"]["probability"] != ["Must be greater than or equal to 0 and less than or equal to 100."]


# -- access ---------------------------------------------------------------------------------------------

def test_another_department_cannot_see_read_or_change_it_and_the_manager_can(team):
    clients = team["clients"]
    deal = create(clients["rita"], team["account"], amount="100", currency="EUR")
    bob, maria = clients["bob"], clients["maria"]
    missing = bob.get("/api/v1/opportunities/987654")
    hidden = bob.get(f"/api/v1/opportunities/{deal['id']}")
    assert hidden.status_code == missing.status_code == 404 and hidden.json == missing.json
    assert ids(bob.get("/api/v1/opportunities")) == []
    assert bob.get("/api/v1/opportunities").json["total"] == 0
    assert bob.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage_id": stage("negotiating").id}).status_code == 404
    assert bob.get(f"/api/v1/opportunities/{deal['id']}/members").status_code == 404
    export = bob.get("/api/v1/opportunities/export?format=csv").get_data(as_text=True)
    assert "Deal" not in export
    assert ids(maria.get("/api/v1/opportunities")) == [deal["id"]]
    assert maria.get(f"/api/v1/opportunities/{deal['id']}").status_code == 200


def test_hidden_fields_are_left_out_cannot_be_written_filtered_or_sorted(team):
    org.set_field_rules(org.role_by_key("sales_rep"), {("opportunity", "amount"): "hidden"})
    g.pop("_crm_access", None)
    rita = team["clients"]["rita"]
    deal = create(rita, team["account"])
    assert "amount" not in deal and "name" in deal
    refused = rita.patch(f"/api/v1/opportunities/{deal['id']}", json={"amount": "5"}, headers={"If-Match": '"1"'})
    assert refused.status_code == 422 and "amount" in refused.json["error"]["fields"]
    assert rita.get("/api/v1/opportunities?sort=-amount").status_code == 400
    header = next(csv.reader(io.StringIO(rita.get("/api/v1/opportunities/export").get_data(as_text=True).lstrip("\ufeff"))))
    assert "amount" not in header and "name" in header


# -- lists ------------------------------------------------------------------------------------------------

@pytest.fixture
def spread(team, app):
    """Deals of Rita and Maria (Sales) and of a rep in a department below Sales."""
    people = team["people"]
    sales = people["maria"].department_id
    north = org.create_department("North", parent=sales)
    nam = make_user("nam@example.com", "Nam")
    org.set_roles(nam, ["sales_rep"])
    org.place_user(nam, north.id)
    g.pop("_crm_access", None)
    account = team["account"]
    made = {
        "a": opps.create_opportunity({"name": "Alpha", "account_id": account.id, "amount": 300, "currency": "USD",
                                      "expected_close_date": "2026-01-10"}, actor_id=people["rita"].id),
        "b": opps.create_opportunity({"name": "Beta", "account_id": account.id, "amount": 100, "currency": "USD",
                                      "expected_close_date": "2026-03-10", "source": "web",
                                      "stage_id": stage("negotiating").id}, actor_id=people["maria"].id),
        "c": opps.create_opportunity({"name": "Gamma", "account_id": account.id, "amount": 200, "currency": "USD",
                                      "expected_close_date": "2026-02-10", "owner_id": nam.id,
                                      "stage_id": stage("proposal_submitted").id}, actor_id=people["maria"].id),
    }
    return {**made, "nam": nam, "north": north, "sales": sales}


def test_the_list_filters(team, spread):
    maria = team["clients"]["maria"]
    a, b, c = spread["a"].id, spread["b"].id, spread["c"].id
    assert sorted(ids(maria.get("/api/v1/opportunities"))) == sorted([a, b, c])
    assert ids(maria.get(f"/api/v1/opportunities?stage_id={stage('negotiating').id}")) == [b]
    assert ids(maria.get(f"/api/v1/opportunities?owner_id={team['people']['rita'].id}")) == [a]
    assert ids(maria.get(f"/api/v1/opportunities?department_id={spread['north'].id}")) == [c]
    assert sorted(ids(maria.get(f"/api/v1/opportunities?department_id={spread['sales']}"))) == sorted([a, b, c])
    assert ids(maria.get("/api/v1/opportunities?source=web")) == [b]
    assert ids(maria.get("/api/v1/opportunities?close_from=2026-02-01&close_to=2026-02-28")) == [c]
    assert ids(maria.get("/api/v1/opportunities?q=amm")) == [c]
    assert ids(maria.get("/api/v1/opportunities?status=won")) == []
    pipeline = Pipeline.get(Pipeline.key == "sales").id
    assert len(ids(maria.get(f"/api/v1/opportunities?pipeline_id={pipeline}&account_id={team['account'].id}"))) == 3
    assert maria.get("/api/v1/opportunities?close_from=2026-03-01&close_to=2026-02-01").status_code == 400
    assert maria.get("/api/v1/opportunities?status=maybe").status_code == 400
    assert maria.get("/api/v1/opportunities?colour=red").status_code == 400


def test_the_list_sorts(team, spread):
    maria = team["clients"]["maria"]
    a, b, c = spread["a"].id, spread["b"].id, spread["c"].id
    assert ids(maria.get("/api/v1/opportunities")) == [a, c, b]  # expected close date first
    assert ids(maria.get("/api/v1/opportunities?sort=-amount")) == [a, c, b]
    assert ids(maria.get("/api/v1/opportunities?sort=amount")) == [b, c, a]
    assert ids(maria.get("/api/v1/opportunities?sort=name")) == [a, b, c]
    assert ids(maria.get("/api/v1/opportunities?sort=stage")) == [a, c, b]
    assert ids(maria.get("/api/v1/opportunities?sort=-probability")) == [b, c, a]
    assert ids(maria.get("/api/v1/opportunities?sort=-stage&per_page=1&page=2")) == [c]
    assert maria.get("/api/v1/opportunities?sort=colour").status_code == 400


def test_the_export_applies_the_filters_and_carries_custom_fields(team, spread):
    from crm_core.customfields import services as custom_fields

    custom_fields.create_field({"object": "opportunity", "key": "region", "type": "text",
                                "labels": {"en": "Region"}})
    maria = team["clients"]["maria"]
    assert maria.patch(f"/api/v1/opportunities/{spread['b'].id}", json={"custom": {"region": "Miền Bắc"}},
                       headers={"If-Match": '"1"'}).json["custom"] == {"region": "Miền Bắc"}
    text = maria.get("/api/v1/opportunities/export?format=csv&source=web").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert "custom.region" in rows[0] and len(rows) == 2 and "Miền Bắc" in rows[1] and "Beta" in rows[1]
    xlsx = maria.get("/api/v1/opportunities/export?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


# -- stage moves ----------------------------------------------------------------------------------------

def test_a_move_that_needs_a_lost_reason_is_refused_with_every_requirement_and_nothing_changes(team, app):
    rita = team["clients"]["rita"]
    deal = create(rita, team["account"])

    def gate(app, actor_id, opportunity, from_stage, to_stage, values):
        if to_stage.kind == "lost" and not values.get("lost_note"):
            return [("lost_note", "Say what happened."), ("lost_note", "Name the competitor.")]
        return []

    unregister = listener(app, "note_gate", crm_stage_transition_check=gate)
    try:
        refused = rita.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage_id": stage("sale_lost").id})
        assert refused.status_code == 422
        error = refused.json["error"]
        assert error["code"] == "stage_requirements" and "Sale Lost" in error["message"]
        assert set(error["fields"]) == {"lost_reason_id", "lost_note"}
        assert error["fields"]["lost_note"] == ["Say what happened.", "Name the competitor."]
        stored = Opportunity.get_by_id(deal["id"])
        assert stored.stage_id == stage("qualified").id and stored.version == 1
        assert StageChange.select().where(StageChange.opportunity == deal["id"]).count() == 1
        reason = opps.create_lost_reason({"name": "Price"})
        moved = rita.post(f"/api/v1/opportunities/{deal['id']}/stage", json={
            "stage_id": stage("sale_lost").id, "lost_reason_id": reason.id, "lost_note": "Too dear"})
        assert moved.status_code == 200, moved.json
        assert moved.json["status"] == "lost" and moved.json["lost_reason_id"] == reason.id
        assert moved.json["closed_date"] is not None
    finally:
        unregister()


def test_a_move_checks_if_match_when_sent_and_the_stage_belongs_to_the_pipeline(team):
    rita = team["clients"]["rita"]
    deal = create(rita, team["account"])
    stale = rita.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage_id": stage("negotiating").id},
                      headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    other = opps.create_pipeline({"name": "Projects", "stages": [
        {"name": "Scoping", "kind": "open"}, {"name": "Signed", "kind": "won", "probability": 100}]})
    foreign = Stage.get((Stage.pipeline == other.id) & (Stage.kind == "open"))
    wrong = rita.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage_id": foreign.id})
    assert wrong.status_code == 422 and "stage_id" in wrong.json["error"]["fields"]
    ok = rita.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage_id": stage("negotiating").id},
                   headers={"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json["probability"] == 70 and ok.headers["ETag"] == '"2"'


# -- the team --------------------------------------------------------------------------------------------

def test_the_team_gives_access_and_only_editors_change_it(team):
    clients, people = team["clients"], team["people"]
    deal = create(clients["rita"], team["account"])
    url = f"/api/v1/opportunities/{deal['id']}/members"
    assert clients["bob"].get(f"/api/v1/opportunities/{deal['id']}").status_code == 404
    added = clients["rita"].post(url, json={"user_id": people["bob"].id, "role": "presales"})
    assert added.status_code == 201 and added.json["access"] == "read" and added.json["user_name"] == "Bob"
    g.pop("_crm_access", None)
    assert clients["bob"].get(f"/api/v1/opportunities/{deal['id']}").status_code == 200
    assert [m["user_id"] for m in clients["bob"].get(url).json] == [people["bob"].id]
    # A reading member may not change the team nor the deal.
    assert clients["bob"].post(url, json={"user_id": people["maria"].id}).status_code == 403
    assert clients["bob"].patch(f"/api/v1/opportunities/{deal['id']}", json={"name": "X"},
                                headers={"If-Match": '"1"'}).status_code == 403
    assert clients["rita"].post(url, json={"user_id": people["bob"].id}).status_code == 409
    assert clients["rita"].post(url, json={"user_id": people["rita"].id}).status_code == 422
    assert clients["rita"].post(url, json={"user_id": people["bob"].id, "role": "boss"}).status_code == 422
    member = added.json["id"]
    changed = clients["rita"].patch(f"{url}/{member}", json={"access": "edit"})
    assert changed.status_code == 200 and changed.json["access"] == "edit"
    g.pop("_crm_access", None)
    assert clients["bob"].patch(f"/api/v1/opportunities/{deal['id']}", json={"next_step": "Call"},
                                headers={"If-Match": '"1"'}).status_code == 200
    assert clients["rita"].patch(f"{url}/987654", json={"access": "read"}).status_code == 404
    assert clients["rita"].delete(f"{url}/{member}").status_code == 204
    g.pop("_crm_access", None)
    assert clients["bob"].get(f"/api/v1/opportunities/{deal['id']}").status_code == 404
    assert OpportunityMember.select().count() == 0


# -- bulk edits ---------------------------------------------------------------------------------------------

def test_a_bulk_edit_changes_each_record_whole_or_not_at_all_and_says_why(team):
    clients, people = team["clients"], team["people"]
    first = create(clients["rita"], team["account"], name="First")
    second = create(clients["rita"], team["account"], name="Second", probability=20)
    bobs = opps.create_opportunity({"name": "Bob's", "account_id": team["bob_account"].id},
                                   actor_id=people["bob"].id)
    answer = clients["rita"].post("/api/v1/opportunities/bulk", json={
        "ids": [first["id"], second["id"], bobs.id, 987654],
        "changes": {"expected_close_date": "2027-01-31", "probability": 50}})
    assert answer.status_code == 200, answer.json
    results = {r["id"]: r for r in answer.json["results"]}
    assert results[first["id"]]["ok"] and results[second["id"]]["ok"]
    assert results[bobs.id]["status"] == 404 and results[987654]["status"] == 404
    assert results[bobs.id]["errors"] == results[987654]["errors"]
    assert answer.json["changed"] == 2 and answer.json["failed"] == 2
    assert Opportunity.get_by_id(second["id"]).probability == 50
    assert Opportunity.get_by_id(bobs.id).expected_close_date is None
    # A stage that needs a lost reason: refused per record with the requirement, nothing written.
    lost = clients["rita"].post("/api/v1/opportunities/bulk", json={
        "ids": [first["id"]], "changes": {"stage_id": stage("sale_lost").id, "probability": 0}})
    result = lost.json["results"][0]
    assert not result["ok"] and result["status"] == 422 and "lost_reason_id" in result["errors"]
    stored = Opportunity.get_by_id(first["id"])
    assert stored.probability == 50 and stored.stage_id == stage("qualified").id


def test_a_bulk_edit_reports_records_the_caller_may_only_read(team):
    clients, people = team["clients"], team["people"]
    deal = create(clients["rita"], team["account"])
    opps.add_member(Opportunity.get_by_id(deal["id"]), {"user_id": people["bob"].id, "access": "read"})
    g.pop("_crm_access", None)
    answer = clients["bob"].post("/api/v1/opportunities/bulk", json={"ids": [deal["id"]],
                                                                    "changes": {"probability": 90}})
    assert answer.json["results"][0]["status"] == 403 and Opportunity.get_by_id(deal["id"]).probability == 10
    # Giving it away needs the transfer level; a rep's own deal may be given.
    given = clients["rita"].post("/api/v1/opportunities/bulk", json={
        "ids": [deal["id"]], "changes": {"owner_id": people["maria"].id}})
    assert given.json["results"][0]["ok"] and Opportunity.get_by_id(deal["id"]).owner_id == people["maria"].id
    empty = clients["rita"].post("/api/v1/opportunities/bulk", json={"ids": [deal["id"]], "changes": {}})
    assert empty.status_code == 422


# -- pipelines, stages, lost reasons ------------------------------------------------------------------------

def test_everyone_reads_pipelines_and_only_configurers_change_them(team, app):
    rita = team["clients"]["rita"]
    listed = rita.get("/api/v1/pipelines")
    assert listed.status_code == 200
    sales = next(p for p in listed.json if p["key"] == "sales")
    assert [s["kind"] for s in sales["stages"]] == ["open", "open", "open", "won", "lost"]
    assert rita.post("/api/v1/pipelines", json={"name": "Projects"}).status_code == 403
    assert rita.post("/api/v1/lost-reasons", json={"name": "Price"}).status_code == 403
    manager = make_user("boss@example.com", "Boss")
    org.set_roles(manager, ["sales_manager"])
    g.pop("_crm_access", None)
    boss = api_client(app, manager)
    made = boss.post("/api/v1/pipelines", json={"name": "Projects", "stages": [
        {"name": "Scoping", "probability": 20}, {"name": "Signed", "kind": "won", "probability": 100},
        {"name": "Dropped", "kind": "lost"}]})
    assert made.status_code == 201, made.json
    pipeline = made.json
    assert [s["name"] for s in pipeline["stages"]] == ["Scoping", "Signed", "Dropped"]
    assert pipeline["source"] == "company" and pipeline["key"] == "projects"
    url = f"/api/v1/pipelines/{pipeline['id']}"
    assert boss.patch(url, json={"name": "Big projects"}, headers={"If-Match": '"7"'}).status_code == 412
    renamed = boss.patch(url, json={"name": "Big projects", "is_default": True}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200 and renamed.json["is_default"]
    assert not Pipeline.get(Pipeline.key == "sales").is_default
    stage_made = boss.post(f"{url}/stages", json={"name": "Pilot", "probability": 60})
    assert stage_made.status_code == 201
    order = [s["id"] for s in boss.get(f"{url}/stages").json]
    assert order[-1] == stage_made.json["id"]
    reordered = boss.post(f"{url}/stages/reorder", json={"stage_ids": [order[-1], *order[:-1]]})
    assert [s["id"] for s in reordered.json] == [order[-1], *order[:-1]]
    assert boss.post(f"{url}/stages/reorder", json={"stage_ids": order[:2]}).status_code == 422
    bad = boss.patch(f"{url}/stages/{order[0]}", json={"probability": 120}, headers={"If-Match": '"1"'})
    assert bad.status_code == 422
    version = boss.get(f"{url}/stages/{order[0]}").headers["ETag"]
    off = boss.patch(f"{url}/stages/{order[0]}", json={"active": False}, headers={"If-Match": version})
    assert off.status_code == 200 and off.json["active"] is False
    assert boss.get(f"/api/v1/pipelines/{pipeline['id']}/stages/987654").status_code == 404
    assert boss.delete(f"/api/v1/pipelines/{Pipeline.get(Pipeline.key == 'sales').id}").status_code == 409
    assert rita.get(url).status_code == 200 and rita.delete(url).status_code == 403


def test_lost_reasons_are_a_company_list(team, client):
    made = client.post("/api/v1/lost-reasons", json={"name": "Price"})
    assert made.status_code == 201
    assert client.post("/api/v1/lost-reasons", json={"name": "Price"}).status_code == 409
    reason = made.json["id"]
    assert [r["name"] for r in team["clients"]["rita"].get("/api/v1/lost-reasons").json] == ["Price"]
    assert client.patch(f"/api/v1/lost-reasons/{reason}", json={"active": False},
                        headers={"If-Match": '"1"'}).json["active"] is False
    assert client.get("/api/v1/lost-reasons/987654").status_code == 404
    assert client.delete(f"/api/v1/lost-reasons/{reason}").status_code == 204
