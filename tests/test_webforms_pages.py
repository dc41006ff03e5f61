"""The pages of web-to-lead: creating a form from the browser, its snippet, its submissions,
who may open them."""

import re

import pytest
from flask import g

from crm_core.leads import services as leads
from crm_core.org import services as org
from crm_core.testing import make_user, page_and_token, signed_in
from crm_core.webforms import services
from crm_core.webforms.models import WebForm


@pytest.fixture
def people(app):
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    rita = make_user("rita@example.com", "Rita")
    org.set_roles(rita, ["sales_rep"])
    g.pop("_crm_access", None)
    return {"admin": admin, "rita": rita}


def form_data(token, **extra):
    data = {"csrf_token": token, "name": "Contact us", "assign_by": "owner", "source": "web",
            "thank_you_url": "https://www.example.com/thanks", "allowed_origins": "https://www.example.com",
            "rate_limit": "20", "ask_last_name": "1", "label_last_name": "Your name", "required_last_name": "1",
            "ask_email": "1", "label_email": "E-mail"}
    data.update(extra)
    return data


def test_an_administrator_creates_a_form_and_gets_its_snippet(app, people):
    browser = signed_in(app, people["admin"])
    html, token = page_and_token(browser, "/web-forms/new")
    assert 'name="ask_description"' in html
    created = browser.post("/web-forms/new", data=form_data(token, target_owner_id=str(people["rita"].id)))
    assert created.status_code == 302
    form = WebForm.get()
    assert created.headers["Location"].endswith(f"/web-forms/{form.id}")
    assert services.form_fields(form) == [{"name": "last_name", "label": "Your name", "required": True},
                                          {"name": "email", "label": "E-mail", "required": False}]
    assert form.target_owner_id == people["rita"].id and form.owner_id == people["admin"].id
    page = browser.get(f"/web-forms/{form.id}").get_data(as_text=True)
    assert "&lt;form method=&#34;post&#34;" in page  # the snippet, shown as text to copy
    assert services.snippet_token(form) in page
    listing = browser.get("/web-forms/").get_data(as_text=True)
    assert "Contact us" in listing


def test_bad_settings_are_shown_beside_their_inputs_and_nothing_is_created(app, people):
    browser = signed_in(app, people["admin"])
    _html, token = page_and_token(browser, "/web-forms/new")
    response = browser.post("/web-forms/new", data=form_data(
        token, thank_you_url="javascript:alert(1)", required_last_name="", **{"lang": "pl"}),
        headers={"Accept-Language": "pl"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="e-thank_you_url"' in html and 'id="e-fields"' in html
    assert 'value="javascript:alert(1)"' in html  # what was typed is kept
    assert WebForm.select().count() == 0


def test_submissions_and_spam_are_listed_with_links_to_the_lead(app, people):
    admin = people["admin"]
    form = services.create_form({"name": "Contact", "fields": [
        {"name": "last_name", "label": "Name", "required": True}]}, actor_id=admin.id)
    lead_submission, _ = services.submit(form, {services.TOKEN_FIELD: services.issue_token(form),
                                                "last_name": "Nowak"}, "198.51.100.1")
    services.submit(form, {services.TOKEN_FIELD: services.issue_token(form), "last_name": "Bot",
                           "website": "http://spam.example"}, "198.51.100.2")
    browser = signed_in(app, admin)
    html = browser.get(f"/web-forms/{form.id}").get_data(as_text=True)
    assert "Nowak" in html and "Bot" in html
    assert f"/leads/{lead_submission.lead_id}" in html
    spam_only = browser.get(f"/web-forms/{form.id}?result=spam").get_data(as_text=True)
    assert "Bot" in spam_only and "Nowak" not in spam_only


def test_an_edit_on_a_stale_version_is_a_conflict(app, people):
    admin = people["admin"]
    form = services.create_form({"name": "Contact", "fields": [
        {"name": "last_name", "label": "Name", "required": True}]}, actor_id=admin.id)
    browser = signed_in(app, admin)
    html, token = page_and_token(browser, f"/web-forms/{form.id}/edit")
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    services.update_form(form, {"name": "Changed meanwhile"}, actor_id=admin.id)
    stale = browser.post(f"/web-forms/{form.id}/edit", data=form_data(token, version=version, name="Mine"))
    assert stale.status_code == 409
    assert WebForm.get_by_id(form.id).name == "Changed meanwhile"
    fresh = WebForm.get_by_id(form.id)
    saved = browser.post(f"/web-forms/{form.id}/edit", data=form_data(token, version=str(fresh.version),
                                                                      name="Mine", active=""))
    assert saved.status_code == 302
    stored = WebForm.get_by_id(form.id)
    assert stored.name == "Mine" and not stored.active


def test_only_managers_open_the_pages(app, people):
    leads.create_campaign({"name": "x"}, actor_id=people["admin"].id)
    rita = signed_in(app, people["rita"])
    for path in ("/web-forms/", "/web-forms/new"):
        assert rita.get(path).status_code == 403
    assert "/web-forms/" not in rita.get("/").get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.get("/web-forms/").status_code == 302
    admin = signed_in(app, people["admin"])
    assert "/web-forms/" in admin.get("/").get_data(as_text=True)
    assert admin.get("/web-forms/12345").status_code == 404
