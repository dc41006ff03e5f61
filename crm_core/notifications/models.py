"""In-app notifications, each with the state of its email."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow

EMAIL_STATES = ("pending", "sending", "sent", "failed", "none")


class Notification(BaseModel):
    user_id = peewee.IntegerField()
    kind = peewee.CharField(max_length=64)
    object = peewee.CharField(max_length=64, null=True)
    record_id = peewee.BigIntegerField(null=True)
    actor_id = peewee.IntegerField(null=True)
    count = peewee.IntegerField(default=1)  # records it stands for (a bulk assignment: one notice)
    record_ids = peewee.TextField(null=True)  # JSON list of the first of them, when more than one
    created_at = UTCDateTimeField(default=utcnow)
    read_at = UTCDateTimeField(null=True)
    email = peewee.CharField(max_length=16, default="pending")
    email_attempts = peewee.IntegerField(default=0)
    emailed_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("user_id", "read_at", "created_at"), False), (("email", "id"), False))
