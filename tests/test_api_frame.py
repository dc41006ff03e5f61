"""The API frame, seen from outside: errors, lists, ETags, money, headers, health, OpenAPI.

Everything goes through HTTP (the Flask test client) against the core and the
``notes`` fixture plugin, whose API is a complete resource built on the frame.
``client`` sends an administrator's API token; ``anonymous`` sends nothing.
Tests marked ``xfail(strict=True, reason="bug: ...")`` state the correct
behaviour of a known bug; they turn into failures (XPASS) once it is fixed, so
the mark is removed then.
"""

import json
import os
from decimal import Decimal

import pytest
from flask import Blueprint

from crm_core.testing import is_postgres

pytestmark = pytest.mark.crm_plugins("notes")

NOTES = "/api/v1/plugins/notes/notes"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy")


# The session's database (crm_core.testing uses CRM_DATABASE_URL the same way).
ON_POSTGRES = is_postgres(os.environ.get("CRM_DATABASE_URL") or "sqlite://")


# -- helpers -----------------------------------------------------------------------

def assert_error(response, status, code):
    """``response`` is the JSON error envelope with ``status`` and ``code``; returns its fields."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["fields"], dict)
    return error["fields"]


def assert_html_error(response, status):
    assert response.status_code == status
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert text.lstrip().lower().startswith("<!doctype html")
    assert str(status) in text
    with pytest.raises(ValueError):
        json.loads(text)
    return text


def sign_in(app):
    """An administrator's API token for ``app`` (no password: no slow hashing per test)."""
    from crm_core.users.services import create_user, find_by_email, issue_token

    with app.app_context():
        user = (find_by_email("frame-tests@example.com")
                or create_user("frame-tests@example.com", "Frame Tests", is_admin=True))
        raw, _row = issue_token(user, "frame tests")
    return raw


