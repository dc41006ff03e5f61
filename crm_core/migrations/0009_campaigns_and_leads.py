"""Campaigns and leads."""

from peewee import CharField, DateField, ForeignKeyField, IntegerField, TextField

from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    campaign = frozen_table(db, "campaign", {
        **record_columns_v1(),
        "name": CharField(max_length=200, index=True),
        "owner_id": IntegerField(index=True),
        "status": CharField(max_length=16, default="planned"),
        "channel": CharField(max_length=50, null=True),
        "start_date": DateField(null=True),
        "end_date": DateField(null=True),
        "currency": CurrencyField(null=True),
        "cost": MoneyField(null=True),
        "description": TextField(null=True),
    })
    account = frozen_table(db, "account", {})
    contact = frozen_table(db, "contact", {})
    lead = frozen_table(db, "lead", {
        **record_columns_v1(),
        "owner_id": IntegerField(index=True),
        "company": CharField(max_length=200, null=True, index=True),
        "first_name": CharField(max_length=100, null=True),
        "last_name": CharField(max_length=100),
        "title": CharField(max_length=100, null=True),
        "email": CharField(max_length=254, null=True, index=True),
        "phone": CharField(max_length=50, null=True),
        "mobile": CharField(max_length=50, null=True),
        "country": CharField(max_length=2, null=True, index=True),
        "region": CharField(max_length=100, null=True),
        "city": CharField(max_length=100, null=True),
        "industry": CharField(max_length=100, null=True),
        "source": CharField(max_length=20, null=True, index=True),
        "campaign": ForeignKeyField(campaign, null=True, on_delete="SET NULL"),
        "status": CharField(max_length=16, default="new", index=True),
        "rating": CharField(max_length=8, null=True),
        "description": TextField(null=True),
        "converted_at": UTCDateTimeField(null=True),
        "converted_account": ForeignKeyField(account, null=True, on_delete="SET NULL"),
        "converted_contact": ForeignKeyField(contact, null=True, on_delete="SET NULL"),
    }, indexes=((("owner_id", "status"), False),))
    db.create_tables([campaign, lead])
