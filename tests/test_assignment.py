"""Assignment rules: conditions on any field, owners and round-robin groups with capacities,
on creation, on import (the compiled proposer) and on demand; proposals a manager confirms
or changes in bulk; the progress of the reps' leads; all under the access rules."""

import threading

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.assignment import services as assignment
from crm_core.assignment.engine import compile_rules
from crm_core.assignment.models import AssignmentGroup, AssignmentProposal
from crm_core.errors import UserError
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.notifications.models import Notification
from crm_core.org import services as org
from crm_core.testing import api_client, make_user, page_and_token, signed_in


@pytest.fixture
def team(app):
    boss = make_user("boss@example.com", "Boss")
    an, binh, chi, dao = (make_user(f"{n}@example.com", n.title()) for n in ("an", "binh", "chi", "dao"))
    outsider = make_user("out@example.com", "Outsider")
    org.set_roles(boss, ["sales_manager"])
    for user in (an, binh, chi, dao, outsider):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=boss.id)
    for user in (boss, an, binh, chi, dao):
        org.place_user(user, sales.id)
    g.pop("_crm_access", None)
    return {"boss": boss, "an": an, "binh": binh, "chi": chi, "dao": dao, "outsider": outsider}


def lead(actor, **values):
    return leads.create_lead({"last_name": "Trần", **values}, actor_id=actor.id)


def test_rules_are_tried_in_order_on_any_field(app, team):
    assignment.create_rule("lead", {"name": "Vietnam retail", "owner_id": team["an"].id, "conditions": [
        {"field": "country", "op": "equals", "value": "vn"},
        {"field": "industry", "op": "in", "value": ["Retail", "Food"]}]})
    assignment.create_rule("lead", {"name": "Poland", "owner_id": team["binh"].id,
                                    "conditions": [{"field": "country", "op": "equals", "value": "PL"}]})
    assignment.create_rule("lead", {"name": "Web", "owner_id": team["chi"].id,
                                    "conditions": [{"field": "source", "op": "equals", "value": "web"}]})
    boss = team["boss"]
    assert lead(boss, country="VN", industry=" retail ").owner_id == team["an"].id
    assert lead(boss, country="VN", industry="Mining", source="web").owner_id == team["chi"].id
    assert lead(boss, country="PL", source="web").owner_id == team["binh"].id
    assert lead(boss, country="DE").owner_id == boss.id  # no rule matched: the creator keeps it
    # An owner given explicitly is never overridden.
    assert lead(boss, country="PL", owner_id=team["dao"].id).owner_id == team["dao"].id
    # Accounts follow their own rules (none here).
    assert accounts.create_account({"name": "Minh An", "country": "PL"}, actor_id=boss.id).owner_id == boss.id


def test_the_compiled_proposer_is_pure_python_and_matches_campaigns_and_regions(app, team):
    campaign = leads.create_campaign({"name": "Vietbuild"}, actor_id=team["boss"].id)
    assignment.create_rule("lead", {"name": "Fair", "owner_id": team["dao"].id, "conditions": [
        {"field": "campaign_id", "op": "equals", "value": campaign.id}]})
    assignment.create_rule("lead", {"name": "North", "owner_id": team["an"].id, "conditions": [
        {"field": "region", "op": "starts_with", "value": "Hà"}]})
    proposer = compile_rules("lead")
    assert proposer.propose({"campaign_id": campaign.id}) == team["dao"].id
    assert proposer.propose({"region": "hà nội"}) == team["an"].id
    assert proposer.propose({"region": "Huế"}) is None
    assert proposer.propose({}) is None


def test_a_rule_refuses_unknown_fields_operators_and_missing_owners(app, team):
    with pytest.raises(UserError) as bad:
        assignment.create_rule("lead", {"name": "X", "owner_id": team["an"].id,
                                        "conditions": [{"field": "password", "op": "equals", "value": "x"}]})
    assert "conditions" in bad.value.fields
    with pytest.raises(UserError) as bad:
        assignment.create_rule("lead", {"name": "X", "owner_id": team["an"].id,
                                        "conditions": [{"field": "country", "op": "equals"}]})
    assert "conditions" in bad.value.fields
    with pytest.raises(UserError) as bad:
        assignment.create_rule("lead", {"name": "X"})
    assert "owner_id" in bad.value.fields
    with pytest.raises(UserError):
        assignment.create_rule("campaign_budget", {"name": "X", "owner_id": team["an"].id})
    assert assignment.rules_of("lead") == []


