"""The generic approval mechanism over HTTP: the list of requests as each person may see it,
approving, rejecting and withdrawing (and who may not), concurrent decisions, the policy
settings, the pages (inbox, request, policy form, menu count), the emails, and the two
hooks it brings: crm_register_approval_kinds and crm_record_ext."""

import threading
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.approvals import ApprovalKind
from crm_core.approvals import services as approvals
from crm_core.approvals.models import ApprovalRequest
from crm_core.audit.models import FieldHistory, SecurityEvent
from crm_core.notifications import services as notifications
from crm_core.notifications.models import Notification
from crm_core.opportunities import services as opps
from crm_core.opportunities.models import Opportunity
from crm_core.plugins import RegistryError
from crm_core.testing import api_client, make_sales_team, make_user, page_and_token, signed_in

from test_hooks import plugin_module
from test_notifications import Inbox, smtp  # noqa: F401 - the SMTP server fixture

KIND = "opportunity_change"


@pytest.fixture
def team(app):
    people = make_sales_team()
    approvals.set_policy(KIND, {"active": True})
    return people


def new_deal(owner, amount="1000", name="Warehouse racks"):
    account = accounts.create_account({"name": f"{name} Co"}, actor_id=owner.id)
    return opps.create_opportunity({"name": name, "account_id": account.id, "amount": Decimal(amount)},
                                   actor_id=owner.id)


@pytest.fixture
def held(team):
    deal = new_deal(team["rita"])
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    return approvals.pending_of("opportunity", deal.id)[0]


def amount_of(request):
    return Opportunity.get_by_id(request.record_id).amount


def test_each_person_sees_the_requests_of_records_they_may_read(app, team, held):
    maria, rita, bob = (api_client(app, team[n]) for n in ("maria", "rita", "bob"))
    to_decide = maria.get("/api/v1/approvals?role=approver").json
    assert [i["id"] for i in to_decide["items"]] == [held.id] and to_decide["total"] == 1
    item = to_decide["items"][0]
    assert item["proposed"] == {"amount": "5000"} and item["current"] == {"amount": "1000.0000"}
    assert item["may_decide"] is True and item["may_cancel"] is False
    assert item["steps"] == [{"position": 0, "approver_id": team["maria"].id, "state": "pending",
                              "decided_at": None, "decided_by_id": None, "comment": None}]
    mine = rita.get("/api/v1/approvals?role=requester&state=pending").json["items"]
    assert [(i["id"], i["may_decide"], i["may_cancel"]) for i in mine] == [(held.id, False, True)]
    assert rita.get("/api/v1/approvals?role=approver").json["total"] == 0
    assert rita.get("/api/v1/approvals?state=approved").json["total"] == 0
    # Bob (another department) cannot read the deal: no request, and a 404 like a missing one.
    assert bob.get("/api/v1/approvals").json == {"items": [], "total": 0, "page": 1, "per_page": 50}
    assert bob.get(f"/api/v1/approvals/{held.id}").status_code == 404
    assert bob.get("/api/v1/approvals/999999").status_code == 404
    assert bob.post(f"/api/v1/approvals/{held.id}/approve", json={}).status_code == 404
    assert maria.get("/api/v1/approvals?state=bogus").status_code == 400


def test_only_the_approver_decides_and_the_last_approval_applies(app, team, held):
    rita, maria = api_client(app, team["rita"]), api_client(app, team["maria"])
    refused = rita.post(f"/api/v1/approvals/{held.id}/approve", json={"comment": "mine"})
    assert refused.status_code == 403 and amount_of(held) == Decimal("1000")
    done = maria.post(f"/api/v1/approvals/{held.id}/approve", json={"comment": "Good news"})
    assert done.status_code == 200, done.json
    assert done.json["state"] == "approved" and done.json["steps"][0]["comment"] == "Good news"
    assert amount_of(held) == Decimal("5000")
    again = maria.post(f"/api/v1/approvals/{held.id}/reject", json={"comment": "late"})
    assert again.status_code == 409 and again.json["error"]["code"] == "changed"
    # The trail: the request's history and the security log.
    assert [(h.old_value, h.new_value) for h in FieldHistory.select().where(
        FieldHistory.table == "approval_request").order_by(FieldHistory.id)] == [
        (None, "pending"), ("pending", "approved")]
    assert {e.kind for e in SecurityEvent.select()} >= {"approval_requested", "approval_approved"}


