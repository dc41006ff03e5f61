"""The data layer: one DatabaseProxy, the connection factory, BaseModel and its fields.

SQLite (default) and PostgreSQL behave the same for everything the core relies
on: UTC timestamps, exact money, write transactions that take the write lock
first (``BEGIN IMMEDIATE`` on SQLite), foreign keys enforced.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse import db_url
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from flask_babel import lazy_gettext as _l

from crm_core import money
from crm_core.errors import FieldValueError

# Models are declared at import time and bound to this proxy; create_app points
# it at the application's database (see bind_database).
database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    # First, so that the pragmas after it wait for a busy database instead of failing.
    "busy_timeout": 10000,
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -32000,
}


class SqliteCrmDatabase(PooledSqliteDatabase):
    field_types = {**PooledSqliteDatabase.field_types, "TIMESTAMPTZ": "TEXT", "MONEY": "BIGINT",
                   "CUSTOMJSON": "TEXT"}

    @property
    def vendor(self):
        return "sqlite"


class PostgresCrmDatabase(PooledPostgresqlDatabase):
    field_types = {**PooledPostgresqlDatabase.field_types,
                   "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "MONEY": "BIGINT",
                   "CUSTOMJSON": "JSONB"}

    @property
    def vendor(self):
        return "postgresql"


def open_database(url, pool_size=16):
    """Create (not connect) the peewee database for a ``CRM_DATABASE_URL``."""
    parsed = urlparse(url)
    params = db_url.parse(url)
    if parsed.scheme == "sqlite":
        path = params.pop("database")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteCrmDatabase(
            path, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", timeout=10,
            max_connections=pool_size, stale_timeout=300, check_same_thread=False, **params)
    name = params.pop("database")
    return PostgresCrmDatabase(
        name, max_connections=pool_size, stale_timeout=300, prefer_psycopg3=True,
        **params)


def bind_database(db):
    """Point the shared proxy at ``db`` (each app does this when it is created and
    whenever one of its contexts is pushed, so several apps can live in one process)."""
    if database.obj is not db:
        database.initialize(db)


def vendor(db=None):
    db = db or database.obj
    return getattr(db, "vendor", "sqlite" if isinstance(db, peewee.SqliteDatabase) else "postgresql")


# -- planner statistics -------------------------------------------------------------

# A bulk write this large refreshes the statistics at once instead of waiting for the hour.
BULK_ROWS_FOR_STATISTICS = 10_000


def refresh_statistics(db=None):
    """Refresh the query planner's statistics (``ANALYZE``).

    Without them SQLite guesses that ``deleted_at IS NULL`` is as selective as an owner, walks
    the soft-delete index over every row and turns a 2 ms first page of a rep's list into
    50 ms; PostgreSQL's autovacuum catches up by itself, but only some time after a bulk load.
    SQLite samples at most ``analysis_limit`` rows per index, so this stays well under a
    second on millions of rows. Called hourly by a job, after migrations and after bulk writes.
    """
    db = db or database.obj
    if vendor(db) == "sqlite":
        db.execute_sql("PRAGMA analysis_limit = 1000")
    db.execute_sql("ANALYZE")


# -- naming ------------------------------------------------------------------------

def table_name_for(model_class):
    """``crm_core`` models: snake_case class name; ``crm_<plugin>`` models: ``<plugin>_<name>``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", model_class.__name__).lower()
    root = model_class.__module__.split(".")[0]
    if root == "crm_core":
        return snake
    prefix = root[4:] if root.startswith("crm_") else root
    return snake if snake.startswith(prefix + "_") else f"{prefix}_{snake}"


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False
        table_function = table_name_for


# -- fields ------------------------------------------------------------------------

def utcnow():
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTimeField(peewee.Field):
    """A point in time, stored in UTC and always returned timezone-aware (UTC).

    Naive datetimes are refused: they are the bug this field exists to prevent.
    SQLite keeps fixed-width ISO text (sortable); PostgreSQL ``timestamptz``.
    """

    field_type = "TIMESTAMPTZ"
    FORMAT = "%Y-%m-%d %H:%M:%S.%f"

    def db_value(self, value):
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{self.name}: expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{self.name}: naive datetime; pass an aware datetime (UTC)")
        value = value.astimezone(dt.timezone.utc)
        return value.strftime(self.FORMAT) if vendor() == "sqlite" else value

    def python_value(self, value):
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.strptime(value, self.FORMAT).replace(tzinfo=dt.timezone.utc)
        elif value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class CurrencyField(peewee.CharField):
    """An ISO 4217 currency code, upper case."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if value is None:
            return None
        return money.check_currency(value, self.name)


class MoneyField(peewee.Field):
    """An exact amount, stored as a scaled integer (ten-thousandths) on every database.

    The same integer representation on SQLite and PostgreSQL keeps arithmetic
    exact and SQL identical on both (SQLite has no decimal type, and peewee's
    DecimalField stores a float there). ``currency_field`` names the sibling
    CurrencyField: an amount is never saved without its currency.
    Aggregate with ``Model.amount.sum()``, which converts back to Decimal.
    """

    field_type = "MONEY"

    def __init__(self, currency_field="currency", *args, **kwargs):
        self.currency_field = currency_field
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if value is None:
            return None
        if isinstance(value, money.Money):
            value = value.amount
        return money.to_units(value, self.name)

    def python_value(self, value):
        if value is None:
            return None
        return money.from_units(value)

    def sum(self):
        """SUM of the column as an exact Decimal (peewee leaves SUM unconverted)."""
        return peewee.fn.SUM(self).coerce(True)


def check_money_pairs(instance):
    """Raise FieldValueError when an amount is set without its currency."""
    for field in instance._meta.sorted_fields:
        if isinstance(field, MoneyField) and field.currency_field:
            if getattr(instance, field.name) is not None and not getattr(
                    instance, field.currency_field, None):
                raise FieldValueError(field.currency_field, _l("Choose a currency for this amount."))