def test_round_robin_rotates_fairly_and_skips_full_and_inactive_members(app, team):
    group = assignment.create_group("Inside sales", [
        {"user_id": team["an"].id}, {"user_id": team["binh"].id, "capacity": 1},
        {"user_id": team["chi"].id, "active": False}, {"user_id": team["dao"].id}], capacity=3)
    assignment.create_rule("lead", {"name": "Everyone", "group_id": group.id})
    owners = [lead(team["boss"]).owner_id for _ in range(7)]
    an, binh, dao = team["an"].id, team["binh"].id, team["dao"].id
    # binh holds at most one, chi is inactive, the others three each; then nobody has room.
    assert owners == [an, binh, dao, an, dao, an, dao]
    assert lead(team["boss"]).owner_id == team["boss"].id
    # A lead that is no longer open frees a place.
    first = Lead.select().where(Lead.owner_id == an).order_by(Lead.id).first()
    leads.update_lead(first, {"status": "unqualified"}, actor_id=an)
    assert lead(team["boss"]).owner_id == an


def test_a_member_who_left_is_skipped(app, team):
    group = assignment.create_group("Pair", [{"user_id": team["an"].id}, {"user_id": team["binh"].id}])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    from crm_core.users.models import User

    User.update(active=False).where(User.id == team["an"].id).execute()
    assert {lead(team["boss"]).owner_id for _ in range(3)} == {team["binh"].id}


def test_two_workers_rotating_at_once_never_take_the_same_turn(app, team):
    group = assignment.create_group("Four", [{"user_id": team[n].id} for n in ("an", "binh", "chi", "dao")])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    results, errors = [], []

    def work():
        try:
            with app.app_context():
                for _ in range(3):
                    with compile_rules("lead", block=1) as proposer:
                        results.append(proposer.propose({}))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    # Six turns taken by two workers: no turn twice, so four members get 2,2,1,1 in order.
    counts = sorted(results.count(team[n].id) for n in ("an", "binh", "chi", "dao"))
    assert counts == [1, 1, 2, 2]
    assert AssignmentGroup.get_by_id(group.id).turns == 6


def test_a_bulk_proposer_gives_back_the_turns_it_did_not_use(app, team):
    group = assignment.create_group("Two", [{"user_id": team["an"].id}, {"user_id": team["binh"].id}])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    with compile_rules("lead") as proposer:
        assert [proposer.propose({}) for _ in range(3)] == [team["an"].id, team["binh"].id, team["an"].id]
    assert AssignmentGroup.get_by_id(group.id).turns == 3
    assert lead(team["boss"]).owner_id == team["binh"].id


def test_proposals_wait_for_a_manager_who_confirms_or_changes_them_in_bulk(app, team):
    assignment.set_rule_set("lead", mode="propose")
    assignment.create_rule("lead", {"name": "All", "owner_id": team["an"].id})
    made = [lead(team["binh"]) for _ in range(3)]
    assert all(record.owner_id == team["binh"].id for record in made)
    boss = api_client(app, team["boss"])
    listed = boss.get("/api/v1/assignment/proposals?object=lead").json
    assert listed["total"] == 3 and {p["proposed_owner_id"] for p in listed["items"]} == {team["an"].id}
    # The outsider may decide none of them: refused like missing, nothing written.
    outsider = api_client(app, team["outsider"])
    assert outsider.get("/api/v1/assignment/proposals?object=lead").json["total"] == 0
    ids = [p["id"] for p in listed["items"]]
    assert outsider.post("/api/v1/assignment/proposals/decide",
                         json={"object": "lead", "ids": ids[:1]}).status_code == 404
    confirmed = boss.post("/api/v1/assignment/proposals/decide", json={"object": "lead", "ids": ids[:2]})
    assert confirmed.status_code == 200, confirmed.json
    changed = boss.post("/api/v1/assignment/proposals/decide",
                        json={"object": "lead", "ids": ids[2:], "owner_id": team["dao"].id})
    assert changed.status_code == 200
    owners = [Lead.get_by_id(record.id).owner_id for record in made]
    assert owners == [team["an"].id, team["an"].id, team["dao"].id]
    assert boss.get("/api/v1/assignment/proposals?object=lead").json["total"] == 0
    again = boss.post("/api/v1/assignment/proposals/decide", json={"object": "lead", "ids": ids[:1]})
    assert again.status_code == 404
    notices = {n.user_id: n.count for n in Notification.select()}
    assert notices == {team["an"].id: 2, team["dao"].id: 1}


