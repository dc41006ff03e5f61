"""Every operation of the OpenAPI document, for every persona, answers as tests/personas.json says."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from flask import g

from crm_core.accounts import services as accounts
from crm_core.duplicates.models import DuplicatePair
from crm_core.leads import services as leads
from crm_core.org import services as org
from crm_core.permissions import Level
from crm_core.recycle import services as recycle
from crm_core.records import create_record
from crm_core.testing import DEFAULT_PASSWORD, api_client, long_lived_app, make_user, reset_database
from crm_core.users.services import issue_token
from crm_core.webforms import services as webforms

TABLE = json.loads((Path(__file__).parent / "personas.json").read_text(encoding="utf-8"))["operations"]
PERSONAS = ("rep_a", "manager", "rep_b", "admin", "auditor", "anonymous")
PLUGINS = ("fx", "territory")
pytestmark = pytest.mark.crm_plugins(*PLUGINS)


def build_world(with_password=False):
    """The same small company for every case (a password hash only when a case signs in:
    argon2 is slow on purpose)."""
    from crm_fx.models import FxAccount

    g.pop("_crm_access", None)
    manager = make_user("manager@example.com", "Manager", password=None)
    rep_a = make_user("rep.a@example.com", "Rep A",
                      password=DEFAULT_PASSWORD if with_password else None)
    rep_b = make_user("rep.b@example.com", "Rep B", password=None)
    auditor = make_user("auditor@example.com", "Auditor", password=None)
    admin = make_user("admin@example.com", "Admin", password=None, is_admin=True)
    for user in (manager, rep_a, rep_b):
        org.set_roles(user, ["sales_rep"])
    org.set_roles(auditor, ["auditor"])
    sales = org.create_department("Sales", head=manager)
    other = org.create_department("Other")
    spare = org.create_department("Spare")
    org.place_user(manager, sales)
    org.place_user(rep_a, sales)
    org.place_user(rep_b, other)
    team = org.create_team("Key accounts", [rep_a.id])
    record = create_record(FxAccount, name="Minh An", owner_id=rep_a.id, industry="retail")
    deleted = create_record(FxAccount, name="Deleted", owner_id=rep_a.id)
    group = recycle.move_to_bin(deleted, actor_id=rep_a.id)
    share = org.share_record("fx_account", record.id, "team", team.id, Level.READ, actor_id=rep_a.id)
    rule = org.create_sharing_rule("fx_account", "Mining", "user", rep_b.id, Level.READ,
                                   field="industry", values=["mining"])
    customer = accounts.create_account({"name": "Công ty Minh An", "industry": "Retail"}, actor_id=rep_a.id)
    contact = accounts.create_contact({"account_id": customer.id, "last_name": "Nguyễn"}, actor_id=rep_a.id)
    campaign = leads.create_campaign({"name": "Vietbuild"}, actor_id=rep_a.id)
    lead = leads.create_lead({"last_name": "Trần", "company": "Sông Hồng", "campaign_id": campaign.id},
                             actor_id=rep_a.id)
    twin = leads.create_lead({"last_name": "Tran", "company": "Song Hong"}, actor_id=rep_a.id)
    pair = DuplicatePair.create(object="lead", low_id=lead.id, high_id=twin.id, reason="name", score=95)
    from crm_core.customfields import services as custom_fields
    from crm_core.segments import services as segments

    custom_field = custom_fields.create_field({"object": "contact", "key": "interests", "type": "multi_choice",
                                               "labels": {"en": "Interests"}, "choices": ["tennis", "golf"]})
    segment = segments.create_segment({"name": "Nguyễn", "object": "contact", "conditions": {
        "field": "last_name", "op": "eq", "value": "Nguyễn"}}, rep_a.id)
    from crm_core.assignment import services as assignment
    from crm_core.assignment.models import AssignmentProposal
    from crm_core.notifications.services import notify_assigned

    assignment_rule = assignment.create_rule("lead", {"name": "Vietnam", "owner_id": rep_a.id, "conditions": [
        {"field": "country", "op": "equals", "value": "VN"}]})
    assignment_group = assignment.create_group("Inside sales", [{"user_id": rep_a.id}])
    proposal = AssignmentProposal.create(object="lead", record_id=lead.id, proposed_owner_id=rep_a.id)
    notify_assigned(rep_a.id, "lead", [lead.id])
    from crm_core.imports import services as imports

    import_run = imports.start_import("lead", b"last_name\nPham\n", "leads.csv", rep_a.id, dry_run=True)
    mapping = imports.save_mapping("lead", "Fair list", {"Surname": "last_name"}, rep_a.id)
    from crm_core.approvals import services as approvals
    from crm_core.opportunities import services as opportunities

    approvals.set_policy("opportunity_change", {"active": True})
    deal = opportunities.create_opportunity({"name": "Racks", "account_id": customer.id, "amount": Decimal("1000")},
                                            actor_id=rep_a.id)
    opportunities.update_opportunity(deal, {"amount": Decimal("5000")}, actor_id=rep_a.id)
    approval = approvals.pending_of("opportunity", deal.id)[0]
    from crm_core.funnel import rates as currency_rates

    currency_rate = currency_rates.create_rate({"currency": "EUR", "rate": "1.1", "valid_from": "2026-01-01"})
    _, rep_a_token = issue_token(rep_a, "laptop")
    web_form = webforms.create_form({"name": "Contact us", "fields": [
        {"name": "last_name", "label": "Name", "required": True}, {"name": "email", "label": "Email"}]},
        actor_id=admin.id)
    from crm_core.opportunities import services as opportunities
    from crm_core.stagegates import services as stage_gates

    negotiating = next(s for s in opportunities.stages(opportunities.default_pipeline()) if s.key == "negotiating")
    stage_gate = stage_gates.create_gate({"stage_id": negotiating.id, "kind": "field", "params": {"field": "amount"}},
                                         actor_id=admin.id)

    deal = opportunities.create_opportunity({"name": "Persona deal", "account_id": customer.id, "amount": 1000,
                                             "currency": "EUR"}, actor_id=rep_a.id)
    member = opportunities.add_member(deal, {"user_id": auditor.id, "role": "executive_sponsor"})
    next_stage = opportunities.stages(deal.pipeline_id)[1]
    projects = opportunities.create_pipeline({"name": "Projects", "stages": [
        {"name": "Scoping"}, {"name": "Signed", "kind": "won", "probability": 100}]})
    project_stages = opportunities.stages(projects)
    lost_reason = opportunities.create_lost_reason({"name": "Price"})
    # Analysis (issue 6, item 7): today's snapshot of the deals above.
    from crm_core.analysis.snapshots import take_snapshot, today

    take_snapshot()
    # Territories (issue 7): rep A in South Vietnam, where the customer and the lead are
    # placed; rep B in another territory (Poland); the manager manages Vietnam, above
    # rep A's territory. A second model waits in planning.
    from crm_territory import services as territories
    from crm_territory.models import TerritoryRecord

    alignment = territories.create_model("2027")
    world_territory = territories.create_territory(alignment.id, "World")
    vietnam = territories.create_territory(alignment.id, "Vietnam", parent_id=world_territory.id,
                                           manager_id=manager.id)
    south_vietnam = territories.create_territory(alignment.id, "South Vietnam", parent_id=vietnam.id)
    poland = territories.create_territory(alignment.id, "Poland", parent_id=world_territory.id)
    territories.activate_model(alignment)
    territories.add_member(south_vietnam, rep_a.id)
    territories.add_member(poland, rep_b.id)
    for object_name, record_id in (("account", customer.id), ("lead", lead.id)):
        TerritoryRecord.create(model_id=alignment.id, object=object_name, record_id=record_id,
                               territory_id=south_vietnam.id)
    next_alignment = territories.create_model("2028")
    people = {"rep_a": rep_a, "manager": manager, "rep_b": rep_b, "admin": admin, "auditor": auditor}
    values = {
        "user_id": rep_a.id, "department_id": spare.id, "team_id": team.id,
        "role_id": org.role_by_key("sales_rep").id, "object_name": "fx_account",
        "record_id": record.id, "fx_account_id": record.id,
        "account_id": customer.id, "contact_id": contact.id, "lead_id": lead.id,
        "campaign_id": campaign.id, "group_id": group.id, "rule_id": rule.id, "share_id": share.id,
        "token_id": rep_a_token.id, "rep_a_email": rep_a.email, "rep_b_id": rep_b.id,
        "password": DEFAULT_PASSWORD, "twin_lead_id": twin.id, "pair_id": pair.id,
        "custom_field_id": custom_field.id, "segment_id": segment.id,
        "segment_object": "contact",
        "web_form_id": web_form.id, "web_form_key": web_form.key,
        "web_form_token": webforms.snippet_token(web_form),
        "assignment_rule_id": assignment_rule.id, "assignment_group_id": assignment_group.id,
        "assignable_object": "lead", "proposal_id": proposal.id,
        "import_id": import_run.id, "mapping_id": mapping.id,
        "stage_gate_id": stage_gate.id,
        "approval_id": approval.id, "approval_kind": "opportunity_change",
        "opportunity_id": deal.id, "member_id": member.id, "next_stage_id": next_stage.id,
        "pipeline_id": projects.id, "stage_id": project_stages[0].id,
        "stage_ids": [s.id for s in reversed(project_stages)], "reason_id": lost_reason.id,
        "currency_rate_id": currency_rate.id,
        "snapshot_day": today().isoformat(),
        "model_id": next_alignment.id, "territory_id": south_vietnam.id,
        "territory_member_id": auditor.id,
    }
    lockable = {"user": rep_a, "department": spare, "record": record, "team": team,
                "role": org.role_by_key("sales_rep"), "default": org.default_of("fx_account"),
                "account": customer, "contact": contact, "lead": lead, "campaign": campaign,
                "custom_field": custom_field, "segment": segment,
                "web_form": web_form,
                "assignment_rule": assignment_rule, "assignment_group": assignment_group,
                "rule_set": assignment.rule_set("lead"), "stage_gate": stage_gate,
                "approval_policy": approvals.policy("opportunity_change"),
                "opportunity": deal, "pipeline": projects, "stage": project_stages[0], "lost_reason": lost_reason,
                "territory_model": next_alignment, "territory": south_vietnam}
    return people, values, lockable


def fill(value, values):
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole:
            return values[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def documented_operations(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items()
            for method in item if method in ("get", "post", "put", "patch", "delete")}


# -- running the cases ----------------------------------------------------------------
# Building an app and the world for each of the ~770 cases took most of the suite's time.
# Each test process builds them once, on a database of its own (no other test's reset
# reaches it); every case runs in a transaction rolled back at its end, so each one sees
# exactly the world build_world() made, whatever ran before it (as in
# test_access_differential). After each case the row count of every table is compared with
# the world's: a write that escaped the transaction fails that case and the world is built
# again for the next one.

@pytest.fixture(scope="session")
def persona_app(crm_database_url, tmp_path_factory):
    with long_lived_app(crm_database_url, tmp_path_factory.mktemp("personas"), plugins=PLUGINS) as application:
        yield application


@pytest.fixture(scope="session")
def worlds():
    """The world built in the persona app's database (one at a time): {with_password: ...}."""
    return {}


