"""Aggregates of the opportunity table kept exact by database triggers (migration 0019),
and the currency rates the company maintains.

``amount`` sums the stored money units (ten-thousandths); ``weighted`` sums units times
the probability in percent (divide by 100 for units). Both are NUMERIC: a sum of big
amounts times 100 may not fit a 64-bit integer.
"""

import peewee

from crm_core.db import BaseModel, CurrencyField, UTCDateTimeField, utcnow


class FunnelTotal(BaseModel):
    """Every live opportunity, counted under its owner, pipeline, stage and currency."""

    owner_id = peewee.IntegerField()
    pipeline_id = peewee.IntegerField()
    stage_id = peewee.IntegerField()
    currency = peewee.CharField(max_length=3)
    count = peewee.IntegerField(default=0)
    amount = peewee.DecimalField(max_digits=38, decimal_places=0, default=0)
    weighted = peewee.DecimalField(max_digits=38, decimal_places=0, default=0)

    class Meta:
        table_name = "funnel_total"
        indexes = ((("owner_id", "pipeline_id", "stage_id", "currency"), True),
                   (("pipeline_id", "owner_id"), False))


class FunnelClosedMonth(BaseModel):
    """Every live won or lost opportunity with a closed date, by the month it closed
    (``month`` = year * 100 + month): the win rate over a period reads these."""

    owner_id = peewee.IntegerField()
    pipeline_id = peewee.IntegerField()
    status = peewee.CharField(max_length=8)
    currency = peewee.CharField(max_length=3)
    month = peewee.IntegerField()
    count = peewee.IntegerField(default=0)
    amount = peewee.DecimalField(max_digits=38, decimal_places=0, default=0)

    class Meta:
        table_name = "funnel_closed_month"
        indexes = ((("owner_id", "pipeline_id", "status", "currency", "month"), True),
                   (("pipeline_id", "month"), False))


class CurrencyRate(BaseModel):
    """One unit of ``currency`` is worth ``rate`` units of the company currency from
    ``valid_from`` until the next rate of that currency."""

    currency = CurrencyField()
    rate = peewee.CharField(max_length=40)  # a decimal as text: exact on every database
    valid_from = peewee.DateField()
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)

    class Meta:
        table_name = "currency_rate"
        indexes = ((("currency", "valid_from"), True),)
