"""Campaigns (with their cost, to judge what each brings) and leads (with their source
and campaign; converted into an account and a contact once qualified)."""

import peewee

from crm_core.accounts.models import Account, Contact
from crm_core.customfields.models import CustomValuesField
from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.records import RecordModel

LEAD_STATUSES = ("new", "contacted", "qualified", "unqualified", "converted")
LEAD_SOURCES = ("web", "referral", "event", "phone", "email", "partner", "advertising", "other")
LEAD_RATINGS = ("hot", "warm", "cold")
CAMPAIGN_STATUSES = ("planned", "active", "completed", "cancelled")


class Campaign(RecordModel):
    name = peewee.CharField(max_length=200, index=True)
    owner_id = peewee.IntegerField(index=True)
    status = peewee.CharField(max_length=16, default="planned")
    channel = peewee.CharField(max_length=50, null=True)
    start_date = peewee.DateField(null=True)
    end_date = peewee.DateField(null=True)
    currency = CurrencyField(null=True)
    cost = MoneyField(null=True, currency_field="currency")
    description = peewee.TextField(null=True)


class Lead(RecordModel):
    # Indexed by (owner_id, status) below, whose prefix serves every owner lookup: a single
    # owner index as well would only slow every insert (imports write a million rows).
    owner_id = peewee.IntegerField()
    company = peewee.CharField(max_length=200, null=True, index=True)
    first_name = peewee.CharField(max_length=100, null=True)
    last_name = peewee.CharField(max_length=100)
    title = peewee.CharField(max_length=100, null=True)
    email = peewee.CharField(max_length=254, null=True, index=True)
    phone = peewee.CharField(max_length=50, null=True)
    mobile = peewee.CharField(max_length=50, null=True)
    country = peewee.CharField(max_length=2, null=True, index=True)
    region = peewee.CharField(max_length=100, null=True)
    city = peewee.CharField(max_length=100, null=True)
    industry = peewee.CharField(max_length=100, null=True)
    source = peewee.CharField(max_length=20, null=True, index=True)
    campaign = peewee.ForeignKeyField(Campaign, null=True, backref="leads", on_delete="SET NULL")
    status = peewee.CharField(max_length=16, default="new", index=True)
    rating = peewee.CharField(max_length=8, null=True)
    description = peewee.TextField(null=True)
    converted_at = UTCDateTimeField(null=True)
    converted_account = peewee.ForeignKeyField(Account, null=True, backref="+", on_delete="SET NULL")
    converted_contact = peewee.ForeignKeyField(Contact, null=True, backref="+", on_delete="SET NULL")
    custom = CustomValuesField()
    # The record's id in the system it was imported from: imports update by it.
    external_id = peewee.CharField(max_length=100, null=True, unique=True)

    class Meta:
        indexes = ((("owner_id", "status"), False),)
