"""The importer works a batch's columns at a time: each row still reports its first error
(in the order of the file's columns and of the steps), batches of a file behave as one file
(line numbers, twins across batches, all or nothing), and the column-wise helpers give what
their row-by-row versions give."""

import csv
import datetime as dt
import io
import random
from decimal import Decimal

import pytest
from flask import g

from crm_core.customfields import compile_columns, compile_validator, dumps
from crm_core.customfields import services as custom_fields
from crm_core.customfields.models import encode_value
from crm_core.customfields.registry import clear_cache
from crm_core.duplicates import rules
from crm_core.duplicates.keys import keys_for, keys_for_columns
from crm_core.imports import pipeline, services
from crm_core.leads import services as leads
from crm_core.leads.models import Lead
from crm_core.org import services as org
from crm_core.testing import make_user


@pytest.fixture
def rita(app):
    user = make_user("rita@example.com", "Rita", locale="en")
    org.set_roles(user, ["sales_rep"])
    g.pop("_crm_access", None)
    return user


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(pipeline, "BATCH", 2)


def run_import(user, rows, **options):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    g.pop("_crm_access", None)
    return services.start_import("lead", buffer.getvalue().encode(), "file.csv", user.id, **options)


def report(run):
    return [(e["row"], e["column"], e["value"], e["code"]) for e in services.errors(run)]


def test_each_row_reports_its_first_error_in_the_order_of_the_columns_and_steps(app, rita):
    leads.create_campaign({"name": "Vietbuild"}, actor_id=rita.id)
    run = run_import(rita, [
        ["last_name", "email", "country", "campaign", "status"],
        ["Two bad", "nope", "XX", "Vietbuild", "new"],          # email before country
        ["Bad country", "a@x.pl", "XX", "", "won"],             # country before status
        ["Bad lookup", "b@x.pl", "PL", "Nowhere", "new"],       # converters before relations
        ["", "c@x.pl", "PL", "Nowhere", "new"],                 # relations before required
        ["", "d@x.pl", "PL", "vietbuild", "new"],               # required
        ["Good", "e@x.pl", "pl", "VIETBUILD", "New"],
    ], partial=True)
    assert report(run) == [(2, "email", "nope", "email"), (3, "country", "XX", "country"),
                           (4, "campaign", "Nowhere", "not_found"), (5, "campaign", "Nowhere", "not_found"),
                           (6, "last_name", "", "required")]
    good = Lead.get()
    assert (good.last_name, good.email, good.country, good.status, good.campaign.name) == (
        "Good", "e@x.pl", "PL", "new", "Vietbuild")


def test_text_longer_than_its_field_is_refused_in_the_rows_that_have_it(app, rita):
    run = run_import(rita, [["last_name", "first_name", "description"], ["A", "Jan", "short"],
                            ["B", "x" * 101, ""], ["C", "", "y" * 20001], ["D", "Anna", "z" * 20000]],
                     partial=True)
    assert report(run) == [(3, "first_name", "x" * 101, "too_long"), (4, "description", "y" * 20001, "too_long")]
    assert {lead.last_name: lead.first_name for lead in Lead.select()} == {"A": "Jan", "D": "Anna"}


def test_custom_values_are_checked_a_value_at_a_time_and_stored_as_json(app, rita):
    custom_fields.create_field({"object": "lead", "key": "budget", "type": "money", "currency": "EUR",
                                "labels": {"en": "Budget"}})
    clear_cache()
    run = run_import(rita, [["last_name", "custom.budget"], ["A", "12,50"], ["B", "lots"], ["C", ""]],
                     partial=True)
    assert report(run) == [(3, "custom.budget", "lots", "rejected")]
    stored = {lead.last_name: lead.custom for lead in Lead.select()}
    assert stored == {"A": {"budget": Decimal("12.5")}, "C": {}}


def test_batches_of_one_file_behave_as_the_file(app, rita, small_batches):
    rows = [["external_id", "last_name", "company"],
            ["E-1", "Nowak", "Budimex"], ["", "Trần", "Sông Hồng"],
            ["", "Trần", "Sông Hồng"],            # the same values as line 3, in the next batch
            ["E-1", "Again", ""],                 # the external id of line 2, two batches later
            ["", "", "Orlen"]]                    # line 6: required
    run = run_import(rita, rows)
    assert (run.status, report(run)) == ("refused", [(5, "external_id", "E-1", "duplicate_in_file"),
                                                     (6, "last_name", "", "required")])
    assert not Lead.select().exists()  # all or nothing, across batches
    run = run_import(rita, rows, partial=True)
    assert (run.created_count, run.skipped_count, run.refused_count) == (2, 1, 2)
    assert sorted(lead.last_name for lead in Lead.select()) == ["Nowak", "Trần"]


