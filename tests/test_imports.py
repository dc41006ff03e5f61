"""Imports of CSV and Excel files: mapping, encodings and delimiters, dry runs, all or
nothing and partial, the per-row error report, no duplicates on a second run, updates by
external id with history, limits before parsing, the access rules, jobs with progress,
the API, the pages and ``crm import``."""

import base64
import csv
import io
import json
import zipfile
from decimal import Decimal

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account, Contact
from crm_core.audit.models import FieldHistory
from crm_core.imports import services
from crm_core.imports.models import ImportRun
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.permissions import Level
from crm_core.testing import api_client, make_user, page_and_token, signed_in


@pytest.fixture
def team(app):
    maria, rita, bob = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob"))
    auditor = make_user("audit@example.com", "Audit")
    for user in (maria, rita, bob):
        org.set_roles(user, ["sales_rep"])
    org.set_roles(auditor, ["auditor"])
    sales = org.create_department("Sales", head=maria.id)
    org.place_user(maria, sales.id)
    org.place_user(rita, sales.id)
    g.pop("_crm_access", None)
    return {"maria": maria, "rita": rita, "bob": bob, "auditor": auditor}


def csv_bytes(rows, delimiter=",", encoding="utf-8"):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def run_import(user, rows, object_name="lead", **options):
    data = rows if isinstance(rows, bytes) else csv_bytes(rows)
    g.pop("_crm_access", None)
    return services.start_import(object_name, data, options.pop("file_name", "file.csv"), user.id,
                                 **options)


def codes(run):
    return [(e["row"], e["column"], e["code"]) for e in services.errors(run)]


# -- mapping, relations, owners ---------------------------------------------------------------------

def test_columns_named_like_fields_map_themselves_and_relations_take_names(app, team):
    rita = team["rita"]
    campaign = leads.create_campaign({"name": "Vietbuild 2026"}, actor_id=rita.id)
    run = run_import(rita, [
        ["Last Name", "first_name", "company", "email", "status", "source", "campaign", "owner", "country", "Notes"],
        ["Nguyễn", "Thảo", "Minh An", "Thao@MinhAn.vn", "Qualified", "event", "vietbuild 2026", "", "vn", "x"],
        ["Kowalski", "Jan", "Budimex", "", "", "", "", "maria@example.com", "PL", ""],
    ])
    assert (run.status, run.created_count, run.refused_count, codes(run)) == ("done", 2, 0, [])
    thao = Lead.get(Lead.last_name == "Nguyễn")
    assert (thao.email, thao.status, thao.source, thao.campaign_id, thao.country, thao.owner_id) == (
        "thao@minhan.vn", "qualified", "event", campaign.id, "VN", rita.id)
    assert (thao.version, thao.created_by_id) == (1, rita.id)
    jan = Lead.get(Lead.last_name == "Kowalski")
    assert (jan.owner_id, jan.status, jan.first_name) == (team["maria"].id, "new", "Jan")


def test_contacts_link_to_accounts_by_name_or_external_id_among_those_the_user_may_read(app, team):
    rita, bob = team["rita"], team["bob"]
    accounts.create_account({"name": "Minh An", "external_id": "ERP-1"}, actor_id=rita.id)
    accounts.create_account({"name": "Hidden Co"}, actor_id=bob.id)
    run = run_import(rita, [["last_name", "account"], ["Trần", "minh an"], ["Lê", "ERP-1"], ["Phạm", "Hidden Co"]],
                     object_name="contact")
    assert run.status == "refused" and run.created_count == 0
    # Bob's account is refused exactly like one that does not exist.
    assert codes(run) == [(4, "account", "not_found")]
    assert not Contact.select().exists()
    run = run_import(rita, [["last_name", "account"], ["Trần", "minh an"], ["Lê", "ERP-1"]], object_name="contact")
    assert run.created_count == 2
    assert {c.account_id for c in Contact.select()} == {Account.get(Account.name == "Minh An").id}


