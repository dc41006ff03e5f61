"""Compiled per-column converters: text from a file -> the value a record stores, or
``Bad(code, params)``. Built once per import from the model's fields, so a row costs a few
plain function calls (a marshmallow load per row is three times slower)."""

from __future__ import annotations

import datetime as dt
import decimal
import re

import peewee

from crm_core.db import CurrencyField, MoneyField
from crm_core.record_checks import COUNTRIES, EMAIL

TRUE = frozenset(["1", "true", "yes", "y", "x", "on", "t"])
FALSE = frozenset(["0", "false", "no", "n", "off", "f", "-"])
CURRENCY = re.compile(r"^[A-Za-z]{3}$")


class Bad(Exception):
    def __init__(self, code, **params):
        self.code, self.params = code, params


def text(limit):
    def convert(value):
        if len(value) > limit:
            raise Bad("too_long", limit=limit)
        return value
    return convert


def long_text(value):
    if len(value) > 20000:
        raise Bad("too_long", limit=20000)
    return value


def email(value):
    value = value.lower()
    if len(value) > 254 or not EMAIL.match(value):
        raise Bad("email", email=value)
    return value


def country(value):
    value = value.upper()
    if value not in COUNTRIES:
        raise Bad("country")
    return value


def choice(choices):
    # Files write "New" or "NEW" for the stored "new".
    by_key = {c.lower(): c for c in choices}
    shown = ", ".join(choices)

    def convert(value):
        try:
            return by_key[value.lower()]
        except KeyError:
            raise Bad("choice", choices=shown)
    return convert


def integer(value):
    try:
        number = int(value.replace(" ", ""))
    except ValueError:
        raise Bad("integer")
    if not -2**63 < number < 2**63:
        raise Bad("integer")
    return number


def record_id(value):
    number = integer(value)
    if number < 1:
        raise Bad("integer")
    return number


def boolean(value):
    value = value.lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise Bad("boolean")


def date(value):
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise Bad("date")


def amount(value):
    # "1 234,50" and "1234.50" alike; a lone comma is the decimal mark.
    value = value.replace(" ", "").replace("\u00a0", "")
    if "," in value and "." not in value:
        value = value.replace(",", ".")
    else:
        value = value.replace(",", "")
    try:
        number = decimal.Decimal(value)
    except decimal.InvalidOperation:
        raise Bad("decimal")
    if not number.is_finite() or abs(number) >= 10**14:
        raise Bad("decimal")
    return number


def currency(value):
    if not CURRENCY.match(value):
        raise Bad("currency")
    return value.upper()


def for_field(name, field, choices=None):
    """The converter of one model field, and whether its value needs ``field.db_value``
    before an insert (money is stored scaled, dates as text on SQLite)."""
    if choices:
        return choice(choices), False
    if name == "email":
        return email, False
    if name == "country":
        return country, False
    if isinstance(field, peewee.ForeignKeyField):
        return record_id, False
    if isinstance(field, CurrencyField):
        return currency, False
    if isinstance(field, MoneyField):
        return amount, True
    if isinstance(field, peewee.BooleanField):
        return boolean, False
    if isinstance(field, peewee.IntegerField):
        return integer, False
    if isinstance(field, peewee.DateField):
        return date, True
    if isinstance(field, peewee.CharField):
        return text(field.max_length), False
    if isinstance(field, peewee.TextField):
        return long_text, False
    return None, False
