from peewee import CharField, TextField

from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    db.create_tables([frozen_table(db, "notes_note", {
        **record_columns_v1(),
        "title": CharField(max_length=200),
        "body": TextField(default=""),
        "amount": MoneyField(null=True),
        "currency": CurrencyField(null=True),
        "remind_at": UTCDateTimeField(null=True),
    })])
