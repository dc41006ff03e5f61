from peewee import CharField, IntegerField

from crm_core.db import CurrencyField, MoneyField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    db.create_tables([
        frozen_table(db, "fx_account", {
            **record_columns_v1(),
            "name": CharField(max_length=200),
            "owner_id": IntegerField(index=True),
            "industry": CharField(max_length=50, null=True),
            "amount": MoneyField(null=True),
            "currency": CurrencyField(null=True),
        }),
        frozen_table(db, "fx_contact", {
            **record_columns_v1(),
            "name": CharField(max_length=200),
            "owner_id": IntegerField(index=True),
            "account_id": IntegerField(null=True, index=True),
        }),
    ])
