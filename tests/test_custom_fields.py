"""Custom fields: defined by administrators (and plugins) without code, validated with a
message per field and nothing half-written, shown under ``custom`` in the API, obeying
field security, written to history and exports; type changes convert or are refused."""

import csv
import io

import pytest
from flask import g

from crm_core.accounts.models import Contact
from crm_core.audit.models import FieldHistory
from crm_core.customfields import compile_validator, dumps, export_values, validate
from crm_core.customfields.registry import CustomFieldSpec, clear_cache
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.testing import api_client, make_user


@pytest.fixture
def people(app):
    admin = make_user("admin@example.com", "Admin", is_admin=True)
    rita, bob = make_user("rita@example.com", "Rita"), make_user("bob@example.com", "Bob")
    for user in (rita, bob):
        org.set_roles(user, ["sales_rep"])
    g.pop("_crm_access", None)
    return {"admin": admin, "rita": rita, "bob": bob}


def define(client, **values):
    body = {"object": "contact", "key": "interests", "type": "multi_choice",
            "labels": {"en": "Interests", "vi": "Sở thích"},
            "choices": [{"value": "tennis", "labels": {"en": "Tennis", "ru": "Теннис"}}, {"value": "golf"},
                        {"value": "sailing"}], **values}
    body = {key: value for key, value in body.items() if value is not None}
    response = client.post("/api/v1/custom-fields", json=body)
    assert response.status_code == 201, response.json
    clear_cache()
    return response


def test_administrators_define_fields_and_records_carry_them(app, people):
    admin = api_client(app, people["admin"])
    define(admin)
    define(admin, key="budget", type="money", currency="EUR", labels={"en": "Budget"}, choices=None)
    define(admin, key="met_on", type="date", labels={"en": "Met on"}, choices=None)
    define(admin, key="vip", type="boolean", labels={"en": "VIP"}, choices=None)
    assert api_client(app, people["rita"]).post("/api/v1/custom-fields", json={
        "object": "contact", "key": "x", "type": "text", "labels": {"en": "X"}}).status_code == 403
    rita = api_client(app, people["rita"])
    created = rita.post("/api/v1/contacts", json={
        "last_name": "Nguyễn", "custom": {"interests": ["tennis", "golf"], "budget": "1200.5",
                                          "met_on": "2026-03-01", "vip": True}})
    assert created.status_code == 201, created.json
    assert created.json["custom"] == {"interests": ["golf", "tennis"], "budget": "1200.50",
                                      "met_on": "2026-03-01", "vip": True}
    url = f"/api/v1/contacts/{created.json['id']}"
    changed = rita.patch(url, json={"custom": {"budget": None, "vip": False}},
                         headers={"If-Match": created.headers["ETag"]})
    assert changed.status_code == 200, changed.json
    assert changed.json["custom"]["budget"] is None and changed.json["custom"]["interests"] == ["golf", "tennis"]
    assert changed.json["version"] == 2
    history = {(h.field, h.old_value, h.new_value) for h in FieldHistory.select().where(
        FieldHistory.record_id == created.json["id"], FieldHistory.table == "contact")}
    assert ("custom.budget", "1200.5", None) in history and ("custom.vip", "true", "false") in history
    # A change that changes nothing writes nothing.
    same = rita.patch(url, json={"custom": {"vip": False}}, headers={"If-Match": changed.headers["ETag"]})
    assert same.json["version"] == 2


@pytest.mark.parametrize("custom, field", [
    ({"interests": ["chess"]}, "custom.interests"), ({"budget": "lots"}, "custom.budget"),
    ({"met_on": "31/12/2026"}, "custom.met_on"), ({"vip": "perhaps"}, "custom.vip"),
    ({"nope": "x"}, "custom.nope"), ({"budget": "1.234"}, "custom.budget"),
])
def test_bad_values_are_refused_with_a_message_per_field_and_nothing_written(app, people, custom, field):
    admin = api_client(app, people["admin"])
    define(admin)
    define(admin, key="budget", type="money", currency="EUR", labels={"en": "Budget"}, choices=None)
    define(admin, key="met_on", type="date", labels={"en": "Met on"}, choices=None)
    define(admin, key="vip", type="boolean", labels={"en": "VIP"}, choices=None)
    rita = api_client(app, people["rita"], )
    response = rita.post("/api/v1/contacts", json={"last_name": "X", "custom": custom},
                         headers={"Accept-Language": "vi"})
    assert response.status_code == 422 and field in response.json["error"]["fields"], response.json
    assert not Contact.select().exists()


