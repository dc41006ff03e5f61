"""Stage gates: the requirements of moving an opportunity into a stage."""

import datetime

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    stage = frozen_table(db, "stage", {})
    gate = frozen_table(db, "stage_gate", {
        "stage": ForeignKeyField(stage, on_delete="CASCADE"),
        "kind": CharField(max_length=100),
        "params": TextField(default="{}"),
        "also_backwards": BooleanField(default=False),
        "position": IntegerField(default=0),
        "version": IntegerField(default=1),
        "created_at": UTCDateTimeField(default=_now),
        "created_by_id": IntegerField(null=True),
        "updated_at": UTCDateTimeField(default=_now),
        "updated_by_id": IntegerField(null=True),
    }, indexes=((("stage", "position"), False),))
    db.create_tables([gate])