def test_rejected_proposals_change_nothing(app, team):
    assignment.set_rule_set("lead", mode="propose")
    assignment.create_rule("lead", {"name": "All", "owner_id": team["an"].id})
    record = lead(team["binh"])
    proposal = AssignmentProposal.get()
    assignment.decide(team["boss"].id, "lead", [proposal.id], action="reject")
    assert Lead.get_by_id(record.id).owner_id == team["binh"].id
    assert AssignmentProposal.get_by_id(proposal.id).status == "rejected"
    assert not Notification.select().exists()


def test_rules_run_on_demand_over_a_selection_the_caller_may_give_away(app, team):
    an_lead, other = lead(team["an"]), lead(team["outsider"])
    assignment.create_rule("lead", {"name": "Poland", "owner_id": team["dao"].id,
                                    "conditions": [{"field": "country", "op": "equals", "value": "PL"}]})
    leads.update_lead(an_lead, {"country": "PL"}, actor_id=team["an"].id)
    boss = api_client(app, team["boss"])
    assert boss.post("/api/v1/assignment/run", json={"object": "lead", "ids": [an_lead.id, other.id]}
                     ).status_code == 404
    assert Lead.get_by_id(an_lead.id).owner_id == team["an"].id
    done = boss.post("/api/v1/assignment/run", json={"object": "lead", "ids": [an_lead.id]})
    assert done.status_code == 200 and done.json["items"] == [
        {"record_id": an_lead.id, "status": "assigned", "owner_id": team["dao"].id}]
    assert Lead.get_by_id(an_lead.id).owner_id == team["dao"].id
    # A rep who may read but not give away a colleague's lead: 403.
    org.set_default("lead", "read")
    g.pop("_crm_access", None)
    assert api_client(app, team["binh"]).post("/api/v1/assignment/run", json={
        "object": "lead", "ids": [an_lead.id]}).status_code == 403


def test_only_holders_of_the_permission_manage_rules(app, team):
    rep, boss = api_client(app, team["an"]), api_client(app, team["boss"])
    body = {"object": "lead", "name": "Web", "owner_id": team["an"].id,
            "conditions": [{"field": "source", "op": "equals", "value": "web"}]}
    assert rep.post("/api/v1/assignment/rules", json=body).status_code == 403
    made = boss.post("/api/v1/assignment/rules", json=body)
    assert made.status_code == 201, made.json
    bad = boss.post("/api/v1/assignment/rules", json={**body, "conditions": [{"field": "nope", "op": "equals",
                                                                              "value": "x"}]},
                    headers={"Accept-Language": "pl"})
    assert bad.status_code == 422 and "conditions" in bad.json["error"]["fields"]
    url = f"/api/v1/assignment/rules/{made.json['id']}"
    assert boss.patch(url, json={"name": "Website"}).status_code == 428
    changed = boss.patch(url, json={"name": "Website"}, headers={"If-Match": made.headers["ETag"]})
    assert changed.status_code == 200 and changed.json["name"] == "Website"
    assert boss.patch(url, json={"name": "Again"}, headers={"If-Match": made.headers["ETag"]}).status_code == 412
    settings = boss.patch("/api/v1/assignment/settings/lead", json={"mode": "propose"}, headers={"If-Match": '"0"'})
    assert settings.status_code == 200 and settings.json["mode"] == "propose"
    group = boss.post("/api/v1/assignment/groups", json={"name": "Pair", "members": [{"user_id": team["an"].id}]})
    assert group.status_code == 201
    boss.patch(url, json={"owner_id": None, "group_id": group.json["id"]}, headers={"If-Match": changed.headers["ETag"]})
    assert boss.delete(f"/api/v1/assignment/groups/{group.json['id']}").status_code == 409
    assert boss.delete(url).status_code == 204
    assert boss.delete(f"/api/v1/assignment/groups/{group.json['id']}").status_code == 204