def test_messages_are_in_the_users_language(app, people):
    define(api_client(app, people["admin"]), key="met_on", type="date", labels={"en": "Met on"}, choices=None)
    response = api_client(app, people["rita"]).post(
        "/api/v1/contacts", json={"last_name": "X", "custom": {"met_on": "soon"}},
        headers={"Accept-Language": "ru"})
    message = response.json["error"]["fields"]["custom.met_on"][0]
    assert message != "Enter a date such as 2026-12-31." and "2026-12-31" in message


def test_required_fields_are_required_on_new_records_only_when_given_on_changes(app, people):
    define(api_client(app, people["admin"]), object="lead", key="segment", type="choice", required=True,
           labels={"en": "Segment"}, choices=[{"value": "smb"}, {"value": "enterprise"}])
    rita = api_client(app, people["rita"])
    missing = rita.post("/api/v1/leads", json={"last_name": "X"})
    assert missing.status_code == 422 and "custom.segment" in missing.json["error"]["fields"]
    lead = rita.post("/api/v1/leads", json={"last_name": "X", "custom": {"segment": "smb"}})
    assert lead.status_code == 201 and lead.json["custom"] == {"segment": "smb"}
    cleared = rita.patch(f"/api/v1/leads/{lead.json['id']}", json={"custom": {"segment": None}},
                         headers={"If-Match": lead.headers["ETag"]})
    assert cleared.status_code == 422
    assert Lead.get_by_id(lead.json["id"]).custom == {"segment": "smb"}


