"""The importer with the other parts of issue 5: custom-field columns (checked, stored,
updated, field security), duplicate matching (keys stored for new rows, "block" refusing
rows that match a readable record or an earlier line) and the assignment rules (apply and
propose, notifications, nothing in a dry run)."""

import csv
import io
from decimal import Decimal

import pytest
from flask import g

from crm_core.assignment import services as assignment
from crm_core.assignment.models import AssignmentProposal
from crm_core.customfields import services as custom_fields
from crm_core.customfields.registry import clear_cache
from crm_core.duplicates import rules
from crm_core.duplicates.check import find_duplicates_bulk
from crm_core.duplicates.models import MatchKey
from crm_core.errors import UserError
from crm_core.imports import services
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.notifications.models import Notification
from crm_core.org import services as org
from crm_core.testing import make_user


@pytest.fixture
def team(app):
    rita, an, binh, bob = (make_user(f"{n}@example.com", n.title(), locale="en") for n in ("rita", "an", "binh", "bob"))
    for user in (rita, an, binh, bob):
        org.set_roles(user, ["sales_rep"])
    sales = org.create_department("Sales", head=rita.id)
    for user in (rita, an, binh):
        org.place_user(user, sales.id)
    g.pop("_crm_access", None)
    return {"rita": rita, "an": an, "binh": binh, "bob": bob}


@pytest.fixture
def budget(app):
    custom_fields.create_field({"object": "lead", "key": "budget", "type": "money", "currency": "EUR",
                                "labels": {"en": "Budget", "vi": "Ngân sách"}})
    custom_fields.create_field({"object": "lead", "key": "size", "type": "choice",
                                "choices": [{"value": "small", "labels": {"en": "Small"}},
                                            {"value": "large", "labels": {"en": "Large"}}],
                                "labels": {"en": "Size"}})
    clear_cache()


def run_import(user, rows, **options):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    g.pop("_crm_access", None)
    return services.start_import("lead", buffer.getvalue().encode(), "file.csv", user.id, **options)


def codes(run):
    return [(e["row"], e["column"], e["code"]) for e in services.errors(run)]


# -- custom fields -----------------------------------------------------------------------------------------

def test_custom_columns_by_key_or_label_are_checked_and_stored(app, team, budget):
    rita = team["rita"]
    run = run_import(rita, [["last_name", "custom.budget", "Size"], ["Nowak", "1200.5", "large"],
                            ["Trần", "", ""]])
    assert (run.status, run.created_count, codes(run)) == ("done", 2, [])
    nowak, tran = Lead.get(Lead.last_name == "Nowak"), Lead.get(Lead.last_name == "Trần")
    assert (nowak.custom["budget"], nowak.custom["size"]) == (Decimal("1200.50"), "large")
    assert tran.custom == {}
    # Same file again: the custom values are part of the row, so nothing is created twice...
    assert run_import(rita, [["last_name", "custom.budget", "Size"], ["Nowak", "1200.5", "large"]]).skipped_count == 1
    # ...but a row differing only in a custom value is new.
    assert run_import(rita, [["last_name", "custom.budget"], ["Nowak", "99"]]).created_count == 1
    # A label in another language names the field too.
    assert run_import(rita, [["last_name", "Ngân sách"], ["Lê", "7"]]).created_count == 1
    assert Lead.get(Lead.last_name == "Lê").custom["budget"] == Decimal(7)


def test_a_bad_custom_value_refuses_the_file_with_its_column_and_a_translated_message(app, team, budget):
    rita = team["rita"]
    rows = [["last_name", "custom.budget", "custom.size"], ["Good", "10", "small"], ["Bad", "10", "huge"]]
    run = run_import(rita, rows)
    assert run.status == "refused" and codes(run) == [(3, "custom.size", "rejected")]
    assert services.errors(run)[0]["message"] == "Choose one of: small, large."
    assert not Lead.select().exists()  # all or nothing: the good row is not written
    # The message is in the importer's language.
    org_user = team["bob"]
    org_user.locale = "pl"
    org_user.save()
    run = run_import(org_user, [["last_name", "custom.budget"], ["Bad", "1.005"]])
    assert codes(run) == [(2, "custom.budget", "rejected")]
    assert "1.005" == services.errors(run)[0]["value"] and "Use at most" not in services.errors(run)[0]["message"]
    # Partial: the good rows go in.
    run = run_import(rita, rows, partial=True)
    assert (run.created_count, run.refused_count) == (1, 1) and Lead.get().custom["size"] == "small"
    # A mapping to an unknown key is refused before anything runs.
    with pytest.raises(UserError, match="custom.nope"):
        run_import(rita, [["last_name", "x"], ["A", "1"]], mapping={"x": "custom.nope"})
    assert run_import(rita, [["last_name", "y"], ["A", "1"]], mapping={"y": "custom.size"}).refused_count == 1


