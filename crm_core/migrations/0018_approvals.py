"""Approvals: policies, requests and the steps of their approver chains."""

import datetime

from peewee import BigIntegerField, BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    policy = frozen_table(db, "approval_policy", {
        "kind": CharField(max_length=64, primary_key=True),
        "active": BooleanField(default=False),
        "settings": TextField(default="{}"),
        "version": IntegerField(default=1),
        "updated_at": UTCDateTimeField(default=_now),
        "updated_by_id": IntegerField(null=True),
    })
    request = frozen_table(db, "approval_request", {
        "kind": CharField(max_length=64),
        "object": CharField(max_length=64),
        "record_id": BigIntegerField(),
        "proposed": TextField(),
        "base": TextField(default="{}"),
        "reasons": TextField(default="[]"),
        "note": TextField(null=True),
        "state": CharField(max_length=16, default="pending"),
        "requested_by_id": IntegerField(null=True),
        "requested_at": UTCDateTimeField(default=_now),
        "decided_at": UTCDateTimeField(null=True),
        "decided_by_id": IntegerField(null=True),
        "version": IntegerField(default=1),
    }, indexes=((("object", "record_id", "state"), False), (("requested_by_id", "state"), False),
                (("state", "requested_at"), False)))
    step = frozen_table(db, "approval_step", {
        "request": ForeignKeyField(request, on_delete="CASCADE"),
        "position": IntegerField(),
        "approver_id": IntegerField(),
        "state": CharField(max_length=16, default="waiting"),
        "decided_at": UTCDateTimeField(null=True),
        "decided_by_id": IntegerField(null=True),
        "comment": TextField(null=True),
    }, indexes=((("request", "position"), True), (("approver_id", "state"), False)))
    db.create_tables([policy, request, step])
