"""Duplicate detection: rules per object, match keys, the pairs found by the scan."""

import datetime

from peewee import BigIntegerField, CharField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    setting = frozen_table(db, "duplicate_setting", {
        "object": CharField(max_length=64, unique=True),
        "mode": CharField(max_length=8),
        "rules": TextField(),
        "version": IntegerField(default=1),
        "updated_at": UTCDateTimeField(default=_now),
        "updated_by_id": IntegerField(null=True),
    })
    key = frozen_table(db, "match_key", {
        "object": CharField(max_length=64),
        "record_id": BigIntegerField(),
        "kind": CharField(max_length=8),
        "value": CharField(max_length=300),
    }, indexes=((("object", "kind", "value"), False), (("object", "record_id"), False)))
    pair = frozen_table(db, "duplicate_pair", {
        "object": CharField(max_length=64),
        "low_id": BigIntegerField(),
        "high_id": BigIntegerField(),
        "reason": CharField(max_length=16),
        "score": IntegerField(default=100),
        "found_at": UTCDateTimeField(default=_now),
        "dismissed_at": UTCDateTimeField(null=True),
        "dismissed_by_id": IntegerField(null=True),
    }, indexes=((("object", "low_id", "high_id"), True), (("object", "high_id"), False)))
    db.create_tables([setting, key, pair])