def test_a_contact_reports_to_someone_of_its_own_account(app, team):
    rita = team["rita"]
    first = accounts.create_account({"name": "First"}, actor_id=rita.id)
    accounts.create_account({"name": "Second"}, actor_id=rita.id)
    accounts.create_contact({"account_id": first.id, "last_name": "Boss", "external_id": "C-1"}, actor_id=rita.id)
    run = run_import(rita, [["last_name", "account", "reports_to"], ["Ok", "First", "C-1"], ["Bad", "Second", "C-1"]],
                     object_name="contact", partial=True)
    assert codes(run) == [(3, "reports_to", "reports_to_account")]
    assert Contact.get(Contact.last_name == "Ok").reports_to_id == Contact.get(Contact.last_name == "Boss").id


# -- all or nothing, partial, dry run, the error report ------------------------------------------------

BAD_ROWS = [["last_name", "email", "status", "country"],
            ["Good", "good@example.com", "new", "VN"],
            ["", "x@example.com", "new", ""],
            ["Bad email", "not-an-email", "new", ""],
            ["Bad status", "", "converted", ""],
            ["Bad country", "", "", "XX"],
            ["Also good", "", "", ""]]


def test_one_bad_row_refuses_the_whole_file_and_the_report_names_line_column_value_and_code(app, team):
    run = run_import(team["rita"], BAD_ROWS)
    assert (run.status, run.created_count, run.refused_count, run.total_rows) == ("refused", 0, 4, 6)
    assert not Lead.select().exists()
    report = services.errors(run)
    assert [(e["row"], e["column"], e["value"], e["code"]) for e in report] == [
        (3, "last_name", "", "required"), (4, "email", "not-an-email", "email"),
        (5, "status", "converted", "choice"), (6, "country", "XX", "country")]
    assert report[1]["message"] == "“not-an-email” is not an email address."


def test_partial_imports_the_good_rows(app, team):
    run = run_import(team["rita"], BAD_ROWS, partial=True)
    assert (run.status, run.created_count, run.refused_count) == ("done", 2, 4)
    assert sorted(lead.last_name for lead in Lead.select()) == ["Also good", "Good"]


def test_a_dry_run_writes_nothing_and_says_what_it_would_do(app, team):
    run = run_import(team["rita"], BAD_ROWS[:2] + BAD_ROWS[-1:], dry_run=True)
    assert (run.status, run.created_count, run.dry_run) == ("done", 2, True)
    assert not Lead.select().exists()
    run = run_import(team["rita"], BAD_ROWS, dry_run=True, partial=True)
    assert (run.created_count, run.refused_count) == (2, 4) and not Lead.select().exists()


def test_quoted_line_breaks_keep_the_line_numbers_of_the_file(app, team):
    data = b'last_name,description\nA,"two\nlines"\nB,x\n,missing\n'
    run = run_import(team["rita"], data)
    assert codes(run) == [(5, "last_name", "required")]


# -- no duplicates: row hashes and external ids ---------------------------------------------------------

def test_importing_the_same_file_twice_creates_nothing_the_second_time(app, team):
    rows = [["last_name", "company"], ["Nguyễn", "Minh An"], ["Trần", "Sông Hồng"], ["Trần", "Sông Hồng"]]
    first = run_import(team["rita"], rows)
    assert (first.created_count, first.skipped_count) == (2, 1)  # the repeated row too
    again = run_import(team["rita"], [["Company", "Last name"], ["Minh An", "Nguyễn"], ["Other", "Lê"]])
    assert (again.created_count, again.skipped_count) == (1, 1)  # another layout, the same values
    assert Lead.select().count() == 3


