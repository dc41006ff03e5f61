"""The recycle bin: groups of soft-deleted records."""

import datetime

from peewee import BigIntegerField, CharField, ForeignKeyField, IntegerField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def up(migrator, db):
    group = frozen_table(db, "recycle_group", {
        "table": CharField(max_length=64),
        "record_id": BigIntegerField(),
        "label": CharField(max_length=300),
        "owner_id": IntegerField(null=True, index=True),
        "deleted_at": UTCDateTimeField(default=lambda: datetime.datetime.now(datetime.timezone.utc),
                                       index=True),
        "deleted_by_id": IntegerField(null=True, index=True),
    })
    item = frozen_table(db, "recycle_item", {
        "group": ForeignKeyField(group, on_delete="CASCADE"),
        "table": CharField(max_length=64),
        "record_id": BigIntegerField(),
        "position": IntegerField(),
    })
    db.create_tables([group, item])
