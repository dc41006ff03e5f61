"""The pages of duplicates: the warning on a record form and "save anyway", the groups a
reader may see with "not a duplicate", the rules for administrators, the side-by-side
merge, and the mass transfer with its preview."""

import pytest

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account, Contact
from crm_core.duplicates import rules
from crm_core.duplicates.models import DuplicatePair
from crm_core.duplicates.scan import scan
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.testing import make_sales_team, make_user, page_and_token, signed_in


@pytest.fixture
def team(app):
    people = make_sales_team()
    return {**people, "admin": make_user("admin@example.com", "Admin", is_admin=True)}


def test_the_form_warns_and_saves_when_confirmed(app, team):
    rules.save_settings("lead", "warn", list(rules.spec_of("lead").default_rules))
    first = leads.create_lead({"first_name": "Anna", "last_name": "Nowak", "email": "anna@firma.pl"},
                              actor_id=team["rita"].id)
    browser = signed_in(app, team["rita"])
    _html, token = page_and_token(browser, "/leads/new")
    values = {"csrf_token": token, "last_name": "Nowak", "first_name": "Anna", "status": "new",
              "owner_id": str(team["rita"].id), "email": "ANNA@firma.pl"}
    warned = browser.post("/leads", data=values)
    assert warned.status_code == 422
    page = warned.get_data(as_text=True)
    assert f'/leads/{first.id}"' in page and 'name="confirm_duplicates"' in page
    assert Lead.select().count() == 1
    saved = browser.post("/leads", data={**values, "confirm_duplicates": "1"})
    assert saved.status_code == 302 and Lead.select().count() == 2
    rules.save_settings("lead", "block", list(rules.spec_of("lead").default_rules), expected_version=1)
    blocked = browser.post("/leads", data={**values, "confirm_duplicates": "1"})
    assert blocked.status_code == 422 and 'name="confirm_duplicates"' not in blocked.get_data(as_text=True)
    assert Lead.select().count() == 2


def test_groups_dismiss_and_merge_pages(app, team):
    rita = team["rita"].id
    one = accounts.create_account({"name": "Minh An Co., Ltd", "phone": "024 1234"}, actor_id=rita)
    two = accounts.create_account({"name": "Cong ty Minh An", "city": "Hà Nội"}, actor_id=rita)
    contact = accounts.create_contact({"account_id": two.id, "last_name": "Trần"}, actor_id=rita)
    accounts.create_account({"name": "Minh An"}, actor_id=team["bob"].id)  # Bob's: not Rita's business
    scan("account")
    browser = signed_in(app, team["rita"])
    html, token = page_and_token(browser, "/duplicates?object=account")
    assert "Cong ty Minh An" in html and f"/duplicates/merge/account/{one.id}/{two.id}" in html
    assert f"/accounts/{one.id + 2}" not in html  # Bob's account is not shown to Rita
    page, token = page_and_token(browser, f"/duplicates/merge/account/{one.id}/{two.id}")
    assert 'name="take_city"' in page and "Hà Nội" in page
    merged = browser.post(f"/duplicates/merge/account/{one.id}/{two.id}", data={
        "csrf_token": token, "survivor_version": one.version, "other_version": two.version,
        "take_city": "other", "take_name": "survivor"})
    assert merged.status_code == 302, merged.get_data(as_text=True)
    survivor = Account.get_by_id(one.id)
    assert (survivor.name, survivor.city) == ("Minh An Co., Ltd", "Hà Nội")
    assert Contact.get_by_id(contact.id).account_id == one.id and Account.get_by_id(two.id).deleted_at
    detail = browser.get(f"/accounts/{one.id}").get_data(as_text=True)
    assert "Merged from" in detail
    # Stale: the other record changed since the page was drawn
    three = accounts.create_account({"name": "Minh An JSC"}, actor_id=rita)
    page, token = page_and_token(browser, f"/duplicates/merge/account/{one.id}/{three.id}")
    accounts.update_account(three, {"city": "Huế"}, actor_id=rita)
    stale = browser.post(f"/duplicates/merge/account/{one.id}/{three.id}", data={
        "csrf_token": token, "survivor_version": survivor.version, "other_version": 1})
    assert stale.status_code == 409 and Account.get_by_id(three.id).deleted_at is None
    # Dismiss
    scan("account")
    pair = DuplicatePair.get((DuplicatePair.low_id == one.id) & (DuplicatePair.high_id == three.id))
    _html, token = page_and_token(browser, "/duplicates?object=account")
    assert browser.post(f"/duplicates/pairs/{pair.id}/dismiss", data={"csrf_token": token}).status_code == 302
    assert DuplicatePair.get_by_id(pair.id).dismissed_at is not None
    # Bob may not merge Rita's accounts: the page is a 404 for him
    assert signed_in(app, team["bob"]).get(f"/duplicates/merge/account/{one.id}/{three.id}").status_code == 404


def test_settings_page_for_administrators(app, team):
    browser = signed_in(app, team["admin"])
    html, token = page_and_token(browser, "/duplicates/settings")
    saved = browser.post("/duplicates/settings", data={"csrf_token": token, "object": "contact", "version": "0",
                                                       "mode": "block", "email_on": "1", "name_on": "1",
                                                       "threshold": "85"})
    assert saved.status_code == 302
    current = rules.settings_of("contact")
    assert (current.mode, current.rules) == ("block", [{"key": "email", "method": "exact"},
                                                       {"key": "name", "method": "fuzzy", "threshold": 85}])
    bad = browser.post("/duplicates/settings", data={"csrf_token": token, "object": "contact", "version": "1",
                                                     "mode": "block", "name_on": "1", "threshold": "7"})
    assert bad.status_code == 422 and rules.settings_of("contact").version == 1
    assert signed_in(app, team["rita"]).get("/duplicates/settings").status_code == 403


def test_transfer_page_previews_then_transfers(app, team):
    rita, maria = team["rita"].id, team["maria"].id
    for i in range(3):
        leads.create_lead({"last_name": f"Lead {i}"}, actor_id=rita)
    browser = signed_in(app, team["maria"])
    _html, token = page_and_token(browser, "/transfers")
    body = {"csrf_token": token, "object": "lead", "from_owner_id": str(rita), "to_owner_id": str(maria), "ids": ""}
    preview = browser.post("/transfers", data=body)
    assert preview.status_code == 200
    assert "3 records would be transferred" in preview.get_data(as_text=True)
    assert Lead.select().where(Lead.owner_id == maria).count() == 0
    done = browser.post("/transfers", data={**body, "expected_count": "3"})
    assert done.status_code == 302 and Lead.select().where(Lead.owner_id == maria).count() == 3
    missing = browser.post("/transfers", data={**body, "to_owner_id": ""})
    assert missing.status_code == 422
