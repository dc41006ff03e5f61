"""Web-to-lead: web forms and their submissions."""

from peewee import BooleanField, CharField, ForeignKeyField, IntegerField, TextField

from crm_core.db import UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def up(migrator, db):
    import datetime

    def now():
        return datetime.datetime.now(datetime.timezone.utc)

    campaign = frozen_table(db, "campaign", {})
    lead = frozen_table(db, "lead", {})
    web_form = frozen_table(db, "web_form", {
        **record_columns_v1(),
        "name": CharField(max_length=200),
        "key": CharField(max_length=40, unique=True),
        "secret": CharField(max_length=64),
        "owner_id": IntegerField(index=True),
        "assign_by": CharField(max_length=16, default="owner"),
        "target_owner_id": IntegerField(null=True),
        "campaign": ForeignKeyField(campaign, null=True, on_delete="SET NULL"),
        "source": CharField(max_length=20, default="web"),
        "thank_you_url": CharField(max_length=2000, null=True),
        "allowed_origins": TextField(null=True),
        "fields": TextField(),
        "rate_limit": IntegerField(default=20),
        "active": BooleanField(default=True),
    })
    submission = frozen_table(db, "web_form_submission", {
        "uid": CharField(max_length=32, unique=True),
        "form": ForeignKeyField(web_form, on_delete="CASCADE"),
        "idempotency_key": CharField(max_length=80),
        "address": CharField(max_length=64),
        "created_at": UTCDateTimeField(default=now),
        "payload": TextField(),
        "result": CharField(max_length=16),
        "lead": ForeignKeyField(lead, null=True, on_delete="SET NULL"),
        "duplicate_of": CharField(max_length=16, null=True),
        "duplicate_id": IntegerField(null=True),
    }, indexes=((("form", "idempotency_key"), True), (("form", "created_at"), False)))
    db.create_tables([web_form, submission])
