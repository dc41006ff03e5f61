"""Currency rates the company maintains, and ``convert``: money totals shown in one
currency. A rate says what one unit of a currency is worth in the company currency
(``CRM_CURRENCY``) from its date until the currency's next rate."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.db import database
from crm_core.errors import FieldValueError
from crm_core.funnel.models import CurrencyRate
from crm_core.money import SCALE, check_currency
from crm_core.org.services import Problems

STEP = Decimal(1).scaleb(-SCALE)


class MissingRate(LookupError):
    """No rate of ``currency`` is valid on ``on_date``."""

    def __init__(self, currency, on_date):
        super().__init__(f"no rate for {currency} on {on_date}")
        self.currency, self.on_date = currency, on_date


def company_currency():
    return current_app.config.get("CRM_CURRENCY", "USD")


def rate_of(currency, on_date=None):
    """Units of the company currency one unit of ``currency`` is worth on ``on_date``."""
    on_date = on_date or dt.date.today()
    if currency == company_currency():
        return Decimal(1)
    row = (CurrencyRate.select(CurrencyRate.rate)
           .where((CurrencyRate.currency == currency) & (CurrencyRate.valid_from <= on_date))
           .order_by(CurrencyRate.valid_from.desc()).first())
    if row is None:
        raise MissingRate(currency, on_date)
    return Decimal(row.rate)


def convert(amount, currency, to, on_date=None):
    """``amount`` of ``currency`` in ``to`` with the rates valid on ``on_date`` (today by
    default), to the stored precision; raises MissingRate when a rate is missing."""
    return converter(to, on_date)(amount, currency)


def converter(to, on_date=None):
    """``convert`` into ``to`` for many amounts: each rate is read once."""
    known = {}

    def rate(currency):
        if currency not in known:
            known[currency] = rate_of(currency, on_date)
        return known[currency]

    def convert_one(amount, currency):
        amount = Decimal(amount)
        if currency == to:
            return amount
        return (amount * rate(currency) / rate(to)).quantize(STEP, rounding=ROUND_HALF_UP)
    return convert_one


def rates():
    return CurrencyRate.select().order_by(CurrencyRate.currency, CurrencyRate.valid_from.desc())


def create_rate(values, actor_id=None):
    """Record a rate; one per currency and date."""
    problems = Problems()
    currency = values.get("currency")
    try:
        currency = check_currency(currency)
    except FieldValueError as error:
        problems.add("currency", error.message)
    else:
        if currency == company_currency():
            problems.add("currency", _l("The company currency needs no rate."))
    try:
        rate = Decimal(str(values.get("rate", "")).strip())
        if not rate.is_finite() or rate <= 0 or rate.as_tuple().exponent < -12 or rate >= 10**15:
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        problems.add("rate", _l("Enter a rate greater than zero, such as 0.000041."))
        rate = None
    valid_from = values.get("valid_from")
    if isinstance(valid_from, str):
        try:
            valid_from = dt.date.fromisoformat(valid_from)
        except ValueError:
            valid_from = None
    if not isinstance(valid_from, dt.date):
        problems.add("valid_from", _l("Enter a date."))
    problems.check()
    with database.atomic():
        if CurrencyRate.select().where((CurrencyRate.currency == currency)
                                       & (CurrencyRate.valid_from == valid_from)).exists():
            problems.add("valid_from", _l("This currency already has a rate from this date."))
            problems.check()
        return CurrencyRate.create(currency=currency, rate=format(rate.normalize(), "f"),
                                   valid_from=valid_from, created_by_id=actor_id)


def delete_rate(rate):
    CurrencyRate.delete().where(CurrencyRate.id == rate.id).execute()