def test_duplicate_keys_twice_in_a_file_are_refused_across_batches(app, rita, small_batches):
    rules.save_settings("lead", "block", list(rules.spec_of("lead").default_rules))
    run = run_import(rita, [["last_name", "email", "phone", "country"],
                            ["A", "a@x.pl", "601 234 567", "PL"], ["B", "b@x.pl", "", ""],
                            ["C", "c@x.pl", "+48 601-234-567", ""], ["D", "B@X.PL", "", ""],
                            ["E", "e@x.pl", "", ""], ["F", "E@x.pl", "", ""]], partial=True)
    # A twin in an earlier batch is a record by now: it is named; one in the same batch, its line.
    ids = {lead.last_name: lead.id for lead in Lead.select()}
    assert [(e["row"], e["code"], e["params"]) for e in services.errors(run)] == [
        (4, "duplicate", {"records": str(ids["A"])}), (5, "duplicate", {"records": str(ids["B"])}),
        (7, "duplicate_in_file_key", {"line": 6})]
    assert sorted(ids) == ["A", "B", "E"]


def test_steps_added_row_by_row_see_and_change_the_rows(app, rita):
    from crm_core.imports.reading import Limits, read
    from crm_core.imports.registry import import_objects

    def no_spam(row):
        if row.values.get("email", "").endswith("@spam.example"):
            row.fail("email", row.values["email"], "rejected", message="spam")
        else:
            row.values["city"] = "Hà Nội"

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [["last_name", "email"], ["A", "a@x.vn"], ["B", "b@spam.example"]])
    table = read(buffer.getvalue().encode(), "x.csv", Limits())
    importer = pipeline.Importer(import_objects()["lead"], rita.id, table.header, partial=True)
    importer.add_step(no_spam, after="required")
    seen = []
    importer.after_insert.append(lambda rows: seen.extend((row.id, row.values["city"]) for row in rows))
    result = importer.run(table.rows)
    assert (result.created, result.errors[0]["row"], result.errors[0]["params"]) == (1, 3, {"message": "spam"})
    lead = Lead.get()
    assert (lead.city, seen) == ("Hà Nội", [(lead.id, "Hà Nội")])


def test_column_keys_are_the_keys_of_each_row(app):
    random.seed(5)
    emails = [None, "", "A@b.co", " a @b.co", "bad", "Ünï@ex.com", "mailto:<Q@W.EU>"]
    phones = [None, "", "+48 601 234 567", "601234567", "0601 234 567 x12", "123", "8 (495) 123-45-67 доб. 3"]
    taxes = [None, "PL 526-10-00-645", "5261000645", "DE12"]
    count = 500
    countries = [random.choice(["", "PL", "RU", "VN"]) for _ in range(count)]
    exact = frozenset({"email", "phone", "tax_id"})
    for name, columns in (
            ("lead", {"email": emails, "phone": phones, "mobile": phones[::-1]}),
            ("account", {"email": emails, "phone": phones, "tax_id": taxes}),
            ("lead", {"last_name": emails})):
        columns = {key: [random.choice(values) for _ in range(count)] for key, values in columns.items()}
        rows = [{key: values[i] for key, values in columns.items()} for i in range(count)]
        for kinds in (exact, None):
            assert keys_for_columns(name, columns, countries, kinds=kinds) == [
                keys_for(name, row, country=country, kinds=kinds) for row, country in zip(rows, countries)]


def test_column_custom_values_are_checked_and_encoded_as_row_by_row(app):
    custom_fields.create_field({"object": "lead", "key": "budget", "type": "money", "currency": "EUR",
                                "labels": {"en": "Budget"}})
    custom_fields.create_field({"object": "lead", "key": "segment", "type": "text", "required": True,
                                "labels": {"en": "Segment"}})
    clear_cache()
    budgets = ["12,50", None, "lots", "1 000"]
    segments = ["SMB", "SMB", None, None]
    for partial in (False, True):
        for columns in ({"budget": budgets, "segment": segments}, {"budget": budgets}):
            values, errors = compile_columns("lead", list(columns), partial=partial)(columns, 4)
            for index in range(4):
                row = {key: column[index] for key, column in columns.items()}
                want_values, want_errors = compile_validator("lead", partial=partial)(row)
                if not want_errors:  # a refused row's values are never used
                    assert {key: column[index] for key, column in values.items()} == want_values
                found = errors.get(index)
                found = (found[0], str(found[1])) if found else None
                want = next(iter(want_errors.items())) if want_errors else None
                assert found == ((want[0], str(want[1])) if want else None)
    for value in ("Thảo \"x\"", 5, True, Decimal("12.50"), Decimal("1E+3"), dt.date(2026, 11, 30),
                  ["a", "b"], 1.5):
        assert "{" + encode_value("budget") + ":" + encode_value(value) + "}" == dumps({"budget": value})
