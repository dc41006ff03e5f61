"""Accounts and contacts.

An account is one record for every business partner, whatever its kind; its parent is
the customer's own group structure. Contacts belong to an account (or to none yet) and
report to one another: the customer's org chart.
"""

import peewee

from crm_core.customfields.models import CustomValuesField
from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.records import RecordModel

ACCOUNT_KINDS = ("prospect", "customer", "reseller", "vendor")


class Account(RecordModel):
    name = peewee.CharField(max_length=200, index=True)
    kind = peewee.CharField(max_length=16, default="prospect", index=True)
    owner_id = peewee.IntegerField()  # indexed by (owner_id, name), below
    parent = peewee.ForeignKeyField("self", null=True, backref="subsidiaries", on_delete="SET NULL")
    industry = peewee.CharField(max_length=100, null=True, index=True)
    # Address: country is an ISO 3166 code; region is the state, province or oblast.
    street = peewee.CharField(max_length=300, null=True)
    city = peewee.CharField(max_length=100, null=True)
    postal_code = peewee.CharField(max_length=20, null=True)
    region = peewee.CharField(max_length=100, null=True)
    country = peewee.CharField(max_length=2, null=True, index=True)
    phone = peewee.CharField(max_length=50, null=True)
    email = peewee.CharField(max_length=254, null=True)
    website = peewee.CharField(max_length=300, null=True)
    registration_number = peewee.CharField(max_length=50, null=True)
    tax_id = peewee.CharField(max_length=50, null=True, index=True)
    employees = peewee.IntegerField(null=True)
    # Credit: the limit and the open balance share the account's currency.
    currency = CurrencyField(null=True)
    credit_limit = MoneyField(null=True, currency_field="currency")
    balance = MoneyField(null=True, currency_field="currency")
    credit_rating = peewee.CharField(max_length=20, null=True)
    legal_status = peewee.CharField(max_length=100, null=True)
    financial_status = peewee.CharField(max_length=20, null=True)
    became_customer_at = UTCDateTimeField(null=True)
    description = peewee.TextField(null=True)
    custom = CustomValuesField()
    # The record's id in the system it was imported from: imports update by it.
    external_id = peewee.CharField(max_length=100, null=True, unique=True)

    class Meta:
        indexes = ((("owner_id", "name"), False),)


class Contact(RecordModel):
    account = peewee.ForeignKeyField(Account, null=True, backref="contacts", on_delete="RESTRICT")
    owner_id = peewee.IntegerField(index=True)
    first_name = peewee.CharField(max_length=100, null=True)
    last_name = peewee.CharField(max_length=100, index=True)
    salutation = peewee.CharField(max_length=50, null=True)
    title = peewee.CharField(max_length=100, null=True)
    department = peewee.CharField(max_length=100, null=True)
    reports_to = peewee.ForeignKeyField("self", null=True, backref="reports", on_delete="SET NULL")
    email = peewee.CharField(max_length=254, null=True, index=True)
    phone = peewee.CharField(max_length=50, null=True)
    mobile = peewee.CharField(max_length=50, null=True)
    # What a salesperson learns about the person: brochure 002's "deep attributes".
    birthday = peewee.DateField(null=True)
    language = peewee.CharField(max_length=10, null=True)
    interests = peewee.CharField(max_length=500, null=True)
    family = peewee.CharField(max_length=500, null=True)
    education = peewee.CharField(max_length=300, null=True)
    preferred_channel = peewee.CharField(max_length=20, null=True)
    do_not_call = peewee.BooleanField(default=False)
    do_not_email = peewee.BooleanField(default=False)
    notes = peewee.TextField(null=True)
    custom = CustomValuesField()
    # The record's id in the system it was imported from: imports update by it.
    external_id = peewee.CharField(max_length=100, null=True, unique=True)
