"""Server-side browser sessions, API tokens and sign-in throttling."""

import datetime

from peewee import CharField, ForeignKeyField, IntegerField, Model

from crm_core.db import UTCDateTimeField


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = "user"

    class UserSession(Model):
        id = CharField(max_length=64, primary_key=True)
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = UTCDateTimeField(default=_now)
        last_seen_at = UTCDateTimeField(default=_now)
        expires_at = UTCDateTimeField(index=True)
        ended_at = UTCDateTimeField(null=True)
        address = CharField(max_length=64, null=True)
        user_agent = CharField(max_length=255, null=True)

        class Meta:
            database = db
            table_name = "user_session"

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=100)
        token_hash = CharField(max_length=64, unique=True)
        prefix = CharField(max_length=12)
        created_at = UTCDateTimeField(default=_now)
        last_used_at = UTCDateTimeField(null=True)
        expires_at = UTCDateTimeField(null=True)
        revoked_at = UTCDateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    class LoginThrottle(Model):
        key = CharField(max_length=300, primary_key=True)
        failures = IntegerField(default=0)
        window_start = UTCDateTimeField()
        blocked_until = UTCDateTimeField(null=True)

        class Meta:
            database = db
            table_name = "login_throttle"

    db.create_tables([UserSession, ApiToken, LoginThrottle])


def down(migrator, db):
    for table in ("login_throttle", "api_token", "user_session"):
        migrator.migrate(migrator.drop_table(table))
