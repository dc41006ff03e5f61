"""The daily pipeline snapshot: one row per open opportunity per day, as it stood when the
day began (the trend report compares a day's rows with the opportunities now)."""

import peewee

from crm_core.db import BaseModel, CurrencyField, MoneyField
from crm_core.opportunities.models import Opportunity


class PipelineSnapshot(BaseModel):
    day = peewee.DateField()
    opportunity = peewee.ForeignKeyField(Opportunity, backref="+", on_delete="CASCADE")
    owner_id = peewee.IntegerField()
    # Plain ids, not references: a snapshot keeps what was, whatever happens to stages later.
    pipeline_id = peewee.IntegerField()
    stage_id = peewee.IntegerField()
    status = peewee.CharField(max_length=8)
    currency = CurrencyField()
    amount = MoneyField(null=True, currency_field="currency")
    probability = peewee.IntegerField()
    expected_close_date = peewee.DateField(null=True)

    class Meta:
        # One row per opportunity and day: a second run of the day's job adds nothing.
        indexes = ((("day", "opportunity"), True),)
