import peewee

from crm_core.db import CurrencyField, MoneyField
from crm_core.records import RecordModel


class FxAccount(RecordModel):
    name = peewee.CharField(max_length=200)
    owner_id = peewee.IntegerField(index=True)
    industry = peewee.CharField(max_length=50, null=True)
    amount = MoneyField(null=True)
    currency = CurrencyField(null=True)


class FxContact(RecordModel):
    name = peewee.CharField(max_length=200)
    owner_id = peewee.IntegerField(index=True)
    account_id = peewee.IntegerField(null=True, index=True)
