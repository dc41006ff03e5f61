"""The segment builder page: rows and groups added by submit buttons (no JavaScript),
results within the reader's access, saving, sharing, and hidden fields refused."""

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.customfields import services as custom_fields
from crm_core.org import services as org
from crm_core.segments.models import Segment
from crm_core.testing import make_user, page_and_token, signed_in


@pytest.fixture
def world(app):
    rita, bob = make_user("rita@example.com", "Rita"), make_user("bob@example.com", "Bob")
    for user in (rita, bob):
        org.set_roles(user, ["sales_rep"])
    custom_fields.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                                "labels": {"en": "Interests"}, "choices": ["tennis", "golf"]})
    accounts.create_contact({"last_name": "Anna", "custom": {"interests": ["tennis"]}}, actor_id=rita.id)
    accounts.create_contact({"last_name": "Ben", "custom": {"interests": ["golf"]}}, actor_id=rita.id)
    accounts.create_contact({"last_name": "Dora", "custom": {"interests": ["tennis"]}}, actor_id=bob.id)
    g.pop("_crm_access", None)
    return {"rita": rita, "bob": bob}


def test_building_previewing_and_saving_a_segment(app, world):
    browser = signed_in(app, world["rita"])
    html, token = page_and_token(browser, "/segments/new?object=contact")
    assert "g0-r0-field" in html and "custom.interests" in html and "<script" not in html
    more = browser.post("/segments/new", data={"object": "contact", "match": "all", "g0-match": "all",
                                               "g0-r0-field": "", "g0-r0-op": "", "g0-r0-value": "",
                                               "action": "add_row:0", "csrf_token": token})
    assert more.status_code == 200 and "g0-r1-field" in more.get_data(as_text=True)
    data = {"object": "contact", "match": "all", "g0-match": "any", "g0-r0-field": "custom.interests",
            "g0-r0-op": "includes", "g0-r0-value": "tennis", "csrf_token": token}
    preview = browser.post("/segments/new", data={**data, "action": "preview"}).get_data(as_text=True)
    assert "Anna" in preview and "Ben" not in preview and "Dora" not in preview
    bad = browser.post("/segments/new", data={**data, "g0-r0-value": "chess", "action": "preview"})
    assert bad.status_code == 422
    saved = browser.post("/segments/new", data={**data, "action": "save", "name": "Tennis",
                                                "visibility": "everyone"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    segment = Segment.get()
    assert segment.visibility == "everyone" and "tennis" in segment.conditions
    # Bob runs the shared segment and sees only his own records; he cannot change it.
    bob = signed_in(app, world["bob"])
    page = bob.get(f"/segments/{segment.id}").get_data(as_text=True)
    assert "Dora" in page and "Anna" not in page and 'value="save"' not in page
    assert "Tennis" in bob.get("/segments").get_data(as_text=True)
    _html, bob_token = page_and_token(bob, f"/segments/{segment.id}")
    assert bob.post(f"/segments/{segment.id}/delete", data={"csrf_token": bob_token}).status_code == 403


def test_a_hidden_field_is_not_offered_and_is_refused(app, world):
    org.set_field_rules(org.role_by_key("sales_rep"), {("contact", "custom.interests"): "hidden"})
    browser = signed_in(app, world["rita"])
    html, token = page_and_token(browser, "/segments/new?object=contact")
    assert "custom.interests" not in html
    refused = browser.post("/segments/new", data={
        "object": "contact", "match": "all", "g0-match": "all", "g0-r0-field": "custom.interests",
        "g0-r0-op": "includes", "g0-r0-value": "tennis", "action": "preview", "csrf_token": token})
    assert refused.status_code == 400
