"""The user table."""

import peewee

from crm_core.records import RecordModel


class User(RecordModel):
    email = peewee.CharField(max_length=254, unique=True)
    name = peewee.CharField(max_length=200)
    password_hash = peewee.CharField(max_length=255, null=True)
    locale = peewee.CharField(max_length=10, null=True)
    timezone = peewee.CharField(max_length=64, null=True)
    active = peewee.BooleanField(default=True)
    is_admin = peewee.BooleanField(default=False)
