"""Custom fields on the record pages (forms, detail, lists, search) and the
administrators' page that defines them."""

import pytest
from flask import g

from crm_core.accounts.models import Contact
from crm_core.customfields import services as custom_fields
from crm_core.customfields.models import CustomField
from crm_core.org import services as org
from crm_core.testing import make_user, page_and_token, signed_in


@pytest.fixture
def people(app):
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    rita = make_user("rita@example.com", "Rita")
    org.set_roles(rita, ["sales_rep"])
    custom_fields.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                                "labels": {"en": "Interests", "vi": "Sở thích"}, "choices": ["tennis", "golf"]})
    custom_fields.create_field({"object": "contact", "key": "club", "type": "text", "labels": {"en": "Club"}})
    custom_fields.create_field({"object": "contact", "key": "met_on", "type": "date", "labels": {"en": "Met on"}})
    g.pop("_crm_access", None)
    return {"admin": admin, "rita": rita}


def test_forms_details_lists_and_search_show_custom_fields(app, people):
    browser = signed_in(app, people["rita"])
    html, token = page_and_token(browser, "/contacts/new")
    assert 'name="custom.interests"' in html and "Met on" in html
    bad = browser.post("/contacts", data={"last_name": "Nguyễn", "custom.interests": ["", "tennis"],
                                          "custom.club": "Hà Nội Tennis", "custom.met_on": "soon",
                                          "csrf_token": token})
    assert bad.status_code == 422 and "2026-12-31" in bad.get_data(as_text=True)
    assert not Contact.select().exists()
    created = browser.post("/contacts", data={"last_name": "Nguyễn", "custom.interests": ["", "tennis", "golf"],
                                              "custom.club": "Hà Nội Tennis", "custom.met_on": "2026-02-03",
                                              "csrf_token": token})
    assert created.status_code == 302, created.get_data(as_text=True)
    contact = Contact.get()
    assert contact.custom == {"interests": ["golf", "tennis"], "club": "Hà Nội Tennis", "met_on": "2026-02-03"}
    detail = browser.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Hà Nội Tennis" in detail and "golf, tennis" in detail
    html, token = page_and_token(browser, f"/contacts/{contact.id}/edit")
    changed = browser.post(f"/contacts/{contact.id}", data={
        "last_name": "Nguyễn", "custom.interests": [""], "custom.club": "Hà Nội Tennis",
        "custom.met_on": "2026-02-03", "version": "1", "csrf_token": token})
    assert changed.status_code == 302
    assert Contact.get_by_id(contact.id).custom == {"club": "Hà Nội Tennis", "met_on": "2026-02-03"}
    assert "Nguyễn" in browser.get("/contacts?q=tennis").get_data(as_text=True)
    assert "Nguyễn" not in browser.get("/contacts?q=badminton").get_data(as_text=True)
    listed = browser.get("/contacts").get_data(as_text=True)
    assert "Club" in listed


def test_hidden_custom_fields_are_not_on_pages(app, people):
    org.set_field_rules(org.role_by_key("sales_rep"), {("contact", "custom.club"): "hidden"})
    browser = signed_in(app, people["rita"])
    html, _token = page_and_token(browser, "/contacts/new")
    assert "custom.club" not in html and "custom.interests" in html


def test_administrators_define_fields_on_their_page(app, people):
    assert signed_in(app, people["rita"]).get("/admin/custom-fields").status_code == 403
    browser = signed_in(app, people["admin"])
    html, token = page_and_token(browser, "/admin/custom-fields")
    assert "interests" in html and "Sở thích" not in html
    bad = browser.post("/admin/custom-fields", data={"object": "lead", "key": "Fleet size", "type": "number",
                                                     "label_en": "Fleet size", "csrf_token": token})
    assert bad.status_code == 422 and not CustomField.select().where(CustomField.object == "lead").exists()
    made = browser.post("/admin/custom-fields", data={"object": "lead", "key": "tier", "type": "choice",
                                                      "label_en": "Tier", "label_pl": "Poziom",
                                                      "choices": "gold = Gold\nsilver", "csrf_token": token})
    assert made.status_code == 302, made.get_data(as_text=True)
    field = CustomField.get(CustomField.key == "tier")
    assert field.type == "choice" and '"Poziom"' in field.labels.replace(": ", ":").replace(':"', ': "') or \
        "Poziom" in field.labels
    html, token = page_and_token(browser, f"/admin/custom-fields/{field.id}")
    saved = browser.post(f"/admin/custom-fields/{field.id}", data={
        "type": "choice", "label_en": "Tier", "choices": "gold = Gold\nsilver\nbronze", "required": "1",
        "position": "5", "version": str(field.version), "csrf_token": token})
    assert saved.status_code == 302
    field = CustomField.get_by_id(field.id)
    assert field.required and "bronze" in field.choices
    stale = browser.post(f"/admin/custom-fields/{field.id}", data={
        "type": "choice", "label_en": "Tier", "choices": "gold", "version": "1", "csrf_token": token})
    assert stale.status_code == 409
    retired = browser.post(f"/admin/custom-fields/{field.id}/retire", data={"csrf_token": token})
    assert retired.status_code == 302 and CustomField.get_by_id(field.id).retired_at is not None
