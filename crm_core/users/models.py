"""Users and what proves who they are: browser sessions, API tokens, sign-in throttling."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.records import RecordModel


class User(RecordModel):
    email = peewee.CharField(max_length=254, unique=True)
    name = peewee.CharField(max_length=200)
    password_hash = peewee.CharField(max_length=255, null=True)
    locale = peewee.CharField(max_length=10, null=True)
    timezone = peewee.CharField(max_length=64, null=True)
    active = peewee.BooleanField(default=True)
    is_admin = peewee.BooleanField(default=False)
    # Where the user sits: their department, and a manager when it is not the head.
    department = peewee.DeferredForeignKey("Department", null=True, backref="users",
                                           on_delete="SET NULL")
    manager = peewee.ForeignKeyField("self", null=True, backref="reports", on_delete="SET NULL")


class UserSession(BaseModel):
    """A browser session kept on the server: the cookie carries only its random id,
    so logging out or disabling the user ends it for every copy of the cookie."""

    id = peewee.CharField(max_length=64, primary_key=True)  # sha256 of the cookie's token
    user = peewee.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = UTCDateTimeField(default=utcnow)
    last_seen_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField(index=True)
    ended_at = UTCDateTimeField(null=True)
    address = peewee.CharField(max_length=64, null=True)
    user_agent = peewee.CharField(max_length=255, null=True)


class ApiToken(BaseModel):
    """A token for programs; only its SHA-256 is stored, the token is shown once."""

    user = peewee.ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = peewee.CharField(max_length=100)
    token_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=12)  # shown in lists so people can tell tokens apart
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    expires_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)


class LoginThrottle(BaseModel):
    """Failed sign-ins per key (account+address, address, account), shared by every worker."""

    key = peewee.CharField(max_length=300, primary_key=True)
    failures = peewee.IntegerField(default=0)
    window_start = UTCDateTimeField()
    blocked_until = UTCDateTimeField(null=True)
