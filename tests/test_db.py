"""The data layer on both databases: exact money, UTC times, versions, transactions."""

import datetime as dt
import threading
from decimal import Decimal

import peewee
import pytest

from crm_core.db import SQLITE_PRAGMAS, table_name_for, vendor
from crm_core.errors import FieldValueError, VersionConflict
from crm_core.money import Money, minor_digits, to_units
from crm_core.records import create_record, soft_delete, update_record

pytestmark = pytest.mark.crm_plugins("notes")


@pytest.fixture
def Note(app):
    from crm_notes.models import Note

    return Note


@pytest.mark.parametrize("amount", ["1234.505", "0.0001", "-17.25", "922337203685477.5807",
                                    "123456789012.3456"])
def test_money_reads_back_exactly(Note, db, amount):
    note = create_record(Note, title="deal", amount=Decimal(amount), currency="VND")
    stored = Note.get_by_id(note.id)
    assert stored.amount == Decimal(amount)
    assert isinstance(stored.amount, Decimal)
    assert str(stored.amount.normalize()) == str(Decimal(amount).normalize())


def test_money_sum_is_exact(Note, db):
    for value in ["0.1", "0.2", "1234.505", "-0.0001"]:
        create_record(Note, title="x", amount=Decimal(value), currency="PLN")
    total = Note.select(Note.amount.sum()).scalar()
    assert total == Decimal("1234.8049")
    assert isinstance(total, Decimal)


def test_money_refuses_floats_too_many_places_and_overflow(Note, db):
    with pytest.raises(TypeError, match="not a float"):
        create_record(Note, title="x", amount=0.1, currency="EUR")
    with pytest.raises(FieldValueError, match="amount: Use at most 4 decimal places."):
        create_record(Note, title="x", amount=Decimal("1.00001"), currency="EUR")
    with pytest.raises(FieldValueError, match="amount: This amount is too large."):
        create_record(Note, title="x", amount=Decimal("922337203685477.5808"), currency="EUR")
    assert Note.select().count() == 0


def test_amount_never_travels_without_currency(Note, db):
    with pytest.raises(FieldValueError, match="currency: Choose a currency for this amount."):
        create_record(Note, title="x", amount=Decimal("5"))
    note = create_record(Note, title="x")
    with pytest.raises(FieldValueError, match="currency: Choose a currency for this amount."):
        update_record(note, {"amount": Decimal("5")})
    assert Note.get_by_id(note.id).amount is None


def test_currency_must_be_iso_4217(Note, db):
    with pytest.raises(FieldValueError, match="currency: Use a three-letter ISO 4217 currency code."):
        create_record(Note, title="x", amount=Decimal("5"), currency="XYZ1")
    note = create_record(Note, title="x", amount=Decimal("5"), currency="pln")
    assert Note.get_by_id(note.id).currency == "PLN"


def test_money_value_type():
    assert Money("1234.505", "vnd").rounded() == Money(Decimal("1235"), "VND")
    assert Money("1234.505", "PLN").rounded().amount == Decimal("1234.51")
    assert Money("1.2345", "BHD").rounded().amount == Decimal("1.235")
    assert minor_digits("JPY") == 0 and minor_digits("EUR") == 2
    with pytest.raises(ValueError, match="cannot add USD to EUR"):
        Money("1", "EUR") + Money("1", "USD")
    assert Money("1.10", "EUR") + Money("2.05", "EUR") == Money("3.15", "EUR")
    with pytest.raises(FieldValueError, match="amount: Enter a number such as 1234.50."):
        to_units("12,5")


def test_times_are_stored_in_utc_and_come_back_aware(Note, db):
    warsaw = dt.timezone(dt.timedelta(hours=1))
    local = dt.datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=warsaw)
    note = create_record(Note, title="x", remind_at=local)
    stored = Note.get_by_id(note.id).remind_at
    assert stored == local
    assert stored.tzinfo == dt.timezone.utc and stored.hour == 8
    earlier = Note.select().where(Note.remind_at < dt.datetime(2026, 3, 1, 8, 31, tzinfo=dt.timezone.utc))
    assert earlier.count() == 1


def test_naive_datetimes_are_refused(Note, db):
    with pytest.raises(ValueError, match="naive datetime"):
        create_record(Note, title="x", remind_at=dt.datetime(2026, 1, 1, 12, 0))


def test_record_columns_are_filled(Note, db):
    note = create_record(Note, actor_id=7, title="x")
    stored = Note.get_by_id(note.id)
    assert (stored.version, stored.created_by_id, stored.updated_by_id) == (1, 7, 7)
    assert stored.created_at.tzinfo == dt.timezone.utc
    assert stored.deleted_at is None


def test_update_bumps_version_only_when_something_changes(Note, db):
    note = create_record(Note, title="x", body="b")
    assert update_record(note, {"title": "x", "body": "b"}, actor_id=3) == {}
    assert Note.get_by_id(note.id).version == 1
    changed = update_record(note, {"title": "y", "body": "b"}, actor_id=3)
    assert changed == {"title": ("x", "y")}
    stored = Note.get_by_id(note.id)
    assert (stored.version, stored.title, stored.updated_by_id) == (2, "y", 3)