def row_counts(db):
    tables = sorted(t for t in db.get_tables() if not t.endswith("_migrations"))
    counts = db.execute_sql("SELECT " + ", ".join(
        f'(SELECT COUNT(*) FROM "{table}")' for table in tables)).fetchone()
    return dict(zip(tables, counts))


def the_world(db, worlds, with_password):
    if with_password not in worlds:
        worlds.clear()
        with db.connection_context():
            reset_database(db)
            built = build_world(with_password=with_password)
            worlds[with_password] = (built, row_counts(db))
    return worlds[with_password]


def test_the_table_covers_every_operation_and_nothing_else(persona_app):
    with persona_app.app_context():
        assert documented_operations(persona_app) == set(TABLE)
    for operation, case in TABLE.items():
        assert set(case["expect"]) == set(PERSONAS), operation


CASES = [pytest.param(operation, persona, id=f"{operation} as {persona}")
         for operation in TABLE for persona in PERSONAS]


@pytest.mark.parametrize("operation, persona", CASES)
def test_persona(persona_app, worlds, operation, persona):
    with persona_app.app_context():
        db = persona_app.extensions["crm_db"]
        (people, values, lockable), counts = the_world(
            db, worlds, with_password=operation == "POST /api/v1/auth/token")
        # One connection for the whole case (a job run inline opens and closes a
        # connection context of its own, which must not end the transaction).
        with db.connection_context():
            with db.atomic() as transaction:
                try:
                    check_case(persona_app, people, values, lockable, operation, persona)
                finally:
                    transaction.rollback()
            left = row_counts(db)
        if left != counts:
            worlds.clear()
            changed = {t: (counts.get(t), n) for t, n in left.items() if counts.get(t) != n}
            pytest.fail(f"the case changed the world outside its transaction: {changed}")


def check_case(app, people, values, lockable, operation, persona):
    case = TABLE[operation]
    method, path = operation.split(" ", 1)
    url = fill(path, values)
    client = app.test_client() if persona == "anonymous" else api_client(app, people[persona])
    headers = {}
    if "if_match" in case:
        headers["If-Match"] = f'"{lockable[case["if_match"]].version}"'
    g.pop("_crm_access", None)
    response = client.open(url, method=method, json=fill(case.get("body"), values),
                           query_string=fill(case.get("query"), values), headers=headers)
    expected = case["expect"][persona]
    assert response.status_code == expected, (operation, persona, response.get_json(silent=True))
    if expected >= 400:
        body = response.get_json()
        assert set(body["error"]) == {"code", "message", "fields"}
