"""Accounts (business partners) and their contacts."""

from peewee import BooleanField, CharField, DateField, ForeignKeyField, IntegerField, TextField

from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    account = frozen_table(db, "account", {
        **record_columns_v1(),
        "name": CharField(max_length=200, index=True),
        "kind": CharField(max_length=16, default="prospect", index=True),
        "owner_id": IntegerField(index=True),
        "parent": ForeignKeyField("self", null=True, on_delete="SET NULL"),
        "industry": CharField(max_length=100, null=True, index=True),
        "street": CharField(max_length=300, null=True),
        "city": CharField(max_length=100, null=True),
        "postal_code": CharField(max_length=20, null=True),
        "region": CharField(max_length=100, null=True),
        "country": CharField(max_length=2, null=True, index=True),
        "phone": CharField(max_length=50, null=True),
        "email": CharField(max_length=254, null=True),
        "website": CharField(max_length=300, null=True),
        "registration_number": CharField(max_length=50, null=True),
        "tax_id": CharField(max_length=50, null=True, index=True),
        "employees": IntegerField(null=True),
        "currency": CurrencyField(null=True),
        "credit_limit": MoneyField(null=True),
        "balance": MoneyField(null=True),
        "credit_rating": CharField(max_length=20, null=True),
        "legal_status": CharField(max_length=100, null=True),
        "financial_status": CharField(max_length=20, null=True),
        "became_customer_at": UTCDateTimeField(null=True),
        "description": TextField(null=True),
    }, indexes=((("owner_id", "name"), False),))
    contact = frozen_table(db, "contact", {
        **record_columns_v1(),
        "account": ForeignKeyField(account, null=True, on_delete="RESTRICT"),
        "owner_id": IntegerField(index=True),
        "first_name": CharField(max_length=100, null=True),
        "last_name": CharField(max_length=100, index=True),
        "salutation": CharField(max_length=50, null=True),
        "title": CharField(max_length=100, null=True),
        "department": CharField(max_length=100, null=True),
        "reports_to": ForeignKeyField("self", null=True, on_delete="SET NULL"),
        "email": CharField(max_length=254, null=True, index=True),
        "phone": CharField(max_length=50, null=True),
        "mobile": CharField(max_length=50, null=True),
        "birthday": DateField(null=True),
        "language": CharField(max_length=10, null=True),
        "interests": CharField(max_length=500, null=True),
        "family": CharField(max_length=500, null=True),
        "education": CharField(max_length=300, null=True),
        "preferred_channel": CharField(max_length=20, null=True),
        "do_not_call": BooleanField(default=False),
        "do_not_email": BooleanField(default=False),
        "notes": TextField(null=True),
    })
    db.create_tables([account, contact])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("contact"), migrator.drop_table("account"))