def test_a_required_custom_field_needs_a_value_on_new_records(app, team):
    custom_fields.create_field({"object": "lead", "key": "segment", "type": "text", "required": True,
                                "labels": {"en": "Segment"}})
    clear_cache()
    run = run_import(team["rita"], [["last_name"], ["Nowak"]])
    assert codes(run) == [(2, "custom.segment", "rejected")] and not Lead.select().exists()
    assert run_import(team["rita"], [["last_name", "custom.segment"], ["Nowak", "SMB"]]).created_count == 1


def test_custom_values_update_through_the_service_merged_with_the_stored_ones(app, team, budget):
    rita = team["rita"]
    lead = leads.create_lead({"last_name": "Nowak", "external_id": "E-1",
                              "custom": {"budget": "5", "size": "small"}}, actor_id=rita.id)
    run = run_import(rita, [["external_id", "custom.budget"], ["E-1", "6"]])
    assert (run.updated_count, codes(run)) == (1, [])
    lead = Lead.get_by_id(lead.id)
    assert (lead.custom["budget"], lead.custom["size"], lead.version) == (Decimal(6), "small", 2)
    # The same value again changes nothing.
    run = run_import(rita, [["external_id", "custom.budget"], ["E-1", "6.00"]])
    assert (run.updated_count, run.skipped_count) == (0, 1) and Lead.get_by_id(lead.id).version == 2
    run = run_import(rita, [["external_id", "custom.size"], ["E-1", "huge"]])
    assert codes(run) == [(2, "custom.size", "rejected")] and Lead.get_by_id(lead.id).custom["size"] == "small"


def test_a_custom_field_the_importer_may_not_edit_refuses_the_file(app, team, budget):
    org.set_field_rules(org.role_by_key("sales_rep"), {("lead", "custom.budget"): "read"})
    run = run_import(team["rita"], [["last_name", "Budget"], ["Nowak", "5"]])
    assert run.status == "failed" and codes(run) == [(1, "Budget", "not_editable")]
    assert not Lead.select().exists()


# -- duplicates ---------------------------------------------------------------------------------------------

def test_new_rows_get_their_match_keys(app, team):
    run = run_import(team["rita"], [["last_name", "email", "phone", "country"],
                                    ["Nowak", "Jan@Budimex.pl", "22 123 45 67", "PL"],
                                    ["Twin", "jan@budimex.pl", "", ""]])
    assert run.created_count == 2  # "off" by default: rows sharing a key both go in
    nowak = Lead.get(Lead.last_name == "Nowak")
    kinds = {(k.kind, k.value) for k in MatchKey.select().where(MatchKey.record_id == nowak.id)}
    assert ("email", "jan@budimex.pl") in kinds and ("phone", "48221234567") in kinds  # the row's country
    assert find_duplicates_bulk("lead", [{"email": "JAN@budimex.pl"}]) == [
        sorted(lead.id for lead in Lead.select())]


def test_the_name_keys_of_imported_rows_follow_in_a_job_that_can_run_again(app, team):
    from crm_core.duplicates.check import find_duplicates
    from crm_core.duplicates.keys import store_name_keys
    from crm_core.duplicates import rules

    rules.save_settings("lead", "warn", list(rules.spec_of("lead").default_rules))
    run = run_import(team["rita"], [["first_name", "last_name", "company"],
                                    ["Jan", "Kowalski", "Budimex"], ["Anna", "Nowak", "Orlen"]])
    assert run.created_count == 2
    ids = sorted(lead.id for lead in Lead.select())
    blocks = list(MatchKey.select().where(MatchKey.kind.in_(["name", "block"]) & MatchKey.record_id.in_(ids))
                  .order_by(MatchKey.record_id, MatchKey.value).tuples())
    assert {row[2] for row in blocks} == set(ids)  # the job ran (inline in tests) for every new lead
    store_name_keys("lead", ids[0], ids[-1])  # again, as after a crash: nothing doubles
    again = list(MatchKey.select().where(MatchKey.kind.in_(["name", "block"]) & MatchKey.record_id.in_(ids))
                 .order_by(MatchKey.record_id, MatchKey.value).tuples())
    assert [row[1:] for row in again] == [row[1:] for row in blocks]
    # a later entry with a typo in the name finds the imported lead through those blocks
    found = find_duplicates("lead", {"first_name": "Jan", "last_name": "Kowalsky"}, team["rita"].id)
    assert [match.record.id for match in found] == [ids[0]]


