"""Dates, numbers and money for people: Babel in the active locale and the user's time zone."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import format_date, format_datetime, format_decimal, format_number, get_locale
from babel.numbers import format_currency

from crm_core.money import Money, minor_digits


def money(value, currency=None):
    """``Money`` or (amount, currency) -> '1 234,50 zł', '₫1,234,568' ... (currency digits)."""
    if value is None:
        return ""
    if isinstance(value, Money):
        amount, currency = value.amount, value.currency
    else:
        amount = Decimal(str(value))
    if not currency:
        return format_decimal(amount)
    locale = get_locale()
    rounded = Money(amount, currency).rounded().amount
    return format_currency(rounded, currency, locale=locale, currency_digits=True)


def when(value, format="medium"):
    """A point in time in the reader's time zone and language."""
    return format_datetime(value, format) if value is not None else ""


def day(value, format="medium"):
    return format_date(value, format) if value is not None else ""


def number(value):
    return format_number(value) if value is not None else ""


FILTERS = {"money": money, "when": when, "day": day, "number": number}

__all__ = ["money", "when", "day", "number", "FILTERS", "minor_digits"]