def test_progress_shows_each_rep_below_the_manager(app, team, db):
    import datetime as dt

    for status in ("new", "new", "contacted", "qualified"):
        lead(team["an"], status=status)
    old = lead(team["binh"])
    Lead.update(updated_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)).where(
        Lead.id == old.id).execute()
    lead(team["outsider"])
    rows = {row["name"]: row for row in api_client(app, team["boss"]).get(
        "/api/v1/assignment/progress?days=7").json["items"]}
    assert set(rows) == {"An", "Binh", "Chi", "Dao"}
    assert (rows["An"]["assigned"], rows["An"]["new"], rows["An"]["contacted"], rows["An"]["qualified"],
            rows["An"]["untouched"]) == (4, 2, 1, 1, 0)
    assert (rows["Binh"]["assigned"], rows["Binh"]["untouched"]) == (1, 1)
    assert api_client(app, team["an"]).get("/api/v1/assignment/progress").json["items"] == []
    assert api_client(app, team["boss"]).get("/api/v1/assignment/progress?days=0").status_code == 400


def test_pages_of_proposals_and_progress(app, team):
    assignment.set_rule_set("lead", mode="propose")
    assignment.create_rule("lead", {"name": "All", "owner_id": team["an"].id})
    record = lead(team["binh"], company="Sông Hồng")
    browser = signed_in(app, team["boss"])
    html, token = page_and_token(browser, "/assignment/proposals?object=lead")
    assert "Sông Hồng" in html
    proposal = AssignmentProposal.get()
    done = browser.post("/assignment/proposals?object=lead", data={
        "csrf_token": token, "ids": [str(proposal.id)], "action": "confirm", "owner_id": ""})
    assert done.status_code == 302
    assert Lead.get_by_id(record.id).owner_id == team["an"].id
    html, _ = page_and_token(browser, "/assignment/progress?lang=vi")
    assert "An" in html and 'lang="vi"' in html
    assert signed_in(app, team["outsider"]).get("/assignment/proposals?object=lead").status_code == 200
    assert app.test_client().get("/assignment/progress").status_code in (302, 401)


def test_an_import_applies_the_compiled_proposer_and_notifies_once_per_owner(app, team):
    from crm_core.records import create_record

    group = assignment.create_group("Pair", [{"user_id": team["an"].id}, {"user_id": team["binh"].id}])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    rows = [{"last_name": f"Row {i}", "country": "VN"} for i in range(5)]
    with compile_rules("lead") as proposer:
        owners = [proposer.propose(row) for row in rows]
    made = [create_record(Lead, actor_id=team["boss"].id, owner_id=owner, **row) for row, owner in zip(rows, owners)]
    outcome = assignment.records_created("lead", [r.id for r in made], actor_id=team["boss"].id,
                                         proposed={r.id: o for r, o in zip(made, owners)})
    assert {status for status, _ in outcome.values()} == {"kept"}
    notices = {n.user_id: n.count for n in Notification.select()}
    assert notices == {team["an"].id: 3, team["binh"].id: 2}
    # In "propose" mode the import keeps its owner and the rules' choices wait for a manager.
    assignment.set_rule_set("lead", expected_version=0, mode="propose")
    more = create_record(Lead, actor_id=team["boss"].id, owner_id=team["boss"].id, last_name="Late")
    assignment.records_created("lead", [more.id], actor_id=team["boss"].id, proposed={more.id: team["an"].id})
    assert AssignmentProposal.get().proposed_owner_id == team["an"].id
    assert Lead.get_by_id(more.id).owner_id == team["boss"].id


