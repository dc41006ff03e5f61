"""The daily pipeline snapshots (one row per open opportunity per day) behind the trend report."""

from peewee import CharField, DateField, ForeignKeyField, IntegerField

from crm_core.db import CurrencyField, MoneyField
from crm_core.migrator import frozen_table


def up(migrator, db):
    opportunity = frozen_table(db, "opportunity", {})
    snapshot = frozen_table(db, "pipeline_snapshot", {
        "day": DateField(),
        "opportunity": ForeignKeyField(opportunity, on_delete="CASCADE"),
        "owner_id": IntegerField(),
        "pipeline_id": IntegerField(),
        "stage_id": IntegerField(),
        "status": CharField(max_length=8),
        "currency": CurrencyField(),
        "amount": MoneyField(null=True),
        "probability": IntegerField(),
        "expected_close_date": DateField(null=True),
    }, indexes=((("day", "opportunity"), True),))
    db.create_tables([snapshot])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("pipeline_snapshot"))
