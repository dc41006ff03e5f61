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
    convert.limit = limit  # the importer takes a column whose longest value fits as it is
    return convert


def long_text(value):
    if len(value) > 20000:
        raise Bad("too_long", limit=20000)
    return value


long_text.limit = 20000


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


DAY_FIRST = ("%d.%m.%Y", "%d.%m.%y")
NAMED_MONTH = ("%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d-%b-%Y",
               "%d-%b-%y")
SLASHED = re.compile(r"^(\d{1,4})[/-](\d{1,2})[/-](\d{1,4})$")


def date(value):
    """ISO dates ("2017-03-01", with a time after it too), "2017/3/1", "1.3.2017" (day
    first, as written in Europe), "1 Mar 2017", "Mar 1, 2017", and "1/3/2017" or
    "3/1/2017" when only one reading is a date (13/3/2017 is the 13th of March): a day
    and month that could be swapped are refused rather than guessed."""
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        pass
    for pattern in DAY_FIRST + NAMED_MONTH:
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    match = SLASHED.match(value)
    if match:
        a, b, c = (int(part) for part in match.groups())
        if len(match.group(1)) == 4:
            candidates = {(a, b, c)}
        else:
            year = c + 2000 if c < 100 else c
            candidates = {(year, b, a), (year, a, b)}
        dates = set()
        for year, month, day in candidates:
            try:
                dates.add(dt.date(year, month, day))
            except ValueError:
                continue
        if len(dates) == 1:
            return dates.pop()
        if len(dates) > 1:
            raise Bad("date_ambiguous")
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


SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₫": "VND", "zł": "PLN", "₽": "RUB"}
CODE_AROUND = re.compile(r"^([A-Za-z]{3})\s*(.+)$|^(.+?)\s*([A-Za-z]{3})$")


def money(value):
    """An amount, with or without its currency around it ("1054", "$1,054", "1 054,50 EUR",
    "zł 12"): the number, or (number, currency code) when the cell names one."""
    text_value = value.strip()
    found = None
    for symbol, code in SYMBOLS.items():
        if text_value.startswith(symbol) or text_value.endswith(symbol):
            text_value, found = text_value.strip(symbol).strip(), code
            break
    else:
        match = CODE_AROUND.match(text_value)
        if match:
            found = (match.group(1) or match.group(4)).upper()
            text_value = (match.group(2) or match.group(3)).strip()
    number = amount(_plain_number(text_value))
    return (number, found) if found else number


def _plain_number(value):
    """Money as people write it: "1.234,50" and "1,234.50" (the last mark is the decimal
    one), "1,054" (a lone comma before three digits groups thousands: amounts have cents,
    not thousandths), "1 234" and "1'234"."""
    value = value.replace(" ", "").replace("\u00a0", "").replace("'", "")
    if "," in value and "." in value:
        decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
        grouping = "." if decimal_mark == "," else ","
        return value.replace(grouping, "").replace(decimal_mark, ".")
    if value.count(",") > 1 or (value.count(",") == 1 and re.fullmatch(r"-?\d{1,3},\d{3}", value)):
        return value.replace(",", "")
    if value.count(".") > 1:
        return value.replace(".", "")
    return value.replace(",", ".")


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
        return money, True
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
