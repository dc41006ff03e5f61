"""Exports of lists to CSV and XLSX: only what the reader may see (rows and columns),
values that stay values (no formulas), the security log, the API, the pages and
`crm export`."""

import csv
import io
import subprocess
import sys

import pytest
from flask import g
from openpyxl import load_workbook

from crm_core.accounts import services as accounts
from crm_core.audit.models import SecurityEvent
from crm_core.org import services as org
from crm_core.testing import api_client, make_user, signed_in, subprocess_env


@pytest.fixture
def world(app):
    rita, bob = make_user("rita@example.com", "Rita"), make_user("bob@example.com", "Bob")
    for user in (rita, bob):
        org.set_roles(user, ["sales_rep"])
    accounts.create_account({"name": "=HYPERLINK(\"http://evil.example\")", "industry": "-2+3",
                             "currency": "VND", "credit_limit": "500000000", "country": "VN"},
                            actor_id=rita.id)
    accounts.create_account({"name": "Công ty Minh An", "industry": "Retail"}, actor_id=rita.id)
    accounts.create_account({"name": "Bob's own"}, actor_id=bob.id)
    g.pop("_crm_access", None)
    return {"rita": rita, "bob": bob}


def read_csv(data):
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_has_only_what_the_reader_may_see_and_defuses_formulas(app, world):
    response = api_client(app, world["rita"]).get("/api/v1/accounts/export?format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="accounts-')
    rows = read_csv(response.data)
    assert sorted(r["name"] for r in rows) == ["'=HYPERLINK(\"http://evil.example\")", "Công ty Minh An"]
    evil = next(r for r in rows if r["name"].startswith("'"))
    assert evil["industry"] == "'-2+3" and evil["credit_limit"] == "500000000" and evil["country"] == "VN"
    assert "parent_id" in rows[0] and "deleted_at" not in rows[0]
    event = SecurityEvent.select().where(SecurityEvent.kind == "export").get()
    assert event.actor_id == world["rita"].id and '"rows": 2' in event.detail


def test_filters_apply_and_hidden_fields_are_left_out(app, world):
    org.set_field_rules(org.role_by_key("sales_rep"), {("account", "credit_limit"): "hidden"})
    g.pop("_crm_access", None)
    client = api_client(app, world["rita"])
    rows = read_csv(client.get("/api/v1/accounts/export?industry=Retail").data)
    assert [r["name"] for r in rows] == ["Công ty Minh An"] and "credit_limit" not in rows[0]
    assert client.get("/api/v1/accounts/export?format=pdf").status_code == 400
    assert client.get("/api/v1/accounts/export?colour=red").status_code == 400
    bob_rows = read_csv(api_client(app, world["bob"]).get("/api/v1/accounts/export").data)
    assert [r["name"] for r in bob_rows] == ["Bob's own"]


def test_xlsx_holds_the_same_rows_with_numbers_as_numbers(app, world):
    response = api_client(app, world["rita"]).get("/api/v1/accounts/export?format=xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    by_name = {row[header.index("name")]: row for row in rows[1:]}
    assert set(by_name) == {"'=HYPERLINK(\"http://evil.example\")", "Công ty Minh An"}
    evil = by_name["'=HYPERLINK(\"http://evil.example\")"]
    assert evil[header.index("credit_limit")] == 500000000  # a number, not text


def test_the_list_page_exports_what_it_shows(app, world):
    browser = signed_in(app, world["rita"])
    page = browser.get("/accounts?q=Minh").get_data(as_text=True)
    assert "/accounts/export?format=csv&amp;q=Minh" in page
    rows = read_csv(browser.get("/accounts/export?format=csv&q=Minh").data)
    assert [r["name"] for r in rows] == ["Công ty Minh An"]
    assert browser.get("/accounts/export?format=exe").status_code == 400


def test_crm_export_writes_a_file_as_a_user(app, world, tmp_path, crm_database_url):
    if "sqlite" in crm_database_url and ":memory:" in crm_database_url:
        pytest.skip("needs a database the command can open")
    target = tmp_path / "accounts.csv"
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=app.config["CRM_DATABASE_URL"],
                         CRM_SECRET_KEY="export-tests-secret-key-0123456789", CRM_PLUGINS="")
    done = subprocess.run([sys.executable, "-m", "crm_core", "export", "account", "--as",
                           "bob@example.com", "--output", str(target)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 record(s) written" in done.stderr
    assert [r["name"] for r in read_csv(target.read_bytes())] == ["Bob's own"]
    unknown = subprocess.run([sys.executable, "-m", "crm_core", "export", "spaceship"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "no such kind of record" in unknown.stderr
