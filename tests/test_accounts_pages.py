"""The pages of accounts and contacts: lists, detail with the org chart and history,
forms that refuse bad input and keep it, stale forms, deletion, and the access rules
(a record you cannot see is a 404; hidden fields are not shown; read-only ones are
never written)."""

import re
from html import unescape

import pytest

from crm_core.accounts import services as accounts
from crm_core.accounts.models import Account, Contact
from crm_core.org import services as org
from crm_core.testing import csrf_token_from, make_user, signed_in
from crm_core.testing import page_and_token as page


@pytest.fixture
def people(app):
    maria, rita, bob = (make_user(f"{n}@example.com", n.title()) for n in ("maria", "rita", "bob"))
    for user in (maria, rita, bob):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=maria.id)
    org.place_user(maria, sales.id)
    org.place_user(rita, sales.id)
    return {"maria": maria, "rita": rita, "bob": bob}


def text(response):
    return unescape(response.get_data(as_text=True))


def test_create_an_account_and_see_it_listed(app, people):
    browser = signed_in(app, people["rita"])
    html, token = page(browser, "/accounts/new")
    assert 'name="credit_limit"' in html and 'value="VN"' in html
    created = browser.post("/accounts", data={
        "name": "Công ty Minh An", "kind": "customer", "country": "VN", "city": "Hà Nội",
        "owner_id": str(people["rita"].id), "currency": "vnd", "credit_limit": "500 000 000",
        "csrf_token": token})
    assert created.status_code == 302, text(created)
    account = Account.get(Account.name == "Công ty Minh An")
    assert (account.kind, account.currency, account.credit_limit) == ("customer", "VND", 500000000)
    listed = text(browser.get("/accounts?q=Minh"))
    assert "Công ty Minh An" in listed and "Việt Nam" not in listed  # English page: "Vietnam"
    assert "Vietnam" in listed
    assert "Công ty Minh An" not in text(browser.get("/accounts?q=Nothing"))


def test_bad_input_is_refused_and_kept(app, people):
    browser = signed_in(app, people["rita"])
    _html, token = page(browser, "/accounts/new")
    refused = browser.post("/accounts", data={"name": "Kept name", "email": "not-an-email",
                                              "employees": "many", "credit_limit": "12",
                                              "csrf_token": token})
    assert refused.status_code == 422
    body = text(refused)
    assert "Enter a whole number." in body and 'value="Kept name"' in body
    refused = browser.post("/accounts", data={"name": "Kept name", "email": "not-an-email",
                                              "csrf_token": token})
    assert refused.status_code == 422 and "“not-an-email” is not an email address." in text(refused)
    assert not Account.select().exists()


def test_detail_shows_the_org_chart_and_history(app, people):
    rita = people["rita"]
    account = accounts.create_account({"name": "Minh An"}, actor_id=rita.id)
    boss = accounts.create_contact({"account_id": account.id, "first_name": "Thảo", "last_name": "Nguyễn",
                                    "title": "Giám đốc"}, actor_id=rita.id)
    accounts.create_contact({"account_id": account.id, "first_name": "Hùng", "last_name": "Lê",
                             "reports_to_id": boss.id}, actor_id=rita.id)
    accounts.update_account(account, {"industry": "Retail"}, actor_id=rita.id)
    html = text(signed_in(app, rita).get(f"/accounts/{account.id}"))
    chart = html[html.index("Contacts and who reports to whom"):]
    assert chart.index("Thảo Nguyễn") < chart.index("Hùng Lê")
    assert re.search(r"Thảo Nguyễn</a>.*?<ul class=\"tree\">.*?Hùng Lê", chart, re.S)
    history = html[html.index('id="history-heading"'):]
    assert "Industry" in history and "Retail" in history


def test_a_stale_form_is_a_409_that_keeps_the_input(app, people):
    rita = people["rita"]
    account = accounts.create_account({"name": "Minh An"}, actor_id=rita.id)
    browser = signed_in(app, rita)
    _html, token = page(browser, f"/accounts/{account.id}/edit")
    accounts.update_account(Account.get_by_id(account.id), {"city": "Huế"}, actor_id=people["maria"].id)
    stale = browser.post(f"/accounts/{account.id}", data={"name": "Minh An", "city": "Đà Nẵng",
                                                          "version": "1", "csrf_token": token})
    assert stale.status_code == 409
    body = text(stale)
    assert 'value="Đà Nẵng"' in body and "Saved now: Huế" in body
    assert Account.get_by_id(account.id).city == "Huế"
    again = browser.post(f"/accounts/{account.id}", data={"name": "Minh An", "city": "Đà Nẵng",
                                                          "version": "2", "csrf_token": token})
    assert again.status_code == 302 and Account.get_by_id(account.id).city == "Đà Nẵng"


