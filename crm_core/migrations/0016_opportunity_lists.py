"""Saved views of lists, and the indexes that keep every sorted opportunity list fast
(a rep's list starts from the owner; the others sort the whole table by the key)."""

import datetime

from peewee import BooleanField, CharField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table

OWNER_SORTS = ("updated_at", "name", "amount", "probability")
SORTS = ("expected_close_date", "updated_at", "name", "amount")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    saved_view = frozen_table(db, "saved_view", {
        "object": CharField(max_length=64),
        "name": CharField(max_length=100),
        "owner_id": IntegerField(),
        "shared": BooleanField(default=False),
        "query": TextField(default=""),
        "created_at": UTCDateTimeField(default=_now),
    }, indexes=((("object", "owner_id"), False), (("object", "shared"), False)))
    db.create_tables([saved_view])
    migrator.migrate(*[migrator.add_index("opportunity", ("owner_id", key), False) for key in OWNER_SORTS],
                     *[migrator.add_index("opportunity", (key,), False) for key in SORTS])