def authorized_client(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {sign_in(app)}"
    return client


@pytest.fixture
def client(app):
    return authorized_client(app)


@pytest.fixture
def anonymous(app):
    return app.test_client()


def make_note(client, **values):
    values.setdefault("title", "note")
    response = client.post(NOTES, json=values)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def read_note(client, note_id):
    response = client.get(f"{NOTES}/{note_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def list_notes(client, query=""):
    response = client.get(f"{NOTES}{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def patch(client, note_id, body, if_match=None):
    headers = {} if if_match is None else {"If-Match": if_match}
    return client.patch(f"{NOTES}/{note_id}", json=body, headers=headers)


@pytest.fixture
def boom_app(app):
    """The app with two routes that raise: one under /api/, one page (sign in to reach them)."""
    blueprint = Blueprint("test_boom", __name__)

    @blueprint.get("/api/v1/test-boom")
    def api_boom():
        raise RuntimeError("secret-detail-7f3a in the API")

    @blueprint.get("/test-boom")
    def page_boom():
        raise RuntimeError("secret-detail-7f3a on a page")

    app.register_blueprint(blueprint)
    return app


# -- 401 ---------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer crm_not-a-real-token", "Basic eDp5"])
def test_reading_the_api_without_a_valid_token_is_a_401(anonymous, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = anonymous.get(NOTES, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("authorization", [None, "Bearer crm_not-a-real-token"])
def test_writing_to_the_api_without_a_valid_token_is_a_401(anonymous, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = anonymous.post(NOTES, json={"title": "x"}, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_public_answers_need_no_token(anonymous):
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/api/v1/openapi.json").status_code == 200
    assert anonymous.get("/static/crm.css").status_code == 200
    assert_error(anonymous.get("/api/v1/nope"), 404, "not_found")


# -- 400: the query string ---------------------------------------------------------

def test_unknown_query_parameter_is_a_400_naming_it(client):
    fields = assert_error(client.get(f"{NOTES}?colour=red"), 400, "bad_request")
    assert "colour" in fields


def test_bad_sort_key_is_a_400_naming_the_allowed_keys(client):
    fields = assert_error(client.get(f"{NOTES}?sort=body"), 400, "bad_request")
    message = " ".join(fields["sort"])
    for key in ("id", "title", "created_at", "-id", "-title", "-created_at"):
        assert key in message


@pytest.mark.parametrize("query", ["?page=0", "?page=-1", "?page=x", "?per_page=0", "?per_page=201",
                                   "?per_page=1000", "?per_page=x"])
def test_page_and_per_page_out_of_range_are_a_400(client, query):
    name = query[1:].split("=")[0]
    fields = assert_error(client.get(NOTES + query), 400, "bad_request")
    assert name in fields


@pytest.mark.parametrize("name", ["body", "amount", "id", "version", "deleted_at", "created_by_id"])
def test_filters_only_on_allow_listed_fields(client, name):
    make_note(client, title="a", body="x")
    fields = assert_error(client.get(f"{NOTES}?{name}=x"), 400, "bad_request")
    assert name in fields


# -- 404, 405 ----------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/", "/api/v1/plugins/notes/nope",
                                  "/api/v2/notes", "/api/v1/plugins/notes/notes/abc"])
def test_unknown_api_path_is_a_404_envelope(client, path):
    fields = assert_error(client.get(path), 404, "not_found")
    assert fields == {}


def test_unknown_and_deleted_ids_are_a_404_envelope(client):
    assert_error(client.get(f"{NOTES}/999999"), 404, "not_found")
    note = make_note(client)
    assert client.delete(f"{NOTES}/{note['id']}").status_code == 204
    assert_error(client.get(f"{NOTES}/{note['id']}"), 404, "not_found")
    assert_error(patch(client, note["id"], {"title": "x"}, f'"{note["version"] + 1}"'), 404,
                 "not_found")
    assert_error(client.delete(f"{NOTES}/{note['id']}"), 404, "not_found")
    assert list_notes(client)["total"] == 0


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("put", NOTES, {"GET", "HEAD", "OPTIONS", "POST"}),
    ("delete", NOTES, {"GET", "HEAD", "OPTIONS", "POST"}),
    ("put", NOTES + "/1", {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
    ("post", NOTES + "/1", {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
    ("post", "/api/v1/meta", {"GET", "HEAD", "OPTIONS"}),
])
def test_405_is_an_envelope_with_the_allow_header(client, method, path, allowed):
    response = getattr(client, method)(path, json={})
    assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- request bodies: 400, 415, 422, 413 --------------------------------------------

def test_malformed_json_is_a_400(client):
    response = client.post(NOTES, data='{"title": ', content_type="application/json")
    assert_error(response, 400, "bad_request")
    assert list_notes(client)["total"] == 0


@pytest.mark.parametrize(("data", "content_type"), [
    ('{"title": "looks like json"}', "text/plain"),
    ("title=form", "application/x-www-form-urlencoded"),
    (b"\x89PNG\r\n", "image/png"),
])
def test_a_body_that_is_not_json_is_a_415(client, data, content_type):
    response = client.post(NOTES, data=data, content_type=content_type)
    assert response.status_code in (400, 415)
    assert_error(response, response.status_code,
                 "unsupported_media_type" if response.status_code == 415 else "bad_request")
    assert list_notes(client)["total"] == 0


def test_missing_required_field_is_a_422_naming_it(client):
    fields = assert_error(client.post(NOTES, json={"body": "no title"}), 422, "validation_error")
    assert list(fields) == ["title"]


def test_unknown_body_field_is_a_422_naming_it(client):
    fields = assert_error(client.post(NOTES, json={"title": "t", "colour": "red"}), 422,
                          "validation_error")
    assert list(fields) == ["colour"]
    note = make_note(client)
    fields = assert_error(patch(client, note["id"], {"colour": "red"}, '"1"'), 422,
                          "validation_error")
    assert list(fields) == ["colour"]


@pytest.mark.parametrize("body", [{"version": 7}, {"id": 3},
                                  {"created_at": "2020-01-01T00:00:00Z"}])
def test_read_only_fields_cannot_be_written(client, body):
    note = make_note(client)
    assert_error(client.post(NOTES, json={"title": "t", **body}), 422, "validation_error")
    assert_error(patch(client, note["id"], body, '"1"'), 422, "validation_error")
    assert read_note(client, note["id"]).get_json() == note


def test_body_larger_than_max_content_length_is_a_413(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    client = authorized_client(app)
    response = client.post(NOTES, json={"title": "x" * 150, "body": "y" * 2000})
    assert_error(response, 413, "payload_too_large")
    for name in SECURITY_HEADERS:
        assert name in response.headers
    assert list_notes(client)["total"] == 0
    assert client.post(NOTES, json={"title": "small"}).status_code == 201


# -- 428 / 412: optimistic locking -------------------------------------------------

@pytest.mark.parametrize("if_match", [None, "*", " "])
def test_patch_without_a_version_is_a_428(client, if_match):
    note = make_note(client, title="before")
    response = patch(client, note["id"], {"title": "after"}, if_match)
    assert_error(response, 428, "precondition_required")
    again = read_note(client, note["id"])
    assert again.get_json()["title"] == "before"
    assert again.headers["ETag"] == '"1"'


def test_stale_if_match_is_a_412_and_writes_nothing(client):
    note = make_note(client, title="first")
    assert patch(client, note["id"], {"title": "second"}, '"1"').status_code == 200
    response = patch(client, note["id"], {"title": "third", "body": "lost"}, '"1"')
    fields = assert_error(response, 412, "precondition_failed")
    assert "version" in fields
    assert response.headers["ETag"] == '"2"'
    again = read_note(client, note["id"])
    assert again.headers["ETag"] == '"2"'
    assert again.get_json()["title"] == "second"
    assert again.get_json()["body"] == ""
    assert again.get_json()["version"] == 2


def test_if_match_in_the_future_is_a_412(client):
    note = make_note(client, title="first")
    assert_error(patch(client, note["id"], {"title": "x"}, '"2"'), 412, "precondition_failed")
    assert_error(patch(client, note["id"], {"title": "x"}, '"not-a-version"'), 412,
                 "precondition_failed")
    assert read_note(client, note["id"]).get_json()["title"] == "first"


# -- 500 ---------------------------------------------------------------------------

def test_an_exception_in_an_api_view_is_a_500_envelope_without_details(boom_app, caplog):
    client = authorized_client(boom_app)
    with caplog.at_level("ERROR", logger="crm.http"):
        response = client.get("/api/v1/test-boom")
    fields = assert_error(response, 500, "internal_error")
    assert fields == {}
    text = response.get_data(as_text=True)
    for secret in ("Traceback", "RuntimeError", "secret-detail-7f3a", 'File "'):
        assert secret not in text
    for name in SECURITY_HEADERS:
        assert name in response.headers
    # ... but the operator sees it in the log.
    assert "secret-detail-7f3a" in caplog.text


def test_an_exception_in_a_page_is_a_500_page_without_details(boom_app):
    response = authorized_client(boom_app).get("/test-boom")
    text = assert_html_error(response, 500)
    for secret in ("Traceback", "RuntimeError", "secret-detail-7f3a", 'File "'):
        assert secret not in text
    for name in SECURITY_HEADERS:
        assert name in response.headers


# -- pages get pages ---------------------------------------------------------------

def test_unknown_page_is_an_html_404(client):
    assert_html_error(client.get("/no/such/page"), 404)
    assert_html_error(client.get("/apiary"), 404)  # only /api/ is the API


def test_wrong_method_on_a_page_is_an_html_405_with_allow(client):
    response = client.post("/healthz")
    assert_html_error(response, 405)
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}


# -- lists ---------------------------------------------------------------------------

def test_pagination_total_page_per_page(client):
    ids = [make_note(client, title=f"n{i}")["id"] for i in range(7)]
    first = list_notes(client, "?per_page=3")
    assert (first["total"], first["page"], first["per_page"]) == (7, 1, 3)
    assert [n["id"] for n in first["items"]] == ids[:3]
    third = list_notes(client, "?per_page=3&page=3")
    assert (third["total"], third["page"], third["per_page"]) == (7, 3, 3)
    assert [n["id"] for n in third["items"]] == ids[6:]
    beyond = list_notes(client, "?per_page=3&page=4")
    assert beyond == {"items": [], "total": 7, "page": 4, "per_page": 3}
    far = list_notes(client, "?page=1000")
    assert far["items"] == [] and far["total"] == 7
    default = list_notes(client)
    assert (default["total"], default["page"], default["per_page"]) == (7, 1, 50)
    assert list_notes(client, "?per_page=200")["per_page"] == 200


def test_per_page_is_capped_at_200(client):
    fields = assert_error(client.get(f"{NOTES}?per_page=201"), 400, "bad_request")
    assert "per_page" in fields
    assert list_notes(client, "?per_page=200")["per_page"] == 200


def test_empty_list(client):
    assert list_notes(client) == {"items": [], "total": 0, "page": 1, "per_page": 50}


def test_sort_ascending_and_descending_with_a_stable_tiebreak(client):
    titles = ["b", "a", "c", "a", "b", "a"]
    ids = [make_note(client, title=t)["id"] for t in titles]
    ascending = [(t, i) for t, i in sorted(zip(titles, ids))]  # title, then id
    got = [(n["title"], n["id"]) for n in list_notes(client, "?sort=title")["items"]]
    assert got == ascending
    got = [(n["title"], n["id"]) for n in list_notes(client, "?sort=-title")["items"]]
    assert got == ascending[::-1]
    for sort in ("title", "-title", "created_at", "-created_at"):
        whole = [n["id"] for n in list_notes(client, f"?sort={sort}")["items"]]
        paged = []
        for page in (1, 2, 3):
            items = list_notes(client, f"?sort={sort}&per_page=2&page={page}")["items"]
            paged += [n["id"] for n in items]
        assert paged == whole, sort
        assert sorted(whole) == sorted(ids)
    assert [n["id"] for n in list_notes(client, "?sort=-id")["items"]] == ids[::-1]
    assert [n["id"] for n in list_notes(client, "?sort=id")["items"]] == ids


def test_filters_on_allow_listed_fields(client):
    a = make_note(client, title="alpha", amount="1", currency="EUR")
    make_note(client, title="beta", amount="2", currency="USD")
    c = make_note(client, title="alpha", amount="3", currency="EUR")
    page = list_notes(client, "?title=alpha")
    assert page["total"] == 2 and [n["id"] for n in page["items"]] == [a["id"], c["id"]]
    page = list_notes(client, "?currency=EUR&sort=-id")
    assert [n["id"] for n in page["items"]] == [c["id"], a["id"]]
    assert list_notes(client, "?title=alpha&currency=USD")["total"] == 0
    assert list_notes(client, "?title=nobody")["total"] == 0


def test_lang_is_accepted_on_every_list(client):
    make_note(client)
    assert list_notes(client, "?lang=vi")["total"] == 1


@pytest.mark.parametrize("value", ["foo", "EURO", "ZZZ"])
def test_filter_with_a_value_that_is_not_a_currency_is_not_a_server_error(client, value):
    make_note(client, amount="1", currency="EUR")
    response = client.get(f"{NOTES}?currency={value}")
    if response.status_code == 400:
        assert "currency" in assert_error(response, 400, "bad_request")
    else:
        assert response.status_code == 200 and response.get_json()["total"] == 0


def test_a_huge_page_number_is_not_a_server_error(client):
    make_note(client)
    response = client.get(f"{NOTES}?page={10 ** 20}")
    if response.status_code == 400:
        assert "page" in assert_error(response, 400, "bad_request")
    else:
        assert response.status_code == 200 and response.get_json()["items"] == []


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_id_beyond_64_bits_is_a_404(client, method):
    make_note(client)
    response = getattr(client, method)(f"{NOTES}/{10 ** 20}", json={"title": "x"},
                                       headers={"If-Match": '"1"'})
    assert_error(response, 404, "not_found")


def test_a_nul_character_in_a_filter_is_not_a_server_error(client):
    make_note(client, title="ab")
    response = client.get(f"{NOTES}?title=a%00b")
    if response.status_code == 400:
        assert "title" in assert_error(response, 400, "bad_request")
    else:
        assert response.status_code == 200 and response.get_json()["total"] == 0


def test_a_nul_character_in_a_body_string_is_a_422(client):
    fields = assert_error(client.post(NOTES, json={"title": "a\x00b"}), 422, "validation_error")
    assert "title" in fields
    assert list_notes(client)["total"] == 0


# -- ETag and version ----------------------------------------------------------------

def test_etag_is_the_version_and_moves_by_one_per_real_change(client):
    note = make_note(client, title="one")
    assert note["version"] == 1
    first = read_note(client, note["id"])
    assert first.headers["ETag"] == '"1"' and first.get_json()["version"] == 1

    changed = patch(client, note["id"], {"title": "two", "body": "and a body"},
                    first.headers["ETag"])
    assert changed.status_code == 200
    assert changed.headers["ETag"] == '"2"' and changed.get_json()["version"] == 2
    assert changed.get_json()["title"] == "two"

    same = patch(client, note["id"], {"title": "two", "body": "and a body"}, '"2"')
    assert same.status_code == 200
    assert same.headers["ETag"] == '"2"' and same.get_json()["version"] == 2
    empty = patch(client, note["id"], {}, '"2"')
    assert empty.status_code == 200 and empty.headers["ETag"] == '"2"'

    again = patch(client, note["id"], {"body": "changed"}, '"2"')
    assert again.headers["ETag"] == '"3"' and again.get_json()["version"] == 3
    reread = read_note(client, note["id"])
    assert reread.headers["ETag"] == '"3"'
    assert reread.get_json() == again.get_json()
    assert reread.get_json()["updated_at"] >= reread.get_json()["created_at"]


def test_if_match_with_several_tags_matches_any(client):
    note = make_note(client)
    response = patch(client, note["id"], {"title": "x"}, '"7", "1"')
    assert response.status_code == 200 and response.headers["ETag"] == '"2"'


def test_a_no_op_patch_does_not_touch_updated_at(client):
    note = make_note(client, title="same")
    patch(client, note["id"], {"title": "same"}, '"1"')
    assert read_note(client, note["id"]).get_json()["updated_at"] == note["updated_at"]


# -- money ----------------------------------------------------------------------------

def test_money_round_trips_as_an_exact_decimal_string(client):
    note = make_note(client, title="dong", amount="1234.505", currency="VND")
    for body in (note, read_note(client, note["id"]).get_json(), list_notes(client)["items"][0]):
        assert isinstance(body["amount"], str)
        assert Decimal(body["amount"]) == Decimal("1234.505")
        assert body["currency"] == "VND"


@pytest.mark.parametrize("amount", [1234.50505, "1234.50505", 0.00001])
def test_an_amount_with_five_decimals_is_a_422_and_nothing_is_written(client, amount):
    response = client.post(NOTES, json={"title": "float", "amount": amount, "currency": "VND"})
    assert_error(response, 422, "validation_error")
    assert list_notes(client)["total"] == 0


def test_an_amount_with_five_decimals_names_the_amount_field(client):
    fields = assert_error(client.post(NOTES, json={"title": "t", "amount": "1.00001",
                                                   "currency": "EUR"}), 422, "validation_error")
    assert "amount" in fields


def test_an_amount_needs_a_currency_and_a_real_one(client):
    assert_error(client.post(NOTES, json={"title": "t", "amount": "1"}), 422, "validation_error")
    assert_error(client.post(NOTES, json={"title": "t", "amount": "1", "currency": "ZZZ"}), 422,
                 "validation_error")
    assert_error(client.post(NOTES, json={"title": "t", "amount": "NaN", "currency": "EUR"}), 422,
                 "validation_error")
    assert list_notes(client)["total"] == 0


@pytest.mark.parametrize("body", [{"currency": "ZZZ"}, {"amount": "5"},
                                  {"amount": "1.00001", "currency": "EUR"}])
def test_patch_with_invalid_money_is_a_422_and_writes_nothing(client, body):
    note = make_note(client)
    assert_error(patch(client, note["id"], body, '"1"'), 422, "validation_error")
    assert read_note(client, note["id"]).get_json() == note


def test_post_answers_with_what_a_read_returns(client):
    note = make_note(client, title="t", amount="9.9", currency="eur")
    assert note == read_note(client, note["id"]).get_json()


# -- security headers -------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/meta"),                    # JSON
    ("get", NOTES),                             # JSON list
    ("get", "/api/v1/openapi.json"),            # the document
    ("get", "/"),                               # HTML
    ("get", "/healthz"),                        # health JSON
    ("get", "/static/crm.css"),                 # static file
    ("get", "/api/v1/nope"),                    # JSON error
    ("get", "/no/such/page"),                   # HTML error
    ("put", NOTES),                             # 405
    ("get", f"{NOTES}?colour=1"),               # 400
])
def test_security_headers_on_every_kind_of_response(client, method, path):
    response = getattr(client, method)(path)
    headers = response.headers
    assert "default-src" in headers["Content-Security-Policy"]
    assert "frame-ancestors" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] in ("DENY", "SAMEORIGIN")
    assert headers["Referrer-Policy"]


@pytest.mark.parametrize("path", ["/", "/login", "/api/v1/meta", NOTES, "/static/crm.css",
                                  "/healthz", "/no/such/page"])
def test_security_headers_without_a_token(anonymous, path):
    headers = anonymous.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    for name in SECURITY_HEADERS:
        assert name in headers


def test_security_headers_on_a_500(boom_app):
    client = authorized_client(boom_app)
    for path in ("/api/v1/test-boom", "/test-boom"):
        response = client.get(path)
        assert response.status_code == 500
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        for name in SECURITY_HEADERS:
            assert name in response.headers


# -- /healthz ----------------------------------------------------------------------------

def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert "error" not in body


@pytest.fixture(params=["sqlite-file-is-a-directory", "postgresql-database-missing"])
def unreachable_database_url(request, tmp_path):
    if request.param.startswith("sqlite"):
        # Root ignores file modes, so "unreadable" is made by putting a directory where
        # the database file should be (after the app has created its folder).
        return "sqlite:///" + str(tmp_path / "gone" / "crm.sqlite3")
    return "postgresql://postgres@127.0.0.1:5432/crm_missing_3b9c1e0f7a"


def test_healthz_is_503_when_the_database_is_unreachable(app_factory, unreachable_database_url,
                                                        tmp_path):
    app = app_factory(migrate_schema=False, CRM_DATABASE_URL=unreachable_database_url)
    if unreachable_database_url.startswith("sqlite"):
        (tmp_path / "gone" / "crm.sqlite3").mkdir()
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert "error" not in body  # not the API envelope: load balancers read "status"
    for name in SECURITY_HEADERS:
        assert name in response.headers


# -- the OpenAPI document -------------------------------------------------------------

@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_openapi_document_is_valid_openapi_3(document):
    import jsonschema_rs
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    assert document["openapi"].startswith("3.0")
    validator = jsonschema_rs.Draft4Validator(OPENAPI_30)
    errors = [error.message for error in validator.iter_errors(document)]
    assert errors == []
    # Every $ref points at something.
    text = json.dumps(document)
    for ref in set(part.split('"')[0] for part in text.split('"$ref": "#/')[1:]):
        node = document
        for key in ref.split("/"):
            assert key in node, ref
            node = node[key]


def test_openapi_lists_meta_and_the_notes_operations(document):
    paths = document["paths"]
    assert set(paths["/api/v1/meta"]) >= {"get"}
    assert set(paths[NOTES]) >= {"get", "post"}
    assert set(paths[NOTES + "/{note_id}"]) >= {"get", "patch", "delete"}
    listing = {p["name"] for p in paths[NOTES]["get"]["parameters"]}
    assert listing >= {"page", "per_page", "sort", "title", "currency"}
    per_page = next(p for p in paths[NOTES]["get"]["parameters"] if p["name"] == "per_page")
    assert per_page["schema"]["maximum"] == 200
    if_match = [p for p in paths[NOTES + "/{note_id}"]["patch"]["parameters"]
                if p["in"] == "header" and p["name"].lower() == "if-match"]
    assert if_match and if_match[0]["required"] is True


def test_openapi_documents_the_error_envelope(document):
    schemas = document["components"]["schemas"]
    error = schemas["Error"]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"]["$ref"]
    detail = schemas[detail_ref.rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message", "fields"}
    assert detail["properties"]["code"]["type"] == "string"
    assert detail["properties"]["message"]["type"] == "string"
    assert detail["properties"]["fields"]["type"] == "object"
    # Every operation's error answers use it.
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            default = operation["responses"]["default"]
            if "$ref" in default:
                default = responses[default["$ref"].rsplit("/", 1)[1]]
            assert default["content"]["application/json"]["schema"]["$ref"].endswith("/Error"), \
                (method, path)


def test_openapi_documents_money_amounts_as_strings(document):
    for name in ("Note", "NotePatch"):
        amount = document["components"]["schemas"][name]["properties"]["amount"]
        assert amount["type"] == "string"


def test_openapi_lists_the_locking_answers_of_patch(document):
    responses = document["paths"][NOTES + "/{note_id}"]["patch"]["responses"]
    assert {"404", "412", "428"} <= set(responses)


def test_openapi_declares_the_bearer_token(document):
    schemes = document.get("components", {}).get("securitySchemes", {})
    bearer = [name for name, scheme in schemes.items()
              if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"]
    assert bearer
    notes_list = document["paths"][NOTES]["get"]
    required = notes_list.get("security", document.get("security", []))
    assert any(set(requirement) & set(bearer) for requirement in required)


def test_every_schema_of_the_document_has_its_own_name(app, recwarn):
    """apispec renames a schema whose name another one took ("Rule" and "Rule1"): a client
    generated from the document would then get arbitrary names. None may clash."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert [str(w.message) for w in caught if "Multiple schemas resolved" in str(w.message)] == []
    names = response.json["components"]["schemas"]
    assert "AssignmentRule" in names and "AssignmentGroup" in names and not any(n[-1].isdigit() for n in names)