def test_an_administrator_or_someone_above_the_approver_may_decide(app, team, held):
    admin = make_user(is_admin=True)
    assert approvals.may_decide(admin.id, held)
    assert not approvals.may_decide(team["bob"].id, held)
    response = api_client(app, admin).post(f"/api/v1/approvals/{held.id}/reject", json={"comment": "No"})
    assert response.status_code == 200 and response.json["decided_by_id"] == admin.id
    assert amount_of(held) == Decimal("1000")


def test_rejecting_needs_a_comment_in_the_users_language(app, team, held):
    maria = api_client(app, team["maria"])
    refused = maria.post(f"/api/v1/approvals/{held.id}/reject?lang=vi", json={})
    assert refused.status_code == 422 and list(refused.json["error"]["fields"]) == ["comment"]
    assert refused.json["error"]["fields"]["comment"] != ["Say why the change is rejected."]
    assert ApprovalRequest.get_by_id(held.id).state == "pending"
    assert maria.post(f"/api/v1/approvals/{held.id}/reject", json={"comment": "x" * 2001}).status_code == 422


def test_two_deciders_at_the_same_moment_one_wins(app, team, held):
    admin = make_user(is_admin=True)
    clients = [(api_client(app, team["maria"]), "approve"), (api_client(app, admin), "reject")]
    start = threading.Barrier(2)
    answers = []

    def decide(client, action):
        with app.app_context():
            start.wait(timeout=10)
            answers.append((action, client.post(f"/api/v1/approvals/{held.id}/{action}",
                                                json={"comment": "Decided"}).status_code))

    workers = [threading.Thread(target=decide, args=pair) for pair in clients]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(status for _, status in answers) == [200, 409]
    [winner] = [action for action, status in answers if status == 200]
    request = ApprovalRequest.get_by_id(held.id)
    assert request.state == {"approve": "approved", "reject": "rejected"}[winner]
    assert amount_of(held) == (Decimal("5000") if winner == "approve" else Decimal("1000"))
    assert [s.state for s in approvals.steps(request)] == [request.state]


def test_a_stale_request_cannot_be_approved(app, team, held):
    from crm_core.records import update_record

    update_record(Opportunity.get_by_id(held.record_id), {"amount": Decimal("1200")}, actor_id=team["maria"].id)
    stale = api_client(app, team["maria"]).post(f"/api/v1/approvals/{held.id}/approve", json={})
    assert stale.status_code == 409 and stale.json["error"]["code"] == "stale"
    assert amount_of(held) == Decimal("1200")


def test_the_requester_withdraws_and_nobody_else(app, team, held):
    maria, rita = api_client(app, team["maria"]), api_client(app, team["rita"])
    assert maria.post(f"/api/v1/approvals/{held.id}/cancel").status_code == 403
    withdrawn = rita.post(f"/api/v1/approvals/{held.id}/cancel")
    assert withdrawn.status_code == 200 and withdrawn.json["state"] == "cancelled"
    assert [s["state"] for s in withdrawn.json["steps"]] == ["skipped"]
    assert rita.post(f"/api/v1/approvals/{held.id}/cancel").status_code == 409
    assert maria.post(f"/api/v1/approvals/{held.id}/approve", json={}).status_code == 409
    assert amount_of(held) == Decimal("1000")


def test_the_policy_is_for_administrators_with_its_version(app, team):
    admin, rep = api_client(app), api_client(app, team["rita"])
    assert rep.get(f"/api/v1/approvals/policies/{KIND}").status_code == 403
    assert admin.get("/api/v1/approvals/policies/nothing").status_code == 404
    shown = admin.get(f"/api/v1/approvals/policies/{KIND}")
    assert shown.status_code == 200 and shown.json["active"] is True and shown.json["levels"] == 1
    assert shown.json["settings"]["amount_percent"] == 20 and shown.headers["ETag"] == '"1"'
    assert admin.patch(f"/api/v1/approvals/policies/{KIND}", json={"levels": 2}).status_code == 428
    assert admin.patch(f"/api/v1/approvals/policies/{KIND}", json={"levels": 2},
                       headers={"If-Match": '"0"'}).status_code == 412
    bad = admin.patch(f"/api/v1/approvals/policies/{KIND}", json={"settings": {"close_date_days": -3}},
                      headers={"If-Match": '"1"'})
    assert bad.status_code == 422 and list(bad.json["error"]["fields"]) == ["close_date_days"]
    saved = admin.patch(f"/api/v1/approvals/policies/{KIND}",
                        json={"levels": 2, "settings": {"close_date_days": 10, "amount_percent": None}},
                        headers={"If-Match": '"1"'})
    assert saved.status_code == 200 and saved.headers["ETag"] == '"2"'
    assert (saved.json["levels"], saved.json["settings"]["close_date_days"],
            saved.json["settings"]["amount_percent"]) == (2, 10, None)
    assert SecurityEvent.select().where(SecurityEvent.kind == "approval_policy_changed").count() == 2