def test_an_external_id_updates_its_record_with_history(app, team):
    rita = team["rita"]
    run = run_import(rita, [["external_id", "last_name", "status"], ["CRM-7", "Nguyễn", "new"]])
    lead = Lead.get(Lead.external_id == "CRM-7")
    assert run.created_count == 1 and lead.version == 1
    run = run_import(rita, [["external_id", "last_name", "status"], ["CRM-7", "Nguyễn", "contacted"]])
    assert (run.created_count, run.updated_count) == (0, 1)
    lead = Lead.get_by_id(lead.id)
    assert (lead.status, lead.version, Lead.select().count()) == ("contacted", 2, 1)
    history = FieldHistory.select().where(FieldHistory.record_id == lead.id)
    assert [(h.field, h.old_value, h.new_value) for h in history if h.field == "status"] == [
        ("status", "new", "contacted")]
    unchanged = run_import(rita, [["external_id", "last_name", "status"], ["CRM-7", "Nguyễn", "contacted"]])
    assert (unchanged.updated_count, unchanged.skipped_count) == (0, 1)
    assert api_client(app, rita).get(f"/api/v1/leads/{lead.id}").json["external_id"] == "CRM-7"


def test_external_ids_twice_in_a_file_or_of_records_the_user_may_not_change(app, team):
    rita, bob = team["rita"], team["bob"]
    leads.create_lead({"last_name": "Bob's", "external_id": "B-1"}, actor_id=bob.id)
    shared = leads.create_lead({"last_name": "Shared", "external_id": "B-2"}, actor_id=bob.id)
    org.share_record("lead", shared.id, "user", rita.id, Level.READ, actor_id=bob.id)
    run = run_import(rita, [["external_id", "last_name"], ["N-1", "A"], ["N-1", "B"], ["B-1", "C"], ["B-2", "D"]],
                     partial=True)
    assert codes(run) == [(3, "external_id", "duplicate_in_file"), (4, "external_id", "external_id_taken"),
                          (5, "external_id", "no_update")]
    assert services.errors(run)[0]["message"] == "This external id is already on line 2."
    assert Lead.get_by_id(shared.id).last_name == "Shared"


def test_later_parts_add_their_steps_to_the_pipeline(app, team):
    """The assignment rules' owner proposal goes after "owner": here, Polish leads to Maria."""
    from crm_core.imports.pipeline import Importer
    from crm_core.imports.reading import Limits, read
    from crm_core.imports.registry import import_objects

    maria = team["maria"]

    def propose_owner(row):
        if row.record is None and row.values.get("country") == "PL":
            row.values["owner_id"] = maria.id

    table = read(csv_bytes([["last_name", "country"], ["Nowak", "pl"], ["Trần", "VN"]]), "x.csv", Limits())
    importer = Importer(import_objects()["lead"], team["rita"].id, table.header)
    importer.add_step(propose_owner, after="owner")
    assert [name for name, _ in importer.steps][4:6] == ["owner", "propose_owner"]
    inserted = []
    importer.after_insert.append(lambda rows: inserted.extend(row.id for row in rows))
    result = importer.run(table.rows)
    assert result.created == 2
    assert sorted(inserted) == sorted(lead.id for lead in Lead.select())
    assert {lead.last_name: lead.owner_id for lead in Lead.select()} == {"Nowak": maria.id, "Trần": team["rita"].id}


# -- the access rules ------------------------------------------------------------------------------------

def test_the_importer_acts_as_the_user(app, team):
    rita, auditor = team["rita"], team["auditor"]
    run = run_import(auditor, [["last_name"], ["X"]])
    assert run.status == "failed" and codes(run) == [(1, "", "no_create")]
    role = org.role_by_key("sales_rep")
    org.set_field_rules(role, {("lead", "rating"): "read"})
    run = run_import(rita, [["last_name", "rating"], ["X", "hot"]])
    assert run.status == "failed" and codes(run) == [(1, "rating", "not_editable")]
    run = run_import(rita, [["last_name", "owner"], ["X", "nobody@example.com"]])
    assert codes(run) == [(2, "owner", "no_user")]
    run = run_import(rita, [["last_name", "campaign_id"], ["X", "99999"]])
    assert codes(run) == [(2, "campaign_id", "not_found")]
    assert not Lead.select().exists()


