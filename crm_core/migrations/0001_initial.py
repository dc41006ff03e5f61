"""Users: the first table every later record refers to."""

import datetime

from peewee import BooleanField, CharField, IntegerField, Model

from crm_core.db import UTCDateTimeField


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    class User(Model):
        version = IntegerField(default=1)
        created_at = UTCDateTimeField(default=_now, index=True)
        created_by_id = IntegerField(null=True)
        updated_at = UTCDateTimeField(default=_now)
        updated_by_id = IntegerField(null=True)
        deleted_at = UTCDateTimeField(null=True, index=True)
        deleted_by_id = IntegerField(null=True)
        email = CharField(max_length=254, unique=True)
        name = CharField(max_length=200)
        password_hash = CharField(max_length=255, null=True)
        locale = CharField(max_length=10, null=True)
        timezone = CharField(max_length=64, null=True)
        active = BooleanField(default=True)
        is_admin = BooleanField(default=False)

        class Meta:
            database = db
            table_name = "user"

    db.create_tables([User])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("user"))
