"""Assignment rules, round-robin groups, proposals, and in-app notifications."""

import datetime

from peewee import BigIntegerField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    rule_set = frozen_table(db, "assignment_rule_set", {
        "object": CharField(max_length=64, primary_key=True),
        "mode": CharField(max_length=16, default="apply"),
        "run_on_create": BooleanField(default=True),
        "version": IntegerField(default=1),
        "updated_at": UTCDateTimeField(default=_now),
        "updated_by_id": IntegerField(null=True),
    })
    group = frozen_table(db, "assignment_group", {
        "name": CharField(max_length=200, unique=True),
        "capacity": IntegerField(null=True),
        "turns": BigIntegerField(default=0),
        "version": IntegerField(default=1),
        "created_at": UTCDateTimeField(default=_now),
        "updated_at": UTCDateTimeField(default=_now),
    })
    member = frozen_table(db, "assignment_group_member", {
        "group": ForeignKeyField(group, on_delete="CASCADE"),
        "user_id": IntegerField(),
        "position": IntegerField(default=0),
        "capacity": IntegerField(null=True),
        "active": BooleanField(default=True),
    }, indexes=((("group", "user_id"), True),))
    rule = frozen_table(db, "assignment_rule", {
        "object": CharField(max_length=64),
        "position": IntegerField(default=0),
        "name": CharField(max_length=200),
        "conditions": TextField(default="[]"),
        "owner_id": IntegerField(null=True),
        "group": ForeignKeyField(group, null=True, on_delete="RESTRICT"),
        "active": BooleanField(default=True),
        "version": IntegerField(default=1),
        "created_at": UTCDateTimeField(default=_now),
        "updated_at": UTCDateTimeField(default=_now),
    }, indexes=((("object", "position"), False),))
    proposal = frozen_table(db, "assignment_proposal", {
        "object": CharField(max_length=64),
        "record_id": BigIntegerField(),
        "rule_id": IntegerField(null=True),
        "proposed_owner_id": IntegerField(),
        "status": CharField(max_length=16, default="pending"),
        "created_at": UTCDateTimeField(default=_now),
        "created_by_id": IntegerField(null=True),
        "decided_at": UTCDateTimeField(null=True),
        "decided_by_id": IntegerField(null=True),
        "owner_id": IntegerField(null=True),
    }, indexes=((("object", "status", "record_id"), False),))
    notification = frozen_table(db, "notification", {
        "user_id": IntegerField(),
        "kind": CharField(max_length=64),
        "object": CharField(max_length=64, null=True),
        "record_id": BigIntegerField(null=True),
        "actor_id": IntegerField(null=True),
        "count": IntegerField(default=1),
        "record_ids": TextField(null=True),
        "created_at": UTCDateTimeField(default=_now),
        "read_at": UTCDateTimeField(null=True),
        "email": CharField(max_length=16, default="pending"),
        "email_attempts": IntegerField(default=0),
        "emailed_at": UTCDateTimeField(null=True),
    }, indexes=((("user_id", "read_at", "created_at"), False), (("email", "id"), False)))
    db.create_tables([rule_set, group, member, rule, proposal, notification])