def test_the_inbox_page_decides_with_csrf_and_counts_in_the_menu(app, team, held):
    browser = signed_in(app, team["maria"])
    html, token = page_and_token(browser, "/approvals")
    assert "Approvals (1)" in html and "Warehouse racks" in html and "$5,000.00" in html
    refused = browser.post(f"/approvals/{held.id}/decide", data={"action": "approve", "version": held.version})
    assert refused.status_code == 400 and amount_of(held) == Decimal("1000")  # no CSRF token
    empty = browser.post(f"/approvals/{held.id}/decide", data={"action": "reject", "csrf_token": token,
                                                               "version": held.version})
    assert empty.status_code == 422 and "Say why the change is rejected." in empty.get_data(as_text=True)
    done = browser.post(f"/approvals/{held.id}/decide", data={"action": "approve", "csrf_token": token,
                                                              "version": held.version, "next": "/approvals"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/approvals")
    assert amount_of(held) == Decimal("5000")
    html = browser.get("/approvals").get_data(as_text=True)
    assert "Approvals (1)" not in html and "No approval requests here." in html
    assert "Warehouse racks" in browser.get("/approvals?box=all").get_data(as_text=True)


def test_pages_show_nothing_of_records_the_reader_cannot_see(app, team, held):
    browser = signed_in(app, team["bob"])
    for box in ("decide", "mine", "all"):
        assert "Warehouse racks" not in browser.get(f"/approvals?box={box}").get_data(as_text=True)
    assert browser.get(f"/approvals/{held.id}").status_code == 404
    _, token = page_and_token(browser, "/approvals")
    assert browser.post(f"/approvals/{held.id}/decide", data={"action": "approve", "csrf_token": token}
                        ).status_code == 404
    rita = signed_in(app, team["rita"])
    _, token = page_and_token(rita, f"/approvals/{held.id}")
    assert rita.post(f"/approvals/{held.id}/decide", data={"action": "approve", "csrf_token": token}
                     ).status_code == 403
    assert rita.get(f"/approvals/policies/{KIND}").status_code == 403
    assert f"/approvals/policies/{KIND}" not in rita.get("/approvals").get_data(as_text=True)
    assert amount_of(held) == Decimal("1000")


def test_the_policy_page_saves_and_shows_errors_by_field(app, team):
    admin = make_user("root@example.com", "Root", is_admin=True)
    browser = signed_in(app, admin)
    assert f"/approvals/policies/{KIND}" in browser.get("/approvals").get_data(as_text=True)
    html, token = page_and_token(browser, f"/approvals/policies/{KIND}")
    assert "Hold a move into a won stage" in html
    bad = browser.post(f"/approvals/policies/{KIND}", data={"csrf_token": token, "version": "1", "active": "on",
                                                            "levels": "1", "amount_percent": "lots"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.get_data(as_text=True)
    saved = browser.post(f"/approvals/policies/{KIND}", data={
        "csrf_token": token, "version": "1", "levels": "2", "amount_percent": "15", "stage_won": "on"})
    assert saved.status_code == 302
    settings = approvals.settings_of(KIND)
    assert (settings["active"], settings["levels"], settings["amount_percent"], settings["stage_lost"]) == (
        False, 2, 15, False)


@pytest.fixture
def mailing_app(app_factory, smtp):  # noqa: F811
    application = app_factory(CRM_SMTP_URL=smtp.bare_url, CRM_BASE_URL="https://crm.example.com",
                              CRM_MAIL_FROM="crm@example.com")
    with application.app_context():
        yield application


def test_the_approver_and_the_requester_are_emailed(mailing_app, smtp):  # noqa: F811
    team = make_sales_team()
    approvals.set_policy(KIND, {"active": True})
    deal = new_deal(team["rita"])
    opps.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=team["rita"].id)
    [(to, message)] = smtp.messages  # sent by the job queued after the commit
    assert to == ["maria@example.com"] and message["Subject"] == "A change waits for your approval."
    body = message.get_content()
    assert "Warehouse racks" in body and "https://crm.example.com/approvals" in body and "By Rita." in body
    request = approvals.pending_of("opportunity", deal.id)[0]
    approvals.decide(request, team["maria"].id, False, "Not this quarter")
    assert len(smtp.messages) == 2
    to, message = smtp.messages[1]
    assert to == ["rita@example.com"] and message["Subject"] == "Your change was rejected."
    assert Notification.select().where(Notification.email == "sent").count() == 2


# -- the hooks ----------------------------------------------------------------------------------

@pytest.mark.crm_plugins("notes")
def test_hook_crm_register_approval_kinds(app_factory, register_plugin):
    applied = []

    def crm_register_approval_kinds(app):
        return [ApprovalKind("discounts.big_discount", "account", "Big discount",
                             apply=lambda record, proposed, actor_id: applied.append((record.id, proposed)),
                             current=lambda record, fields: {f: getattr(record, f) for f in fields},
                             default_settings={"percent": 10})]

    register_plugin(plugin_module("discounts", crm_register_approval_kinds))
    app = app_factory()
    with app.app_context():
        people = make_sales_team()
        account = accounts.create_account({"name": "Minh An", "industry": "Retail"}, actor_id=people["rita"].id)
        assert approvals.settings_of("discounts.big_discount") == {"levels": 1, "percent": 10, "active": False}
        request = approvals.request_approval(
            "discounts.big_discount", account, {"industry": "Mining"}, {"industry": "Retail"},
            people["rita"].id, approvals.approver_chain(account.owner_id, 1, people["rita"].id))
        assert [s.approver_id for s in approvals.steps(request)] == [people["maria"].id]
        assert api_client(app, people["bob"]).get("/api/v1/approvals").json["total"] == 0
        approvals.decide(request, people["maria"].id, True)
        assert applied == [(account.id, {"industry": "Mining"})]
    # A plugin's kinds carry its name: another one stops the start.
    def bad_kinds(app):
        return [ApprovalKind("opportunity_change", "account", "x", apply=print, current=print)]

    bad_kinds.__name__ = "crm_register_approval_kinds"
    register_plugin(plugin_module("bad", bad_kinds))
    with pytest.raises(RegistryError):
        app_factory()


@pytest.mark.crm_plugins("notes")
def test_hook_crm_record_ext(app_factory, register_plugin):
    calls = []

    def crm_record_ext(app, actor, object, records):
        calls.append((object, [r.id for r in records], getattr(actor, "id", None)))
        if object != "account":
            return {}
        return {"scores": {r.id: {"score": len(r.name)} for r in records if r.name != "Skip"}}

    register_plugin(plugin_module("scores", crm_record_ext))
    app = app_factory()
    with app.app_context():
        client = api_client(app)
        first = client.post("/api/v1/accounts", json={"name": "Minh An"}).json
        assert first["ext"] == {"scores": {"score": 7}}
        client.post("/api/v1/accounts", json={"name": "Skip"})
        listed = client.get("/api/v1/accounts?sort=name").json["items"]
        assert [(a["name"], a["ext"]) for a in listed] == [("Minh An", {"scores": {"score": 7}}), ("Skip", {})]
        # A page of records is one call.
        assert calls[-1] == ("account", [listed[0]["id"], listed[1]["id"]], client.user.id)
        assert client.get(f"/api/v1/accounts/{first['id']}").json["ext"] == {"scores": {"score": 7}}
        # The part cannot be written.
        assert client.patch(f"/api/v1/accounts/{first['id']}", json={"ext": {}},
                            headers={"If-Match": '"1"'}).status_code == 422


def test_the_notification_text_of_each_approval_step(app):
    g.pop("_crm_access", None)
    for kind, text in (("approval_requested", "A change waits for your approval."),
                       ("approval_approved", "Your change was approved."),
                       ("approval_rejected", "Your change was rejected.")):
        assert str(notifications.sentence(Notification(kind=kind, object="opportunity", count=1))) == text