def test_giving_a_record_away_by_import_needs_the_transfer_level(app, team):
    rita, bob = team["rita"], team["bob"]
    lead = leads.create_lead({"last_name": "Shared", "external_id": "S-1"}, actor_id=bob.id)
    org.share_record("lead", lead.id, "user", rita.id, Level.EDIT, actor_id=bob.id)
    run = run_import(rita, [["external_id", "owner"], ["S-1", "rita@example.com"]])
    assert codes(run) == [(2, "owner", "no_transfer")]
    run = run_import(rita, [["external_id", "last_name"], ["S-1", "Changed"]])
    assert run.updated_count == 1 and Lead.get_by_id(lead.id).last_name == "Changed"


# -- encodings, delimiters, Excel --------------------------------------------------------------------------

SAMPLES = {
    "cp1252": ["Müller", "Société Générale Française", "Düsseldorf"],
    "cp1250": ["Łukasiewicz", "Przedsiębiorstwo Żółć Spółka", "Świętokrzyskie"],
    "windows-1251": ["Иванов", "Общество с ограниченной ответственностью", "Новосибирск"],
    "gb18030": ["王伟", "北京华为技术有限公司", "广东省深圳市"],
    "utf-8-sig": ["Nguyễn", "Công ty Minh An", "Thành phố Hồ Chí Minh"],
    "big5": ["陳大文", "台灣積體電路製造股份有限公司", "新竹市"],
    "utf-16": ["陳大文", "台灣積體電路製造股份有限公司", "新竹市"],
    "utf-8": ["Trần", "Sông Hồng", "Hà Nội"],
}


@pytest.mark.parametrize("encoding", list(SAMPLES))
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_encodings_and_delimiters_are_recognised(app, team, encoding, delimiter):
    name, company, region = SAMPLES[encoding]
    rows = [["last_name", "company", "region"], [name, company, region],
            [name + "a", company + " 2", region], [name + "b", company, region + " 3"]]
    run = run_import(team["rita"], csv_bytes(rows, delimiter, encoding))
    assert (run.status, run.created_count) == ("done", 3), services.errors(run)
    assert Lead.get(Lead.last_name == name).company == company
    assert Lead.get(Lead.last_name == name + "b").region == region + " 3"


def xlsx_bytes(rows):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_excel_workbooks_import_like_csv(app, team):
    import datetime as dt

    data = xlsx_bytes([["name", "kind", "employees", "currency", "credit_limit", "external_id"],
                       ["Minh An", "Customer", 120, "vnd", 150000000, 4711],
                       ["Budimex", "prospect", 3.0, "PLN", "12 500,50", "B-2"],
                       ["Broken", "alien", "many", "EUR", 1, "B-3"]])
    run = run_import(team["rita"], data, object_name="account", file_name="accounts.xlsx", partial=True)
    assert (run.file_format, run.created_count) == ("xlsx", 2)
    assert codes(run) == [(4, "kind", "choice")]
    minh_an = Account.get(Account.external_id == "4711")
    assert (minh_an.kind, minh_an.employees, minh_an.currency, minh_an.credit_limit) == (
        "customer", 120, "VND", Decimal("150000000"))
    assert minh_an.became_customer_at is not None
    budimex = Account.get(Account.name == "Budimex")
    assert (budimex.employees, budimex.credit_limit) == (3, Decimal("12500.50"))
    assert isinstance(minh_an.created_at, dt.datetime)


# -- limits before parsing ----------------------------------------------------------------------------------

def test_too_many_rows_is_refused_before_parsing(app_factory):
    app = app_factory(CRM_IMPORT_MAX_ROWS=2)
    with app.app_context():
        admin = make_user(is_admin=True)
        run = services.start_import("lead", b"last_name\na\nb\nc\n", "x.csv", admin.id)
        assert (run.status, codes(run)) == ("failed", [(None, "", "too_many_rows")])
        run = services.start_import("lead", xlsx_bytes([["last_name"], ["a"], ["b"], ["c"]]), "x.xlsx", admin.id)
        assert (run.status, codes(run)) == ("failed", [(None, "", "too_many_rows")])
        assert services.errors(run)[0]["message"] == "The file has more than 2 rows."


