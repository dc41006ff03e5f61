"""Custom field definitions and the column that holds a record's custom values.

Values live in one JSON column (``custom``) on each record table that opts in: one
column written with the record (bulk imports add one value per row, not one row per
field), read with the record (API, pages, exports), and queried by segments with the
database's JSON operators (``json_extract`` on SQLite, ``jsonb`` on PostgreSQL). See
docs/decisions.md, "Custom field values in one JSON column".
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow

TYPES = ("text", "number", "money", "date", "choice", "multi_choice", "boolean")


def _loads(text):
    return json.loads(text, parse_float=Decimal)


def _default(value):
    if isinstance(value, Decimal):
        return float(value)  # numbers stay JSON numbers: ranges compare as numbers in SQL
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


# Built once: json.dumps with options builds an encoder per call (a third of the cost).
_ENCODER = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_encode_text = json.encoder.encode_basestring


def encode_value(value):
    """One value as ``dumps`` writes it inside its dict (the importer encodes a column at a
    time): the common kinds directly, the encoder's own path for the rest."""
    kind = value.__class__
    if kind is str:
        return _encode_text(value)
    if kind is Decimal:
        number = float(value)
        if number - number == 0:  # finite: written as the encoder writes a float
            return float.__repr__(number)
    elif kind is int:
        return int.__repr__(value)
    return _ENCODER.encode(value)


def dumps(values):
    """The column's text for a dict of storage values (None for no values): what a bulk
    insert writes into ``custom``."""
    if not values:
        return None
    return _ENCODER.encode(values)


class CustomValuesField(peewee.Field):
    """``{key: value}`` in storage form (see ``crm_core.customfields.values``); an empty
    dict when the record has none. TEXT on SQLite, JSONB on PostgreSQL."""

    field_type = "CUSTOMJSON"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if isinstance(value, str) or value is None:
            return value
        return dumps(value)

    def python_value(self, value):
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            return _loads(value)
        # psycopg2 decodes jsonb itself, with floats: back to exact decimals.
        return {k: (Decimal(repr(v)) if isinstance(v, float) else v) for k, v in value.items()}


class CustomField(BaseModel):
    """A field an administrator added to an object (``object`` = access object name)."""

    object = peewee.CharField(max_length=64)
    key = peewee.CharField(max_length=40)
    type = peewee.CharField(max_length=16)
    labels = peewee.TextField(default="{}")    # {"en": "Interests", "vi": "Sở thích", ...}
    choices = peewee.TextField(default="[]")   # [{"value": "tennis", "labels": {...}}]
    required = peewee.BooleanField(default=False)
    position = peewee.IntegerField(default=0)
    currency = peewee.CharField(max_length=3, null=True)
    version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    retired_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("object", "key"), True),)
