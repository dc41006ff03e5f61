import peewee

from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.records import RecordModel


class Note(RecordModel):
    title = peewee.CharField(max_length=200)
    body = peewee.TextField(default="")
    amount = MoneyField(null=True)
    currency = CurrencyField(null=True)
    remind_at = UTCDateTimeField(null=True)
