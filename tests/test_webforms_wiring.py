"""Web-to-lead wired to the other parts: the assignment rules give the leads of a form set
to "by assignment rules", the duplicate engine's normalised keys flag a submission."""

from crm_core.assignment import services as assignment
from crm_core.assignment.models import AssignmentProposal
from crm_core.duplicates.rules import save_settings
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.notifications.models import Notification
from crm_core.testing import make_user
from crm_core.webforms import services
from crm_core.webforms.models import WebFormSubmission

from tests.test_webforms import world  # noqa: F401  (the fixture)
from tests.test_webforms import ANNA, post_json


def lead_of(response):
    return Lead.get_by_id(WebFormSubmission.get(WebFormSubmission.uid == response.json["id"]).lead_id)


def by_rules(world):
    services.update_form(world["record"], {"assign_by": "rules"}, actor_id=world["admin"].id)


def test_a_form_by_rules_lets_the_rules_give_the_lead_and_notifies(app, world):
    vu = make_user("vu@example.com", "Vu")
    assignment.create_rule("lead", {"name": "Polish companies", "owner_id": vu.id, "conditions": [
        {"field": "email", "op": "contains", "value": ".pl"}]})
    by_rules(world)
    matched = post_json(app, world["form"], ANNA)
    assert matched.status_code == 201
    assert lead_of(matched).owner_id == vu.id
    assert [(n.user_id, n.object, n.record_id) for n in Notification.select()] == [(vu.id, "lead", lead_of(matched).id)]
    # No rule matches: the lead stays with the form's fallback owner (the target owner).
    other = post_json(app, world["form"], {"last_name": "Smith", "email": "smith@example.com"})
    assert lead_of(other).owner_id == world["rita"].id
    assert Notification.select().count() == 1


def test_the_rules_run_for_the_form_even_when_not_on_creation(app, world):
    vu = make_user("vu@example.com", "Vu")
    assignment.create_rule("lead", {"name": "All", "owner_id": vu.id})
    assignment.set_rule_set("lead", run_on_create=False)
    assert lead_of(post_json(app, world["form"], ANNA)).owner_id == world["rita"].id  # "by owner"
    by_rules(world)
    assert lead_of(post_json(app, world["form"], {**ANNA, "email": "b@example.pl"})).owner_id == vu.id


def test_in_propose_mode_the_lead_waits_with_its_fallback_owner(app, world):
    vu = make_user("vu@example.com", "Vu")
    assignment.set_rule_set("lead", mode="propose")
    assignment.create_rule("lead", {"name": "All", "owner_id": vu.id})
    by_rules(world)
    lead = lead_of(post_json(app, world["form"], ANNA))
    assert lead.owner_id == world["rita"].id
    proposal = AssignmentProposal.get()
    assert (proposal.record_id, proposal.proposed_owner_id, proposal.status) == (lead.id, vu.id, "pending")


def test_a_failing_assignment_leaves_nothing_half_written(app, world, monkeypatch):
    from crm_core.assignment import services as assignment_services

    def broken(*args, **kwargs):
        raise RuntimeError("rules broke")

    assignment.create_rule("lead", {"name": "All", "owner_id": world["admin"].id})
    by_rules(world)
    monkeypatch.setattr(assignment_services, "apply_rules", broken)
    assert post_json(app, world["form"], ANNA).status_code == 500
    assert Lead.select().count() == 0 and WebFormSubmission.select().count() == 0


def test_duplicates_are_found_by_normalised_keys_among_leads_and_contacts(app, world):
    from crm_core.accounts import services as accounts

    admin = world["admin"]
    account = accounts.create_account({"name": "Acme", "country": "PL"}, actor_id=admin.id)
    contact = accounts.create_contact({"account_id": account.id, "last_name": "Lis",
                                       "mobile": "+48 601-234-567"}, actor_id=admin.id)
    old = leads.create_lead({"last_name": "Nowak", "email": "Anna.Nowak@Example.pl"}, actor_id=admin.id)
    assert services.find_duplicate({"email": " anna.nowak@EXAMPLE.PL "}) == ("lead", old.id)
    assert services.find_duplicate({"phone": "0048601234567"}) == ("contact", contact.id)
    # A national number is read with the visitor's country when the form asks it.
    assert services.find_duplicate({"phone": "601 234 567", "country": "PL"}) == ("contact", contact.id)
    assert services.find_duplicate({"phone": "601 234 567"}) is None
    assert services.find_duplicate({"email": "someone@else.pl"}) is None
    # A record in the recycle bin is no duplicate.
    leads.delete_lead(old, actor_id=admin.id)
    assert services.find_duplicate({"email": "anna.nowak@example.pl"}) is None


