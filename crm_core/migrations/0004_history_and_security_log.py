"""Field history of business records and the security log."""

import datetime

from peewee import BigAutoField, BigIntegerField, CharField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    db.create_tables([
        frozen_table(db, "field_history", {
            "id": BigAutoField(),
            "table": CharField(max_length=64),
            "record_id": BigIntegerField(),
            "field": CharField(max_length=64),
            "old_value": TextField(null=True),
            "new_value": TextField(null=True),
            "changed_by_id": IntegerField(null=True),
            "changed_at": UTCDateTimeField(default=_now),
            "request_id": CharField(max_length=32, null=True),
        }, indexes=((("table", "record_id", "changed_at"), False),)),
        frozen_table(db, "security_event", {
            "id": BigAutoField(),
            "at": UTCDateTimeField(default=_now, index=True),
            "kind": CharField(max_length=40, index=True),
            "actor_id": IntegerField(null=True, index=True),
            "subject": CharField(max_length=254, null=True),
            "address": CharField(max_length=64, null=True),
            "request_id": CharField(max_length=32, null=True),
            "detail": TextField(null=True),
        }),
    ])
