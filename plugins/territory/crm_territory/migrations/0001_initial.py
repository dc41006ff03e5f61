"""The territory plugin's first tables."""

from peewee import BooleanField, CharField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    import datetime

    def now():
        return datetime.datetime.now(datetime.timezone.utc)

    db.create_tables([
        frozen_table(db, "territory_model", {
            **record_columns_v1(),
            "name": CharField(max_length=200),
            "state": CharField(max_length=16, default="planning"),
            "description": TextField(default=""),
            "activated_at": UTCDateTimeField(null=True),
        }),
        frozen_table(db, "territory_territory", {
            **record_columns_v1(),
            "model_id": IntegerField(index=True),
            "parent_id": IntegerField(null=True, index=True),
            "name": CharField(max_length=200),
            "description": TextField(default=""),
            "criteria": TextField(default="{}"),
            "access_level": CharField(max_length=8, default="edit"),
            "manager_id": IntegerField(null=True, index=True),
            "position": IntegerField(default=0),
        }),
        frozen_table(db, "territory_member", {
            "territory_id": IntegerField(),
            "user_id": IntegerField(index=True),
            "created_at": UTCDateTimeField(default=now),
            "created_by_id": IntegerField(null=True),
        }, indexes=((("territory_id", "user_id"), True),)),
        frozen_table(db, "territory_record", {
            "model_id": IntegerField(),
            "object": CharField(max_length=32),
            "record_id": IntegerField(),
            "territory_id": IntegerField(),
            "source": CharField(max_length=8, default="rule"),
            "placed_at": UTCDateTimeField(default=now),
        }, indexes=((("model_id", "object", "record_id"), True),
                    (("territory_id", "object", "record_id"), False))),
        frozen_table(db, "territory_realignment", {
            "model_id": IntegerField(index=True),
            "state": CharField(max_length=16, default="queued"),
            "preview_only": BooleanField(default=False),
            "summary": TextField(default="{}"),
            "moved": IntegerField(default=0),
            "examined": IntegerField(default=0),
            "error": TextField(default=""),
            "created_at": UTCDateTimeField(default=now),
            "created_by_id": IntegerField(null=True),
            "finished_at": UTCDateTimeField(null=True),
        }),
    ])
