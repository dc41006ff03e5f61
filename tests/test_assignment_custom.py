"""Assignment rule conditions on custom fields (``custom.<key>``), multi-choice included."""

import pytest

from crm_core.assignment import services as assignment
from crm_core.assignment.objects import assignable
from crm_core.customfields import services as customfields
from crm_core.errors import UserError
from crm_core.leads import services as leads
from crm_core.testing import api_client, make_user, signed_in

from tests.test_assignment import team  # noqa: F401  (the fixture)


@pytest.fixture
def fields(app):
    customfields.create_field({"object": "lead", "key": "products", "type": "multi_choice",
                               "labels": {"en": "Products"}, "choices": ["crm", "erp", "hr"]})
    customfields.create_field({"object": "lead", "key": "segment", "type": "choice",
                               "labels": {"en": "Segment"}, "choices": ["smb", "enterprise"]})
    customfields.create_field({"object": "lead", "key": "budget", "type": "number", "labels": {"en": "Budget"}})


def lead(actor, custom=None, **values):
    return leads.create_lead({"last_name": "Trần", "custom": custom or {}, **values}, actor_id=actor.id)


def test_rules_match_custom_fields_including_multi_choice(app, team, fields):
    an, binh, chi, dao, boss = (team[k] for k in ("an", "binh", "chi", "dao", "boss"))
    assignment.create_rule("lead", {"name": "ERP buyers", "owner_id": an.id, "conditions": [
        {"field": "custom.products", "op": "contains", "value": "ERP"}]})
    assignment.create_rule("lead", {"name": "HR or CRM, enterprise", "owner_id": binh.id, "conditions": [
        {"field": "custom.products", "op": "in", "value": ["hr", "crm"]},
        {"field": "custom.segment", "op": "equals", "value": "enterprise"}]})
    assignment.create_rule("lead", {"name": "Big budget", "owner_id": chi.id, "conditions": [
        {"field": "custom.budget", "op": "equals", "value": "5000"}]})
    assignment.create_rule("lead", {"name": "Nothing chosen", "owner_id": dao.id, "conditions": [
        {"field": "custom.products", "op": "empty"}]})
    assert lead(boss, {"products": ["crm", "erp"]}).owner_id == an.id
    assert lead(boss, {"products": ["hr"], "segment": "enterprise"}).owner_id == binh.id
    assert lead(boss, {"products": ["hr"], "segment": "smb", "budget": 5000}).owner_id == chi.id
    assert lead(boss, {"budget": 10}).owner_id == dao.id
    assert lead(boss, {"products": ["hr"], "segment": "smb"}).owner_id == boss.id  # no rule: the creator


def test_a_condition_on_an_unknown_or_retired_custom_field_is_refused(app, team, fields):
    with pytest.raises(UserError):
        assignment.create_rule("lead", {"name": "X", "owner_id": team["an"].id, "conditions": [
            {"field": "custom.nothing", "op": "equals", "value": "a"}]})
    # Another object's custom field is not this object's.
    customfields.create_field({"object": "account", "key": "tier", "type": "text", "labels": {"en": "Tier"}})
    with pytest.raises(UserError):
        assignment.create_rule("lead", {"name": "X", "owner_id": team["an"].id, "conditions": [
            {"field": "custom.tier", "op": "equals", "value": "a"}]})
    assert assignment.create_rule("account", {"name": "Gold", "owner_id": team["an"].id, "conditions": [
        {"field": "custom.tier", "op": "equals", "value": "gold"}]}).id


def test_the_rules_page_and_api_offer_custom_fields(app, team, fields):
    from flask import g

    assert "custom" not in assignable("lead").fields
    assert assignable("lead").fields[-3:] == ["custom.products", "custom.segment", "custom.budget"]
    admin = make_user("root@example.com", "Root", is_admin=True)
    g.pop("_crm_access", None)
    client = api_client(app, admin)
    created = client.post("/api/v1/assignment/rules", json={
        "object": "lead", "name": "CRM", "owner_id": team["an"].id,
        "conditions": [{"field": "custom.products", "op": "contains", "value": "crm"}]})
    assert created.status_code == 201, created.json
    refused = client.post("/api/v1/assignment/rules", json={
        "object": "lead", "name": "Bad", "owner_id": team["an"].id,
        "conditions": [{"field": "custom.missing", "op": "contains", "value": "crm"}]})
    assert refused.status_code == 422
    browser = signed_in(app, admin)
    page = browser.get("/assignment/rules?object=lead")
    assert page.status_code == 200
    assert '<option value="custom.products"' in page.get_data(as_text=True)