def test_field_security_hides_and_locks_custom_fields(app, people):
    admin = api_client(app, people["admin"])
    define(admin)
    define(admin, key="budget", type="money", currency="EUR", labels={"en": "Budget"}, choices=None)
    role = org.role_by_key("sales_rep")
    org.set_field_rules(role, {("contact", "custom.budget"): "hidden", ("contact", "custom.interests"): "read"})
    g.pop("_crm_access", None)
    rita = api_client(app, people["rita"])
    created = rita.post("/api/v1/contacts", json={"last_name": "X"})
    assert created.status_code == 201 and created.json["custom"] == {"interests": None}
    refused = rita.patch(f"/api/v1/contacts/{created.json['id']}", json={"custom": {"interests": ["golf"]}},
                         headers={"If-Match": created.headers["ETag"]})
    assert refused.status_code == 422 and "custom.interests" in refused.json["error"]["fields"]
    hidden = rita.post("/api/v1/contacts", json={"last_name": "Y", "custom": {"budget": "5"}})
    assert hidden.status_code == 422 and "custom.budget" in hidden.json["error"]["fields"]
    exported = rita.get("/api/v1/contacts/export?format=csv")
    header = next(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    assert "custom.interests" in header and "custom.budget" not in header


def test_exports_carry_custom_values(app, people):
    admin = api_client(app, people["admin"])
    define(admin)
    define(admin, key="budget", type="money", currency="EUR", labels={"en": "Budget"}, choices=None)
    rita = api_client(app, people["rita"])
    rita.post("/api/v1/contacts", json={"last_name": "X", "custom": {"interests": ["sailing", "golf"],
                                                                     "budget": "99"}})
    exported = rita.get("/api/v1/contacts/export?format=csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows[0]["custom.interests"] == "golf; sailing" and rows[0]["custom.budget"] == "99"


def test_type_changes_convert_safely_or_are_refused(app, people):
    admin = api_client(app, people["admin"])
    field = define(admin, object="lead", key="size", type="text", labels={"en": "Size"}, choices=None).json
    rita = api_client(app, people["rita"])
    first = rita.post("/api/v1/leads", json={"last_name": "A", "custom": {"size": "120"}}).json
    second = rita.post("/api/v1/leads", json={"last_name": "B", "custom": {"size": "many"}}).json
    url = f"/api/v1/custom-fields/{field['id']}"
    refused = admin.patch(url, json={"type": "number"}, headers={"If-Match": f'"{field["version"]}"'})
    assert refused.status_code == 422 and "type" in refused.json["error"]["fields"]
    clear_cache()
    assert Lead.get_by_id(first["id"]).custom == {"size": "120"}
    lead = Lead.get_by_id(second["id"])
    rita.patch(f"/api/v1/leads/{lead.id}", json={"custom": {"size": "7"}}, headers={"If-Match": f'"{lead.version}"'})
    done = admin.patch(url, json={"type": "number"}, headers={"If-Match": f'"{field["version"]}"'})
    assert done.status_code == 200, done.json
    clear_cache()
    assert rita.get(f"/api/v1/leads/{first['id']}").json["custom"] == {"size": 120}
    stale = admin.patch(url, json={"required": True}, headers={"If-Match": f'"{field["version"]}"'})
    assert stale.status_code == 412


def test_retired_fields_are_neither_shown_nor_accepted_and_keep_their_values(app, people):
    admin = api_client(app, people["admin"])
    field = define(admin).json
    rita = api_client(app, people["rita"])
    contact = rita.post("/api/v1/contacts", json={"last_name": "X", "custom": {"interests": ["golf"]}}).json
    assert admin.delete(f"/api/v1/custom-fields/{field['id']}").status_code == 204
    clear_cache()
    assert rita.get(f"/api/v1/contacts/{contact['id']}").json["custom"] == {}
    assert rita.post("/api/v1/contacts", json={"last_name": "Y", "custom": {"interests": ["golf"]}}).status_code == 422
    assert Contact.get_by_id(contact["id"]).custom == {"interests": ["golf"]}


@pytest.mark.parametrize("values", [
    {"object": "campaign"}, {"key": "Bad Key"}, {"key": "x" * 41}, {"type": "colour"},
    {"labels": {"vi": "Không"}}, {"choices": []}, {"choices": [{"value": 'a"b'}]},
])
def test_bad_definitions_are_refused(app, people, values):
    admin = api_client(app, people["admin"])
    body = {"object": "contact", "key": "interests", "type": "choice", "labels": {"en": "Interests"},
            "choices": [{"value": "tennis"}], **values}
    response = admin.post("/api/v1/custom-fields", json=body)
    assert response.status_code == 422, response.json


def test_bulk_validation_for_imports(app, people):
    define(api_client(app, people["admin"]))
    define(api_client(app, people["admin"]), key="score", type="number", labels={"en": "Score"}, choices=None)
    check = compile_validator("contact")
    values, errors = check({"interests": "tennis; golf", "score": "12,5"})
    assert values == {"interests": ["golf", "tennis"], "score": 12.5} and errors == {}
    _values, errors = check({"interests": "chess", "score": "x"})
    assert set(errors) == {"custom.interests", "custom.score"}
    assert dumps({"score": values["score"], "interests": values["interests"]}) == \
        '{"interests":["golf","tennis"],"score":12.5}'
    assert export_values("contact", values, ["interests", "score"]) == ["golf; tennis", 12.5]
    assert set(validate("contact", {"score": True})[1]) == {"custom.score"}


def fleet_plugin(*specs):
    import types

    from crm_core import PluginManifest, hookimpl

    module = types.ModuleType("crm_fleet")
    module.manifest = PluginManifest(name="fleet", label="Fleet", version="1.0")
    module.crm_register_custom_fields = hookimpl(lambda app: list(specs))
    return module


def test_hook_crm_register_custom_fields(app_factory, register_plugin):
    register_plugin(fleet_plugin(CustomFieldSpec("lead", "fleet_size", "number", {"en": "Fleet size"})))
    app = app_factory()
    with app.test_request_context():
        from crm_core.customfields.registry import definitions

        assert [(s.key, s.owner) for s in definitions("lead")] == [("fleet_size", "fleet")]
        assert validate("lead", {"fleet_size": "12"}) == ({"fleet_size": 12}, {})
        assert set(validate("lead", {"fleet_size": "x"})[1]) == {"custom.fleet_size"}


def test_a_plugin_field_twice_or_without_choices_stops_the_start(app_factory, register_plugin):
    from crm_core.errors import RegistryError

    register_plugin(fleet_plugin(CustomFieldSpec("lead", "kind", "choice", {"en": "Kind"})))
    with pytest.raises(RegistryError, match="choices"):
        app_factory()


def test_demo_fields_values_and_segment_load_once(app, people):
    from crm_core.accounts.services import create_contact
    from crm_core.customfields import demo
    from crm_core.segments import services as segments
    from crm_core.segments.models import Segment

    for name in ("A", "B", "C", "D"):
        create_contact({"last_name": name, "email": f"{name.lower()}@example.com"}, actor_id=people["rita"].id)
    assert demo.load(people["admin"].id) == 4
    assert demo.load(people["admin"].id) == 0
    segment = Segment.get(Segment.name == "Tennis")
    tennis = [c.last_name for c in segments.mailing_list(segment, people["rita"].id)]
    assert tennis and all("tennis" in Contact.get(Contact.last_name == n).custom["interests"] for n in tennis)
    assert [c.last_name for c in segments.mailing_list(segment, people["bob"].id)] == []