def test_the_administrators_rules_decide_what_counts_and_nothing_is_refused(app, world):
    admin = world["admin"]
    old = leads.create_lead({"last_name": "Nowak", "email": "anna@example.pl"}, actor_id=admin.id)
    save_settings("lead", "block", [{"key": "phone", "method": "exact"}], actor_id=admin.id)
    response = post_json(app, world["form"], ANNA)
    assert response.status_code == 201  # "block" is for people entering records, never a visitor
    assert WebFormSubmission.get().duplicate_id is None  # email is no longer a duplicate key
    save_settings("lead", "block", [{"key": "email", "method": "exact"}], actor_id=admin.id, expected_version=1)
    again = post_json(app, world["form"], {**ANNA, "first_name": "Ania"})
    assert again.status_code == 201
    flagged = WebFormSubmission.get(WebFormSubmission.uid == again.json["id"])
    assert (flagged.duplicate_of, flagged.duplicate_id) == ("lead", old.id)
    assert Lead.select().count() == 3


# -- custom fields of leads on a form -------------------------------------------------------------

def custom_form(world, required_products=False):
    from crm_core.customfields import services as customfields

    customfields.create_field({"object": "lead", "key": "products", "type": "multi_choice",
                               "labels": {"en": "Products", "ru": "Продукты"}, "choices": ["crm", "erp"]})
    customfields.create_field({"object": "lead", "key": "budget", "type": "number", "labels": {"en": "Budget"}})
    fields = [*FIELDS_ASKED, {"name": "custom.products", "label": "Products", "required": required_products},
              {"name": "custom.budget", "label": "Budget"}]
    response = world["client"].patch(f"/api/v1/web-forms/{world['form']['id']}", json={"fields": fields},
                                     headers={"If-Match": f'"{world["record"].version}"'})
    assert response.status_code == 200, response.json
    return response.json


FIELDS_ASKED = [{"name": "last_name", "label": "Last name", "required": True},
                {"name": "email", "label": "Email", "required": True}]


def test_a_form_asks_custom_fields_and_the_lead_gets_them(app, world):
    form = custom_form(world)
    assert 'name="custom.products" value="erp"' in form["snippet"] and 'name="custom.budget" type="number"' in form["snippet"]
    response = post_json(app, form, {**ANNA, "custom.products": ["erp", "crm"], "custom.budget": "1 200,50"})
    assert response.status_code == 201, response.json
    assert lead_of(response).custom == {"products": ["crm", "erp"], "budget": 1200.5}
    # The plain HTML form: two boxes of one name make one answer.
    from tests.test_webforms import post_form

    posted = post_form(app, form, {"last_name": "Lis", "email": "lis@example.pl", "custom.products": ["crm", "erp"]})
    assert posted.status_code == 303
    assert Lead.get(Lead.last_name == "Lis").custom == {"products": ["crm", "erp"]}


def test_bad_custom_answers_are_422_per_field_in_the_visitors_language(app, world):
    form = custom_form(world, required_products=True)
    response = post_json(app, form, {**ANNA, "custom.products": ["golf"], "custom.budget": "lots"},
                         **{"Accept-Language": "ru"})
    assert response.status_code == 422
    fields = response.json["error"]["fields"]
    assert set(fields) == {"custom.products", "custom.budget"}
    assert "crm, erp" in fields["custom.products"][0] and not fields["custom.products"][0].startswith("Choose")
    assert not fields["custom.budget"][0].startswith("Enter")  # Russian, not English
    missing = post_json(app, form, ANNA)
    assert missing.status_code == 422 and "custom.products" in missing.json["error"]["fields"]
    assert Lead.select().count() == 0 and WebFormSubmission.select().count() == 0


def test_a_form_must_ask_a_required_custom_field_and_only_known_ones(app, world):
    from crm_core.customfields import services as customfields

    customfields.create_field({"object": "lead", "key": "segment", "type": "choice", "required": True,
                               "labels": {"en": "Segment"}, "choices": ["smb"]})
    path = f"/api/v1/web-forms/{world['form']['id']}"
    headers = {"If-Match": f'"{world["record"].version}"'}
    unknown = world["client"].patch(path, json={"fields": [*FIELDS_ASKED, {"name": "custom.nothing", "label": "X"}]},
                                    headers=headers)
    assert unknown.status_code == 422
    not_asked = world["client"].patch(path, json={"fields": FIELDS_ASKED}, headers=headers)
    assert not_asked.status_code == 422 and "Segment" in str(not_asked.json)
    asked = world["client"].patch(path, json={"fields": [*FIELDS_ASKED, {"name": "custom.segment", "label": "S",
                                                                         "required": True}]}, headers=headers)
    assert asked.status_code == 200, asked.json
