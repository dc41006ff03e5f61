"""Field history and the security log; no lost update under concurrent writers."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from crm_core.audit.models import FieldHistory, SecurityEvent
from crm_core.audit.services import history_of
from crm_core.errors import VersionConflict
from crm_core.records import create_record, update_record
from crm_core.testing import api_client, browser_login, make_user

pytestmark = pytest.mark.crm_plugins("notes")


@pytest.fixture
def Note(app):
    from crm_notes.models import Note

    return Note


def test_one_history_row_per_changed_field(app, Note):
    note = create_record(Note, title="a", body="b")
    update_record(note, {"title": "A", "body": "b"}, actor_id=7)
    rows = history_of(Note, note.id)
    assert [(r.field, r.old_value, r.new_value, r.changed_by_id) for r in rows] == [("title", "a", "A", 7)]


def test_no_history_for_a_write_that_changes_nothing(app, Note):
    note = create_record(Note, title="a")
    update_record(note, {"title": "a"})
    assert history_of(Note, note.id) == []


def test_a_refused_write_leaves_no_history(app, Note):
    note = create_record(Note, title="a")
    stale = Note.get_by_id(note.id)
    update_record(note, {"title": "b"})
    with pytest.raises(VersionConflict):
        update_record(stale, {"title": "c"})
    assert [r.new_value for r in history_of(Note, note.id)] == ["b"]


def test_history_through_the_api_carries_the_request_id(app, client, Note):
    created = client.post("/api/v1/plugins/notes/notes", json={"title": "x", "amount": "5", "currency": "EUR"})
    response = client.patch(f"/api/v1/plugins/notes/notes/{created.json['id']}",
                            json={"amount": "7.25"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200
    row = FieldHistory.get(FieldHistory.record_id == created.json["id"])
    assert (row.field, row.old_value, row.new_value) == ("amount", "5", "7.25")
    assert row.request_id == response.headers["X-Request-ID"]
    assert row.changed_by_id is None or row.changed_by_id >= 0


def test_history_can_be_limited_to_readable_fields(app, Note):
    note = create_record(Note, title="a", body="b")
    update_record(note, {"title": "A", "body": "B"})
    assert {r.field for r in history_of(Note, note.id, readable_fields={"title"})} == {"title"}


def test_security_log_records_sign_ins_failures_and_denials(app):
    user = make_user("log@example.com")
    browser = app.test_client()
    browser_login(browser, user.email, "wrong wrong wrong")
    browser_login(browser, user.email)
    browser.get("/users")  # not an administrator: 403
    kinds = [e.kind for e in SecurityEvent.select().order_by(SecurityEvent.id)]
    assert kinds == ["sign_in_failed", "sign_in", "denied"]
    denied = SecurityEvent.get(SecurityEvent.kind == "denied")
    assert denied.actor_id == user.id and denied.subject == "GET /users"


def test_concurrent_writers_through_the_api_lose_no_update(app_factory):
    """8 writers x 250 read-modify-write updates of one record: every increment lands once."""
    writers, updates = 8, 250
    app = app_factory(CRM_DATABASE_POOL_SIZE=writers + 4)
    from crm_notes.models import Note

    with app.app_context():
        note = create_record(Note, title="0")
    clients = [api_client(app) for _ in range(writers)]
    url = f"/api/v1/plugins/notes/notes/{note.id}"
    conflicts = []

    def write(client):
        done, current = 0, client.get(url)
        while done < updates:
            value = int(current.json["title"]) + 1
            response = client.patch(url, json={"title": str(value)},
                                    headers={"If-Match": current.headers["ETag"]})
            if response.status_code == 200:
                done, current = done + 1, response  # the answer carries the new version
            else:
                assert response.status_code == 412, response.json
                conflicts.append(1)
                current = client.get(url)
        return done

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(write, clients))
    assert results == [updates] * writers
    with app.app_context():
        stored = Note.get_by_id(note.id)
        assert stored.title == str(writers * updates)
        assert stored.version == writers * updates + 1
        rows = list(FieldHistory.select().where((FieldHistory.table == "notes_note")
                                                & (FieldHistory.record_id == note.id)))
    assert len(rows) == writers * updates
    assert sorted(int(r.new_value) for r in rows) == list(range(1, writers * updates + 1))