def test_a_record_you_cannot_see_is_a_404_like_a_missing_one(app, people):
    account = accounts.create_account({"name": "Minh An"}, actor_id=people["rita"].id)
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Nguyễn"},
                                      actor_id=people["rita"].id)
    bob = signed_in(app, people["bob"])
    for path in (f"/accounts/{account.id}", f"/accounts/{account.id}/edit", f"/contacts/{contact.id}"):
        assert bob.get(path).status_code == 404, path
    assert bob.get("/accounts/987654").status_code == 404
    token = csrf_token_from(bob.get("/accounts/new").get_data(as_text=True))
    assert bob.post(f"/accounts/{account.id}", data={"name": "Mine", "version": "1",
                                                     "csrf_token": token}).status_code == 404
    assert bob.post(f"/accounts/{account.id}/delete", data={"version": "1",
                                                            "csrf_token": token}).status_code == 404
    assert "Minh An" not in text(bob.get("/accounts"))
    assert Account.get_by_id(account.id).name == "Minh An" and Account.get_by_id(account.id).deleted_at is None
    # the manager above the owner sees it
    assert signed_in(app, people["maria"]).get(f"/accounts/{account.id}").status_code == 200


def test_hidden_fields_are_not_shown_and_read_only_ones_not_written(app, people):
    role = org.role_by_key("sales_rep")
    org.set_field_rules(role, {("account", "credit_limit"): "hidden", ("account", "balance"): "read"})
    account = accounts.create_account({"name": "Minh An", "currency": "EUR", "credit_limit": "999",
                                       "balance": "5"}, actor_id=people["rita"].id)
    browser = signed_in(app, people["rita"])
    html = text(browser.get(f"/accounts/{account.id}"))
    assert "Credit limit" not in html and "Balance" in html
    form, token = page(browser, f"/accounts/{account.id}/edit")
    assert 'name="credit_limit"' not in form and re.search(r'name="balance"[^>]*readonly', form)
    saved = browser.post(f"/accounts/{account.id}", data={
        "name": "Minh An", "balance": "1000000", "credit_limit": "1", "currency": "EUR",
        "version": "1", "csrf_token": token})
    assert saved.status_code == 302
    stored = Account.get_by_id(account.id)
    assert (stored.balance, stored.credit_limit) == (5, 999)


def test_delete_an_account_with_its_contacts(app, people):
    rita = people["rita"]
    account = accounts.create_account({"name": "Minh An"}, actor_id=rita.id)
    accounts.create_contact({"account_id": account.id, "last_name": "Nguyễn"}, actor_id=rita.id)
    browser = signed_in(app, rita)
    _html, token = page(browser, f"/accounts/{account.id}")
    stale = browser.post(f"/accounts/{account.id}/delete", data={"version": "9", "csrf_token": token})
    assert stale.status_code == 409 and Account.get_by_id(account.id).deleted_at is None
    deleted = browser.post(f"/accounts/{account.id}/delete", data={"version": "1", "csrf_token": token})
    assert deleted.status_code == 302
    assert Account.get_by_id(account.id).deleted_at is not None
    assert Contact.select().where(Contact.deleted_at.is_null()).count() == 0


def test_new_contact_from_an_account_and_its_reports_to(app, people):
    rita = people["rita"]
    account = accounts.create_account({"name": "Minh An"}, actor_id=rita.id)
    boss = accounts.create_contact({"account_id": account.id, "last_name": "Nguyễn"}, actor_id=rita.id)
    browser = signed_in(app, rita)
    html, token = page(browser, f"/contacts/new?account_id={account.id}")
    assert re.search(rf'<option value="{account.id}" selected>Minh An', html)
    created = browser.post("/contacts", data={"account_id": str(account.id), "last_name": "Lê",
                                              "reports_to_id": str(boss.id), "birthday": "1985-02-30",
                                              "csrf_token": token})
    assert created.status_code == 422 and "Enter a date such as 2026-12-31." in text(created)
    created = browser.post("/contacts", data={"account_id": str(account.id), "last_name": "Lê",
                                              "reports_to_id": str(boss.id), "birthday": "1985-02-28",
                                              "do_not_call": "1", "csrf_token": token})
    assert created.status_code == 302
    contact = Contact.get(Contact.last_name == "Lê")
    assert contact.reports_to_id == boss.id and contact.do_not_call and str(contact.birthday) == "1985-02-28"


def test_a_user_without_the_object_permission_gets_403_and_no_menu(app, people):
    nobody = make_user("nobody@example.com", "Nobody")
    browser = signed_in(app, nobody)
    assert browser.get("/accounts").status_code == 403
    assert 'href="/accounts"' not in browser.get("/").get_data(as_text=True)
    assert 'href="/accounts"' in signed_in(app, people["rita"]).get("/").get_data(as_text=True)