def test_stale_version_writes_nothing(Note, db):
    note = create_record(Note, title="x")
    first_reader, second_reader = Note.get_by_id(note.id), Note.get_by_id(note.id)
    update_record(first_reader, {"title": "first"})
    with pytest.raises(VersionConflict, match="expected version 1, found 2"):
        update_record(second_reader, {"title": "second"})
    assert Note.get_by_id(note.id).title == "first"
    with pytest.raises(VersionConflict):
        update_record(Note.get_by_id(note.id), {"title": "third"}, expected_version=1)


def test_unknown_or_bookkeeping_fields_cannot_be_written(Note, db):
    note = create_record(Note, title="x")
    with pytest.raises(ValueError, match="no writable field 'version'"):
        update_record(note, {"version": 9})
    with pytest.raises(ValueError, match="no writable field 'colour'"):
        update_record(note, {"colour": "red"})


def test_soft_delete_hides_from_alive_and_blocks_updates(Note, db):
    note = create_record(Note, title="x")
    soft_delete(note, actor_id=5)
    assert Note.alive().count() == 0 and Note.select().count() == 1
    assert Note.get_by_id(note.id).deleted_by_id == 5
    with pytest.raises(VersionConflict):
        update_record(note, {"title": "ghost"})


def test_concurrent_writers_lose_no_update(Note, app):
    """Four threads x 25 read-modify-write increments through the conditional update."""
    db = app.extensions["crm_db"]
    with db.connection_context():
        note = create_record(Note, title="0")
    errors = []

    def worker():
        try:
            with app.app_context(), db.connection_context():
                done = 0
                while done < 25:
                    current = Note.get_by_id(note.id)
                    try:
                        update_record(current, {"title": str(int(current.title) + 1)})
                        done += 1
                    except VersionConflict:
                        continue
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with db.connection_context():
        stored = Note.get_by_id(note.id)
    assert stored.title == "100" and stored.version == 101


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(app, db):
    if vendor(db) != "sqlite":
        pytest.skip("SQLite settings")
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == SQLITE_PRAGMAS["busy_timeout"]


def test_write_transactions_take_the_write_lock_first(app, db):
    """BEGIN IMMEDIATE on SQLite: a transaction holds the write lock from its start, so a
    second writer waits at BEGIN instead of failing half-way through its work."""
    import sqlite3

    if vendor(db) != "sqlite":
        pytest.skip("SQLite locking")
    other = sqlite3.connect(db.database, timeout=0, isolation_level=None)
    try:
        with db.atomic():
            # Nothing written yet: with a deferred BEGIN the other writer would get in.
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_foreign_keys_are_enforced(app, db):
    class Parent(peewee.Model):
        class Meta:
            database = db
            table_name = "fk_parent"

    class Child(peewee.Model):
        parent = peewee.ForeignKeyField(Parent)

        class Meta:
            database = db
            table_name = "fk_child"

    db.create_tables([Parent, Child])
    try:
        with pytest.raises(peewee.IntegrityError):
            with db.atomic():
                Child.create(parent=999)
    finally:
        db.drop_tables([Child, Parent])


def test_table_names_follow_the_owner():
    class Opportunity(peewee.Model):
        pass

    class TerritoryMember(peewee.Model):
        pass

    Opportunity.__module__ = "crm_core.opportunities.models"
    TerritoryMember.__module__ = "crm_territory.models"
    assert table_name_for(Opportunity) == "opportunity"
    assert table_name_for(TerritoryMember) == "territory_member"
    TerritoryMember.__name__ = "Region"
    assert table_name_for(TerritoryMember) == "territory_region"


def test_planner_statistics_lead_a_rep_list_to_the_owner_index(app):
    """Without statistics SQLite takes ``deleted_at IS NULL`` for a selective condition and
    walks the soft-delete index over every row; after refresh_statistics a rep's list
    starts from the owner index (the plan of a real list query, on SQLite)."""
    from crm_core.accounts.models import Contact
    from crm_core.db import database, refresh_statistics, utcnow, vendor
    from crm_core.permissions import engine
    from crm_core.testing import make_sales_team

    team = make_sales_team()
    stamp = Contact.created_at.db_value(utcnow())
    with database.atomic():
        database.cursor().executemany(
            'INSERT INTO "contact" ("version", "created_at", "updated_at", "owner_id", "last_name", '
            '"do_not_call", "do_not_email") '
            f"VALUES (1, {database.param}, {database.param}, {database.param}, {database.param}, "
            "FALSE, FALSE)",
            # Rita owns one in forty: her list must start from the owner index.
            [(stamp, stamp, team["rita"].id if i % 40 == 0 else 10_000 + i % 39, f"N{i}") for i in range(4000)])
    refresh_statistics()
    if vendor() != "sqlite":
        return  # PostgreSQL plans from its own statistics; ANALYZE ran without error
    sql, params = engine().query(team["rita"].id, "contact").order_by(Contact.id.desc()).limit(50).sql()
    plan = " ".join(row[3] for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert "contact_owner_id" in plan or "owner_id=?" in plan, plan
    assert "contact_deleted_at" not in plan, plan
