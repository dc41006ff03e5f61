import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow


class FieldHistory(BaseModel):
    """One changed field of one record: old and new value, who, when, in which request.
    Written in the same transaction as the change."""

    id = peewee.BigAutoField()
    table = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    field = peewee.CharField(max_length=64)
    old_value = peewee.TextField(null=True)
    new_value = peewee.TextField(null=True)
    changed_by_id = peewee.IntegerField(null=True)
    changed_at = UTCDateTimeField(default=utcnow)
    request_id = peewee.CharField(max_length=32, null=True)

    class Meta:
        indexes = ((("table", "record_id", "changed_at"), False),)


class SecurityEvent(BaseModel):
    """Append-only: sign-ins, denials, exports, permission and sharing changes."""

    id = peewee.BigAutoField()
    at = UTCDateTimeField(default=utcnow, index=True)
    kind = peewee.CharField(max_length=40, index=True)
    actor_id = peewee.IntegerField(null=True, index=True)
    subject = peewee.CharField(max_length=254, null=True)
    address = peewee.CharField(max_length=64, null=True)
    request_id = peewee.CharField(max_length=32, null=True)
    detail = peewee.TextField(null=True)
