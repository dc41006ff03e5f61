"""Merging with custom fields: the survivor takes chosen custom values (``custom.<key>``)
with history; a custom field hidden from the merger can be neither chosen nor shown."""

from crm_core.audit.models import FieldHistory
from crm_core.customfields import services as customfields
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.testing import api_client, signed_in

from tests.test_merge import merge, team  # noqa: F401  (team: the fixture)


def fields():
    customfields.create_field({"object": "lead", "key": "products", "type": "multi_choice",
                               "labels": {"en": "Products"}, "choices": ["crm", "erp", "hr"]})
    customfields.create_field({"object": "lead", "key": "budget", "type": "number", "labels": {"en": "Budget"}})
    customfields.create_field({"object": "lead", "key": "secret_note", "type": "text", "labels": {"en": "Secret note"}})


def pair(rita):
    survivor = leads.create_lead({"last_name": "Nowak", "custom": {"products": ["crm"], "budget": "10"}},
                                 actor_id=rita)
    other = leads.create_lead({"last_name": "Nowak", "email": "a@example.pl",
                               "custom": {"products": ["erp", "hr"], "secret_note": "pays late"}}, actor_id=rita)
    return survivor, other


def test_the_survivor_takes_chosen_custom_values_with_history(app, team):
    fields()
    rita = team["rita"]
    survivor, other = pair(rita.id)
    response = merge(api_client(app, rita), "lead", survivor, other,
                     take=["email", "custom.products", "custom.budget"])
    assert response.status_code == 200, response.json
    kept = Lead.get_by_id(survivor.id)
    assert kept.custom == {"products": ["erp", "hr"]} and kept.email == "a@example.pl"  # budget: the other had none
    changed = {h.field for h in FieldHistory.select().where((FieldHistory.table == "lead")
                                                            & (FieldHistory.record_id == survivor.id))}
    assert {"custom.products", "custom.budget", "email"} <= changed


def test_an_unknown_or_hidden_custom_field_cannot_be_taken(app, team):
    fields()
    rita = team["rita"]
    survivor, other = pair(rita.id)
    client = api_client(app, rita)
    unknown = merge(client, "lead", survivor, other, take=["custom.nothing"])
    assert unknown.status_code == 422
    org.set_field_rules(org.role_by_key("sales_rep"), {("lead", "custom.secret_note"): "hidden"})
    from flask import g

    g.pop("_crm_access", None)
    hidden = merge(api_client(app, rita), "lead", survivor, other, take=["custom.secret_note"])
    assert hidden.status_code == 422 and "custom.secret_note" in hidden.json["error"]["fields"]
    assert Lead.get_by_id(survivor.id).custom == {"products": ["crm"], "budget": 10}
    assert Lead.get_by_id(other.id).deleted_at is None  # nothing merged


def test_the_compare_page_shows_custom_fields_but_not_hidden_ones(app, team):
    fields()
    rita = team["rita"]
    survivor, other = pair(rita.id)
    org.set_field_rules(org.role_by_key("sales_rep"), {("lead", "custom.secret_note"): "hidden"})
    browser = signed_in(app, rita)
    path = f"/duplicates/merge/lead/{survivor.id}/{other.id}"
    page = browser.get(path).get_data(as_text=True)
    assert "Products" in page and 'name="take_custom.products"' in page and "Budget" in page
    assert "Secret note" not in page and "pays late" not in page
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    done = browser.post(path, data={"csrf_token": token, "survivor_version": survivor.version,
                                    "other_version": other.version, "take_custom.products": "other",
                                    "take_custom.secret_note": "other"})
    assert done.status_code == 302
    assert Lead.get_by_id(survivor.id).custom == {"products": ["erp", "hr"], "budget": 10}