def test_a_rule_set_can_stop_running_on_creation(app, team):
    assignment.create_rule("lead", {"name": "All", "owner_id": team["an"].id})
    assignment.set_rule_set("lead", run_on_create=False)
    assert lead(team["boss"]).owner_id == team["boss"].id
    assert compile_rules("lead", for_creation=True).propose({}) is None
    assert compile_rules("lead").propose({}) == team["an"].id  # on demand they still run
    with pytest.raises(Exception):
        assignment.set_rule_set("lead", expected_version=7, mode="propose")
    assert assignment.rule_set("lead").mode == "apply"


def test_pages_of_rules_and_of_running_them_over_a_selection(app, team):
    browser = signed_in(app, team["boss"])
    html, token = page_and_token(browser, "/assignment/rules?object=lead")
    added = browser.post("/assignment/rules?object=lead", data={
        "csrf_token": token, "action": "add_rule", "name": "Poland", "field": "country", "op": "equals",
        "value": "PL", "target": f"user:{team['dao'].id}"})
    assert added.status_code == 302, added.get_data(as_text=True)
    refused = browser.post("/assignment/rules?object=lead", data={
        "csrf_token": token, "action": "add_rule", "name": "Bad", "field": "country", "op": "equals",
        "value": "", "target": f"user:{team['dao'].id}"}, headers={"Accept-Language": "ru"})
    assert refused.status_code == 422 and "Для этого условия нужно значение." in refused.get_data(as_text=True)
    assert [r.name for r in assignment.rules_of("lead")] == ["Poland"]
    record = lead(team["an"], country="PL", owner_id=team["an"].id)
    html, token = page_and_token(browser, "/assignment/run?object=lead")
    assert f'value="{record.id}"' in html
    done = browser.post("/assignment/run?object=lead", data={"csrf_token": token, "ids": [str(record.id)]})
    assert done.status_code == 302
    assert Lead.get_by_id(record.id).owner_id == team["dao"].id
    rep = signed_in(app, team["an"])
    assert rep.get("/assignment/rules?object=lead").status_code == 403
    html, token = page_and_token(rep, "/assignment/run?object=lead")
    assert f'value="{record.id}"' not in html  # no longer theirs to give away
    assert rep.post("/assignment/run?object=lead", data={"csrf_token": token, "ids": [str(record.id)]}
                    ).status_code == 404


def test_two_managers_deciding_the_same_proposal_at_once_decide_it_once(app, team):
    from crm_core.errors import VersionConflict

    assignment.set_rule_set("lead", mode="propose")
    assignment.create_rule("lead", {"name": "All", "owner_id": team["an"].id})
    record = lead(team["binh"])
    proposal = AssignmentProposal.get()
    outcomes, barrier = [], threading.Barrier(2)

    def decide(owner):
        with app.app_context():
            barrier.wait()
            try:
                assignment.decide(team["boss"].id, "lead", [proposal.id], owner_id=owner)
                outcomes.append("done")
            except (LookupError, VersionConflict):
                outcomes.append("refused")

    threads = [threading.Thread(target=decide, args=(team[n].id,)) for n in ("chi", "dao")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["done", "refused"]
    decided = AssignmentProposal.get_by_id(proposal.id)
    assert decided.status == "confirmed" and Lead.get_by_id(record.id).owner_id == decided.owner_id
    assert Notification.select().count() == 1


def test_a_field_getter_lets_rules_test_fields_beyond_the_columns(app, team, monkeypatch):
    from crm_core.assignment import conditions

    monkeypatch.setitem(conditions.FIELD_GETTERS, "lead",
                        {"custom.interests": lambda values: ",".join((values.get("custom") or {}).get("interests", []))})
    assignment.create_rule("lead", {"name": "Tennis", "owner_id": team["chi"].id, "conditions": [
        {"field": "custom.interests", "op": "contains", "value": "tennis"},
        {"field": "country", "op": "equals", "value": "PL"}]})
    proposer = compile_rules("lead")
    assert proposer.propose({"country": "PL", "custom": {"interests": ["golf", "Tennis"]}}) == team["chi"].id
    assert proposer.propose({"country": "PL", "custom": {"interests": ["golf"]}}) is None
    assert proposer.propose({"country": "VN", "custom": {"interests": ["tennis"]}}) is None