def test_zip_bombs_and_files_that_are_no_workbook_are_refused(app, team):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<row/>" * 5_000_000)  # 30 MB of nothing
    run = run_import(team["rita"], bomb.getvalue(), file_name="big.xlsx")
    assert codes(run) == [(None, "", "zip_bomb")]
    run = run_import(team["rita"], b"PK\x03\x04 not really", file_name="x.xlsx")
    assert codes(run) == [(None, "", "not_xlsx")]
    run = run_import(team["rita"], b"   \n", file_name="x.csv")
    assert codes(run) == [(None, "", "empty")]


def test_an_oversized_file_is_refused(app, team, monkeypatch):
    from crm_core.imports import reading

    monkeypatch.setattr(services, "limits", lambda: reading.Limits(max_bytes=10))
    run = run_import(team["rita"], b"last_name\nNguyen\n")
    assert codes(run) == [(None, "", "too_large")]


# -- the API -----------------------------------------------------------------------------------------------

def upload_json(object_name, rows, **extra):
    return {"object": object_name, "file_name": "leads.csv",
            "content": base64.b64encode(csv_bytes(rows)).decode(), **extra}


def test_the_api_imports_reports_and_answers_in_the_callers_language(app, team):
    rita = api_client(app, team["rita"])
    response = rita.post("/api/v1/imports", json=upload_json("lead", BAD_ROWS))
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["status"], body["refused"], body["created"]) == ("refused", 4, 0)
    assert body["errors"][0] == {"row": 3, "column": "last_name", "value": "", "code": "required",
                                 "message": "This field is required."}
    assert response.headers["Location"].endswith(f"/api/v1/imports/{body['id']}")
    again = rita.get(f"/api/v1/imports/{body['id']}", headers={"Accept-Language": "ru"}).json
    assert again["errors"][0]["message"] != "This field is required."
    report = rita.get(f"/api/v1/imports/{body['id']}/errors")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(report.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0] == ["row", "column", "value", "code", "message"] and lines[1][:4] == ["3", "last_name", "", "required"]
    listed = rita.get("/api/v1/imports").json
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
    # Someone else's import is a 404 like a missing one.
    assert api_client(app, team["bob"]).get(f"/api/v1/imports/{body['id']}").status_code == 404


def test_the_api_takes_multipart_uploads_and_refuses_bad_requests(app, team):
    rita = api_client(app, team["rita"])
    data = {"object": "lead", "partial": "true",
            "file": (io.BytesIO(csv_bytes(BAD_ROWS)), "leads.csv")}
    response = rita.post("/api/v1/imports", data=data, content_type="multipart/form-data")
    assert response.status_code == 201 and response.json["created"] == 2
    assert rita.post("/api/v1/imports", json=upload_json("no_such_object", [["x"]])).status_code == 422
    assert rita.post("/api/v1/imports", json={**upload_json("lead", [["x"]]), "content": "%%%"}).status_code == 422
    bad = rita.post("/api/v1/imports", json=upload_json("lead", [["x"]], mapping={"x": "no_such_field"}))
    assert bad.status_code == 422 and "mapping" in bad.json["error"]["fields"]
    assert api_client(app, team["auditor"]).post("/api/v1/imports", json=upload_json("lead", [["last_name"], ["x"]])).status_code == 403


def test_saved_mappings_import_other_layouts(app, team):
    rita = api_client(app, team["rita"])
    saved = rita.post("/api/v1/imports/mappings", json={
        "object": "lead", "name": "Trade fair", "mapping": {"Nachname": "last_name", "Firma": "company",
                                                             "Bemerkung": None}})
    assert saved.status_code == 201, saved.json
    assert rita.post("/api/v1/imports/mappings", json={"object": "lead", "name": "Trade fair",
                                                        "mapping": {}}).status_code == 409
    rows = [["Nachname", "Firma", "Bemerkung"], ["Müller", "Siemens", "=cmd()"]]
    response = rita.post("/api/v1/imports", json=upload_json("lead", rows, mapping_id=saved.json["id"]))
    assert response.json["created"] == 1 and Lead.get(Lead.last_name == "Müller").company == "Siemens"
    assert [m["name"] for m in rita.get("/api/v1/imports/mappings?object=lead").json] == ["Trade fair"]
    assert api_client(app, team["bob"]).delete(f"/api/v1/imports/mappings/{saved.json['id']}").status_code == 403
    assert rita.delete(f"/api/v1/imports/mappings/{saved.json['id']}").status_code == 204


