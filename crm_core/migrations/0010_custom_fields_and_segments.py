"""Custom fields (definitions, and one JSON column of values on accounts, contacts and
leads) and saved segments."""

from peewee import BooleanField, CharField, IntegerField, TextField

from crm_core.customfields.models import CustomValuesField
from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    migrator.migrate(*(migrator.add_column(table, "custom", CustomValuesField(null=True))
                       for table in ("account", "contact", "lead")))
    custom_field = frozen_table(db, "custom_field", {
        "object": CharField(max_length=64),
        "key": CharField(max_length=40),
        "type": CharField(max_length=16),
        "labels": TextField(default="{}"),
        "choices": TextField(default="[]"),
        "required": BooleanField(default=False),
        "position": IntegerField(default=0),
        "currency": CharField(max_length=3, null=True),
        "version": IntegerField(default=1),
        "created_at": UTCDateTimeField(),
        "updated_at": UTCDateTimeField(),
        "retired_at": UTCDateTimeField(null=True),
    }, indexes=((("object", "key"), True),))
    segment = frozen_table(db, "segment", {
        **record_columns_v1(),
        "name": CharField(max_length=200),
        "object": CharField(max_length=64),
        "owner_id": IntegerField(index=True),
        "visibility": CharField(max_length=16, default="private"),
        "team_id": IntegerField(null=True),
        "department_id": IntegerField(null=True),
        "conditions": TextField(default='{"all": []}'),
        "description": TextField(null=True),
    }, indexes=((("visibility", "object"), False),))
    db.create_tables([custom_field, segment])