def test_block_refuses_rows_matching_readable_records_or_an_earlier_line(app, team):
    rita, bob = team["rita"], team["bob"]
    rules.save_settings("lead", "block", list(rules.spec_of("lead").default_rules))
    mine = leads.create_lead({"last_name": "Nowak", "email": "jan@budimex.pl"}, actor_id=rita.id)
    leads.create_lead({"last_name": "Hidden", "email": "secret@bob.pl"}, actor_id=bob.id)
    rows = [["last_name", "email"], ["Again", "JAN@budimex.pl"], ["Fresh", "a@x.pl"], ["Twice", "a@x.pl"],
            ["Other", "secret@bob.pl"]]
    run = run_import(rita, rows)
    assert run.status == "refused"
    assert codes(run) == [(2, "", "duplicate"), (4, "", "duplicate_in_file_key")]
    errors = services.errors(run)
    assert errors[0]["params"] == {"records": str(mine.id)} and str(mine.id) in errors[0]["message"]
    assert "line 3" in errors[1]["message"].lower()
    assert Lead.select().count() == 2  # nothing written
    # A record Rita may not read never blocks (nor is named): partial imports the rest.
    run = run_import(rita, rows, partial=True)
    assert (run.created_count, run.refused_count) == (2, 2)
    assert {lead.last_name for lead in Lead.select()} == {"Nowak", "Hidden", "Fresh", "Other"}
    # Under "warn" the import goes in, updates included (the file is not asked to confirm).
    rules.save_settings("lead", "warn", list(rules.spec_of("lead").default_rules), expected_version=1)
    assert run_import(rita, [["last_name", "email"], ["Third", "a@x.pl"]]).created_count == 1
    leads.update_lead(mine, {"external_id": "E-1"}, actor_id=rita.id)
    run = run_import(rita, [["external_id", "email"], ["E-1", "a@x.pl"]])
    assert (run.updated_count, codes(run)) == (1, [])


def test_block_refuses_an_update_that_would_duplicate(app, team):
    rita = team["rita"]
    rules.save_settings("lead", "block", list(rules.spec_of("lead").default_rules))
    other = leads.create_lead({"last_name": "Other", "email": "a@x.pl"}, actor_id=rita.id)
    leads.create_lead({"last_name": "Mine", "external_id": "E-1"}, actor_id=rita.id)
    run = run_import(rita, [["external_id", "email"], ["E-1", "a@x.pl"]])
    assert codes(run) == [(2, "", "duplicate")] and services.errors(run)[0]["params"] == {"records": str(other.id)}
    assert Lead.get(Lead.external_id == "E-1").email is None


# -- assignment rules -----------------------------------------------------------------------------------------

def test_rows_without_an_owner_take_the_rules_owner_and_owners_are_notified(app, team):
    rita, an, binh = team["rita"], team["an"], team["binh"]
    assignment.create_rule("lead", {"name": "Poland", "owner_id": binh.id,
                                    "conditions": [{"field": "country", "op": "equals", "value": "PL"}]})
    group = assignment.create_group("Pair", [{"user_id": an.id}, {"user_id": binh.id}])
    assignment.create_rule("lead", {"name": "Rest", "group_id": group.id})
    run = run_import(rita, [["last_name", "country", "owner"], ["P1", "PL", ""], ["V1", "VN", ""],
                            ["V2", "VN", ""], ["Named", "PL", "rita@example.com"]])
    assert (run.created_count, codes(run)) == (4, [])
    owners = {lead.last_name: lead.owner_id for lead in Lead.select()}
    assert owners["P1"] == binh.id and {owners["V1"], owners["V2"]} == {an.id, binh.id}
    assert owners["Named"] == rita.id  # the file named an owner: the rules do not touch it
    assert {n.user_id: n.count for n in Notification.select()} == {an.id: 1, binh.id: 2}


def test_proposal_mode_keeps_the_importer_and_records_proposals(app, team):
    rita, an = team["rita"], team["an"]
    assignment.create_rule("lead", {"name": "All", "owner_id": an.id})
    assignment.set_rule_set("lead", expected_version=0, mode="propose")
    run = run_import(rita, [["last_name"], ["A"], ["B"]])
    assert run.created_count == 2 and {lead.owner_id for lead in Lead.select()} == {rita.id}
    assert sorted(p.record_id for p in AssignmentProposal.select().where(AssignmentProposal.proposed_owner_id == an.id)) \
        == sorted(lead.id for lead in Lead.select())


def test_a_dry_run_or_a_refused_file_assigns_and_notifies_nobody(app, team):
    rita, an = team["rita"], team["an"]
    group = assignment.create_group("Solo", [{"user_id": an.id}])
    assignment.create_rule("lead", {"name": "All", "group_id": group.id})
    turns = group.turns
    run_import(rita, [["last_name"], ["A"]], dry_run=True)
    run_import(rita, [["last_name", "email"], ["A", ""], ["B", "not-an-email"]])
    assert not Lead.select().exists() and not Notification.select().exists()
    assert type(group).get_by_id(group.id).turns == turns  # no round-robin turn was taken
    run = run_import(rita, [["last_name"], ["A"]])
    assert Lead.get().owner_id == an.id and Notification.get().user_id == an.id
