"""Demo currency rates: the currencies of the demo company's people, so the funnel can
show every deal in the company currency (idempotent)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

# US dollars per unit, around the end of 2026 (believable, not live).
USD_PER_UNIT = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "VND": Decimal("0.0000394"),
                "PLN": Decimal("0.25"), "CNY": Decimal("0.138"), "TWD": Decimal("0.031"),
                "RUB": Decimal("0.0108"), "GBP": Decimal("1.27")}


def load(actor_id=None):
    """Rates from the first of this year into the company currency; returns how many were added."""
    from crm_core.funnel import rates
    from crm_core.funnel.models import CurrencyRate

    company = rates.company_currency()
    if company not in USD_PER_UNIT:
        return 0
    valid_from = dt.date.today().replace(month=1, day=1)
    added = 0
    for currency, usd in USD_PER_UNIT.items():
        if currency == company or CurrencyRate.select().where(CurrencyRate.currency == currency).exists():
            continue
        rate = (usd / USD_PER_UNIT[company]).quantize(Decimal("0.000000001"))
        rates.create_rate({"currency": currency, "rate": str(rate), "valid_from": valid_from}, actor_id=actor_id)
        added += 1
    return added
