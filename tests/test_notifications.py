"""The notification centre: in-app notices for their user only, marked read, counted in the
page header; emails sent by the background job through a real SMTP server (aiosmtpd on
loopback), in the recipient's language, naming only what the recipient may read."""

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller
from flask import g

from crm_core.assignment import services as assignment
from crm_core.leads import services as leads
from crm_core.notifications import services as notifications
from crm_core.notifications.models import Notification
from crm_core.org import services as org
from crm_core.testing import api_client, free_port, make_user, page_and_token, signed_in


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content,
                                                                          policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://crm:secret@127.0.0.1:{controller.port}"
    inbox.bare_url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


@pytest.fixture
def mailing_app(app_factory, smtp):
    application = app_factory(CRM_SMTP_URL=smtp.bare_url, CRM_BASE_URL="https://crm.example.com",
                              CRM_MAIL_FROM="crm@example.com")
    with application.app_context():
        yield application


def people():
    boss = make_user("boss@example.com", "Boss")
    lan = make_user("lan@example.com", "Lan\r\nBcc: victim@example.com", locale="vi")
    ola = make_user("ola@example.com", "Ola", locale="pl")
    org.set_roles(boss, ["sales_manager"])
    for user in (lan, ola):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=boss.id)
    for user in (boss, lan, ola):
        org.place_user(user, sales.id)
    g.pop("_crm_access", None)
    return boss, lan, ola


def test_an_assignment_notifies_the_new_owner_in_the_app(app):
    boss, lan, ola = people()
    assignment.create_rule("lead", {"name": "All", "owner_id": lan.id})
    made = leads.create_lead({"last_name": "Trần", "company": "Sông Hồng"}, actor_id=boss.id)
    notice = Notification.get()
    assert (notice.user_id, notice.object, notice.record_id, notice.email) == (lan.id, "lead", made.id, "none")
    mine = api_client(app, lan).get("/api/v1/notifications?lang=pl")
    assert mine.json["unread"] == 1 and mine.json["items"][0]["records"] == [
        {"id": made.id, "label": "Trần · Sông Hồng"}]
    assert mine.json["items"][0]["text"] == "Przydzielono Ci 1 potencjalnego klienta."
    # Somebody else sees none of it, and cannot mark it read.
    other = api_client(app, ola)
    assert other.get("/api/v1/notifications").json == {"items": [], "total": 0, "unread": 0, "page": 1,
                                                       "per_page": 50}
    assert other.post("/api/v1/notifications/read", json={"ids": [notice.id]}).json["marked"] == 0
    assert Notification.get_by_id(notice.id).read_at is None
    client = api_client(app, lan)
    assert client.post("/api/v1/notifications/read", json={"ids": [notice.id]}).json == {"marked": 1, "unread": 0}
    assert client.get("/api/v1/notifications?unread=true").json["total"] == 0


def test_a_notice_names_only_records_its_reader_may_still_read(app):
    boss, lan, ola = people()
    made = leads.create_lead({"last_name": "Trần", "owner_id": lan.id}, actor_id=boss.id)
    notice = notifications.notify_assigned(ola.id, "lead", [made.id], actor_id=boss.id)
    g.pop("_crm_access", None)
    item = api_client(app, ola).get("/api/v1/notifications").json["items"][0]
    assert item["count"] == 1 and item["records"] == []
    assert notifications.visible_records(notice, ola.id) == []


def test_the_header_shows_the_unread_count_and_the_page_marks_read(app):
    boss, lan, ola = people()
    assignment.create_rule("lead", {"name": "All", "owner_id": ola.id})
    for _ in range(2):
        leads.create_lead({"last_name": "Kowalski"}, actor_id=boss.id)
    browser = signed_in(app, ola)
    home = browser.get("/").get_data(as_text=True)
    assert 'class="notification-count"' in home and ">2<" in home
    html, token = page_and_token(browser, "/notifications?lang=pl")
    assert "2 leady zostały przypisane do Ciebie." in html or "Kowalski" in html
    assert browser.post("/notifications/read", data={"csrf_token": token}).status_code == 302
    assert notifications.unread_count(ola.id) == 0
    assert app.test_client().get("/notifications").status_code in (302, 401)


def test_emails_go_through_smtp_in_the_recipients_language_without_header_injection(mailing_app, smtp):
    boss, lan, ola = people()
    group = assignment.create_group("Pair", [{"user_id": lan.id}, {"user_id": ola.id}])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    first = leads.create_lead({"last_name": "Trần", "company": "Sông Hồng"}, actor_id=boss.id)
    leads.create_lead({"last_name": "Nowak", "company": "Wisła"}, actor_id=boss.id)
    assert [n.email for n in Notification.select().order_by(Notification.id)] == ["sent", "sent"]
    assert len(smtp.messages) == 2
    by_rcpt = {tuple(rcpts): message for rcpts, message in smtp.messages}
    vietnamese = by_rcpt[("lan@example.com",)]
    assert "\n" not in vietnamese["To"] and "Bcc" not in vietnamese.keys()
    assert vietnamese["From"] == "crm@example.com" and vietnamese["Content-Language"] == "vi"
    body = vietnamese.get_content()
    assert "Trần · Sông Hồng" in body and f"https://crm.example.com/leads/{first.id}" in body
    assert "Wisła" not in body
    assert vietnamese["Subject"] != "1 lead has been assigned to you."  # translated
    polish = by_rcpt[("ola@example.com",)]
    assert "Wisła" in polish.get_content() and polish["Content-Language"] == "pl"


def test_an_email_names_only_what_the_recipient_may_read(mailing_app, smtp):
    boss, lan, ola = people()
    org.set_field_rules(org.role_by_key("sales_rep"), {("lead", "company"): "hidden"})
    g.pop("_crm_access", None)
    assignment.create_rule("lead", {"name": "All", "owner_id": lan.id})
    leads.create_lead({"last_name": "Trần", "company": "Bí mật"}, actor_id=boss.id)
    (_, message), = smtp.messages
    assert "Bí mật" not in message.get_content() and "Trần" in message.get_content()


def test_a_failed_delivery_stays_pending_for_the_next_run(app_factory, smtp):
    application = app_factory(CRM_SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    with application.app_context():
        boss, lan, ola = people()
        assignment.create_rule("lead", {"name": "All", "owner_id": lan.id})
        leads.create_lead({"last_name": "Trần"}, actor_id=boss.id)
        notice = Notification.get()
        assert (notice.email, notice.email_attempts) == ("pending", 1)
        application.config["CRM_SMTP_URL"] = smtp.bare_url
        assert notifications.send_pending_emails() == 1
        assert Notification.get_by_id(notice.id).email == "sent" and len(smtp.messages) == 1
        assert notifications.send_pending_emails() == 0  # sent once only


def test_the_request_only_queues_the_email_the_worker_sends_it(app_factory, smtp):
    application = app_factory(CRM_SMTP_URL=smtp.bare_url, CRM_JOBS_IMMEDIATE=False)
    with application.app_context():
        boss, lan, ola = people()
        assignment.create_rule("lead", {"name": "All", "owner_id": ola.id})
        response = api_client(application, boss).post("/api/v1/leads", json={"last_name": "Nowak"})
        assert response.status_code == 201
        assert smtp.messages == [] and Notification.get().email == "pending"
        jobs = application.extensions["crm_jobs"]
        assert len(jobs.huey) >= 1  # queued for `crm worker`
        task = jobs.huey.dequeue()
        jobs.huey.execute(task)
        assert Notification.get().email == "sent" and len(smtp.messages) == 1
