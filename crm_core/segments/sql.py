"""SQL over the ``custom`` JSON column, for SQLite (``json_extract``) and PostgreSQL
(``jsonb``). Keys are checked snake_case names, so they can sit in a JSON path."""

from __future__ import annotations

import json

import peewee

from crm_core.db import vendor


def _column(model):
    return model._meta.fields["custom"]


def _path(key):
    return f"$.{key}"


def value_of(model, key, kind="text"):
    """The stored value as SQL: text for text, choice and date; a number for number and
    money; 1/0 (SQLite) or boolean (PostgreSQL) for boolean."""
    column = _column(model)
    if vendor() == "sqlite":
        return peewee.fn.json_extract(column, _path(key))
    text = peewee.Expression(column, "->>", peewee.Value(key, unpack=False))
    if kind in ("number", "money"):
        return peewee.Cast(text, "numeric")
    if kind == "boolean":
        return peewee.Cast(text, "boolean")
    return text


def param(value, kind):
    """A Python value as the driver binds it against ``value_of`` (SQLite has no Decimal)."""
    if kind in ("number", "money") and vendor() == "sqlite":
        return float(value)
    if kind == "boolean" and vendor() == "sqlite":
        return 1 if value else 0
    return value


def _contains_json(model, document):
    """``custom @> document`` (PostgreSQL, served by the GIN index on ``custom``)."""
    return peewee.Expression(_column(model), "@>",
                             peewee.Cast(peewee.Value(json.dumps(document), unpack=False), "jsonb"))


def equals(model, key, value, kind):
    if vendor() == "postgresql" and kind in ("text", "choice", "boolean", "date"):
        return _contains_json(model, {key: value})
    return value_of(model, key, kind) == param(value, kind)


def includes(model, key, value):
    """A multi-choice field holds ``value``."""
    if vendor() == "postgresql":
        return _contains_json(model, {key: [value]})
    # The stored list comes back as JSON text; choice values hold no quotes (registry.CHOICE_VALUE).
    return peewee.fn.instr(value_of(model, key), json.dumps(value, ensure_ascii=False)) > 0


def has_key(model, key):
    if vendor() == "postgresql":
        return peewee.Expression(_column(model), "->", peewee.Value(key, unpack=False)).is_null(False)
    return value_of(model, key).is_null(False)


def contains_text(expression, text):
    """Case-insensitive substring (``text`` already lower-case); no LIKE wildcards to escape."""
    if vendor() == "postgresql":
        return peewee.fn.strpos(peewee.fn.lower(expression), text) > 0
    return peewee.fn.instr(peewee.fn.lower(expression), text) > 0
