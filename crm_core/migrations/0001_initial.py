"""Users: the first table every later record refers to."""

from peewee import BooleanField, CharField

from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    db.create_tables([frozen_table(db, "user", {
        **record_columns_v1(),
        "email": CharField(max_length=254, unique=True),
        "name": CharField(max_length=200),
        "password_hash": CharField(max_length=255, null=True),
        "locale": CharField(max_length=10, null=True),
        "timezone": CharField(max_length=64, null=True),
        "active": BooleanField(default=True),
        "is_admin": BooleanField(default=False),
    })])


def down(migrator, db):
    migrator.migrate(migrator.drop_table("user"))