def test_exporting_imported_text_back_keeps_formulas_defused(app, team):
    rita = team["rita"]
    run_import(rita, [["last_name", "company"], ["=HYPERLINK(\"http://x\")", "+1-2"]])
    client = api_client(app, rita)
    exported = client.get("/api/v1/leads/export?format=csv").get_data(as_text=True)
    assert "'=HYPERLINK" in exported and "'+1-2" in exported
    run = run_import(rita, [["last_name", "email"], ["X", "=1+2"]])
    report = client.get(f"/api/v1/imports/{run.id}/errors").get_data(as_text=True)
    assert "'=1+2" in report


# -- large imports as a job -----------------------------------------------------------------------------------

def test_large_files_are_queued_for_the_worker_with_progress(app_factory):
    app = app_factory(CRM_IMPORT_INLINE_KB=1)
    with app.app_context():
        admin = make_user(is_admin=True)
        rows = [["last_name", "company"]] + [[f"Lead {i}", f"Company {i}"] for i in range(6000)]
        sent = []
        jobs = app.extensions["crm_jobs"]
        jobs.enqueue = lambda name, *args: sent.append((name, args))
        run = services.start_import("lead", csv_bytes(rows), "big.csv", admin.id)
        assert (run.status, sent) == ("queued", [("core.run_import", (run.id,))])
        assert services.progress(run) == (0, 1)
        browser = signed_in(app, admin)
        html, _ = page_and_token(browser, f"/imports/{run.id}")
        assert 'http-equiv="refresh"' in html and "<progress" in html
        seen = []
        original = services._report_progress

        def watch(run_, done):
            original(run_, done)
            seen.append(services.progress(ImportRun.get_by_id(run_.id)))
        services._report_progress = watch
        try:
            services.run_import(run.id)
        finally:
            services._report_progress = original
        run = ImportRun.get_by_id(run.id)
        assert (run.status, run.created_count, Lead.select().count()) == ("done", 6000, 6000)
        assert seen[0][0] == 5000 and seen[0][1] >= 6000  # the bar moved during the import
        html, _ = page_and_token(browser, f"/imports/{run.id}")
        assert 'http-equiv="refresh"' not in html and "6000" in html


def test_the_worker_task_runs_queued_imports(app_factory):
    app = app_factory(CRM_IMPORT_INLINE_KB=1, CRM_JOBS_IMMEDIATE=True)
    with app.app_context():
        admin = make_user(is_admin=True)
        rows = [["last_name"]] + [[f"Lead {i}"] for i in range(300)]
        run = services.start_import("lead", csv_bytes(rows), "big.csv", admin.id)
        run = ImportRun.get_by_id(run.id)
        assert (run.status, run.created_count) == ("done", 300)
        assert "core.run_import" in app.extensions["crm_jobs"].names


# -- pages ----------------------------------------------------------------------------------------------------

def test_the_import_pages(app, team):
    rita = team["rita"]
    browser = signed_in(app, rita)
    html, token = page_and_token(browser, "/imports/")
    assert 'name="file"' in html and 'enctype="multipart/form-data"' in html
    response = browser.post("/imports/", data={"csrf_token": token, "object": "lead", "file": (
        io.BytesIO(csv_bytes(BAD_ROWS)), "leads.csv")}, content_type="multipart/form-data")
    assert response.status_code == 302
    html, _ = page_and_token(browser, response.headers["Location"])
    assert "not-an-email" in html and "errors.csv" in html and Lead.select().count() == 0
    missing = browser.post("/imports/", data={"csrf_token": token, "object": "lead"},
                           content_type="multipart/form-data")
    assert missing.status_code == 422
    html, token = page_and_token(browser, "/imports/mappings")
    saved = browser.post("/imports/mappings", data={"csrf_token": token, "object": "lead", "name": "Fair",
                                                    "mapping": "Nachname = last_name\nIgnored =\n"})
    assert saved.status_code == 302
    html, token = page_and_token(browser, "/imports/mappings")
    assert "Nachname = last_name" in html
    bad = browser.post("/imports/mappings", data={"csrf_token": token, "object": "lead", "name": "Bad",
                                                  "mapping": "Nachname = nothing"})
    assert bad.status_code == 422
    other = signed_in(app, team["bob"])
    run = ImportRun.select().first()
    assert other.get(f"/imports/{run.id}").status_code == 404
    assert signed_in(app, team["auditor"]).get("/imports/").status_code == 403
    assert app.test_client().get("/imports/").status_code in (302, 401)


# -- the command line -------------------------------------------------------------------------------------------

def test_crm_import_exits_non_zero_and_names_each_refused_line(app, team, cli, tmp_path):
    make_user("admin@example.com", is_admin=True)
    path = tmp_path / "leads.csv"
    path.write_bytes(csv_bytes(BAD_ROWS))
    result = cli("import", "lead", str(path), "--as", "rita@example.com")
    assert result.exit_code == 1
    assert "line 3, column last_name: This field is required." in result.output
    assert "line 4, column email ('not-an-email')" in result.output
    assert not Lead.select().exists()
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Surname": "last_name"}))
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([["Surname"], ["Nguyễn"]]))
    assert cli("import", "lead", str(good), "--mapping", str(mapping), "--dry-run").exit_code == 0
    assert not Lead.select().exists()
    result = cli("import", "lead", str(good), "--mapping", str(mapping))
    assert result.exit_code == 0 and "1 were created" in result.output
    assert Lead.get().owner_id != team["rita"].id  # by default, as an administrator
    partial = cli("import", "lead", str(path), "--partial", "--as", "rita@example.com")
    assert partial.exit_code == 1 and Lead.select().count() == 3
    assert cli("import", "no_such_object", str(good)).exit_code == 2


# -- the hook -------------------------------------------------------------------------------------------------

def test_hook_crm_register_import_objects(app_factory, register_plugin):
    import types

    from crm_core import PluginManifest, hookimpl
    from crm_core.errors import RegistryError
    from crm_core.imports.registry import ImportObject, import_objects

    app = app_factory()
    with app.app_context():
        assert sorted(import_objects()) == ["account", "contact", "lead", "opportunity"]
        assert app.extensions["crm"].registries["import_objects"].owner("lead") == "core"

    def plugin(name, spec):
        module = types.ModuleType(f"crm_{name}")
        module.manifest = PluginManifest(name=name, label=name.title(), version="1.0")
        module.crm_register_import_objects = hookimpl(lambda app: [spec])
        return module

    register_plugin(plugin("twice", ImportObject("lead", Lead, leads.update_lead)))
    with pytest.raises(RegistryError, match="import object 'lead' is registered twice"):
        app_factory(migrate_schema=False)


def test_api_uploads_may_exceed_the_request_limit_up_to_the_import_limit(app_factory):
    app = app_factory(MAX_CONTENT_LENGTH=2048, CRM_IMPORT_MAX_MB=1)
    with app.app_context():
        client = api_client(app)
        rows = [["last_name", "company"]] + [[f"Lead {i}", "Minh An"] for i in range(300)]
        response = client.post("/api/v1/imports", json=upload_json("lead", rows))
        assert response.status_code == 201 and response.json["created"] == 300
        too_big = client.post("/api/v1/imports", json={"object": "lead", "file_name": "x.csv",
                                                       "content": "A" * (2 * 1024 * 1024)})
        assert too_big.status_code == 413
        assert client.post("/api/v1/leads", json={"last_name": "x" * 3000}).status_code == 413
