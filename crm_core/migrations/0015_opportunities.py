"""Pipelines, stages, lost reasons, opportunities, their team members and stage history."""

import datetime

from peewee import BooleanField, CharField, DateField, ForeignKeyField, IntegerField, TextField

from crm_core.customfields.models import CustomValuesField
from crm_core.db import CurrencyField, MoneyField, UTCDateTimeField
from crm_core.migrator import frozen_table, record_columns_v1


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def up(migrator, db):
    account = frozen_table(db, "account", {})
    contact = frozen_table(db, "contact", {})
    campaign = frozen_table(db, "campaign", {})
    lead = frozen_table(db, "lead", {})
    pipeline = frozen_table(db, "pipeline", {
        **record_columns_v1(),
        "name": CharField(max_length=200),
        "key": CharField(max_length=100, unique=True),
        "description": TextField(null=True),
        "is_default": BooleanField(default=False),
        "active": BooleanField(default=True),
        "position": IntegerField(default=0),
        "source": CharField(max_length=64, default="company"),
    })
    stage = frozen_table(db, "stage", {
        **record_columns_v1(),
        "pipeline": ForeignKeyField(pipeline, on_delete="CASCADE"),
        "name": CharField(max_length=200),
        "key": CharField(max_length=100),
        "position": IntegerField(default=0),
        "probability": IntegerField(default=0),
        "kind": CharField(max_length=8, default="open"),
        "active": BooleanField(default=True),
    }, indexes=((("pipeline", "key"), True), (("pipeline", "position"), False)))
    lost_reason = frozen_table(db, "lost_reason", {
        **record_columns_v1(),
        "name": CharField(max_length=200, unique=True),
        "active": BooleanField(default=True),
        "position": IntegerField(default=0),
    })
    opportunity = frozen_table(db, "opportunity", {
        **record_columns_v1(),
        "name": CharField(max_length=200),
        "account": ForeignKeyField(account, on_delete="RESTRICT"),
        "contact": ForeignKeyField(contact, null=True, on_delete="SET NULL"),
        "owner_id": IntegerField(),
        "pipeline": ForeignKeyField(pipeline, on_delete="RESTRICT"),
        "stage": ForeignKeyField(stage, on_delete="RESTRICT"),
        "status": CharField(max_length=8, default="open"),
        "currency": CurrencyField(),
        "amount": MoneyField(null=True),
        "probability": IntegerField(),
        "expected_close_date": DateField(null=True),
        "closed_date": DateField(null=True),
        "source": CharField(max_length=20, null=True),
        "campaign": ForeignKeyField(campaign, null=True, on_delete="SET NULL"),
        "lead": ForeignKeyField(lead, null=True, on_delete="SET NULL"),
        "competitors": TextField(null=True),
        "next_step": CharField(max_length=300, null=True),
        "lost_reason": ForeignKeyField(lost_reason, null=True, on_delete="RESTRICT"),
        "lost_note": TextField(null=True),
        "description": TextField(null=True),
        "stage_changed_at": UTCDateTimeField(default=_now),
        "custom": CustomValuesField(null=True),
        "external_id": CharField(max_length=100, null=True, unique=True),
    }, indexes=((("owner_id", "stage", "expected_close_date"), False),
                (("owner_id", "expected_close_date"), False),
                (("pipeline", "stage"), False),
                (("account", "stage"), False),
                (("status", "closed_date"), False)))
    member = frozen_table(db, "opportunity_member", {
        "opportunity": ForeignKeyField(opportunity, on_delete="CASCADE"),
        "user_id": IntegerField(index=True),
        "role": CharField(max_length=32, default="other"),
        "access": CharField(max_length=8, default="read"),
        "created_at": UTCDateTimeField(default=_now),
        "created_by_id": IntegerField(null=True),
    }, indexes=((("opportunity", "user_id"), True),))
    stage_change = frozen_table(db, "stage_change", {
        "opportunity": ForeignKeyField(opportunity, on_delete="CASCADE"),
        "from_stage": ForeignKeyField(stage, null=True, on_delete="RESTRICT"),
        "to_stage": ForeignKeyField(stage, on_delete="RESTRICT"),
        "changed_at": UTCDateTimeField(default=_now, index=True),
        "changed_by_id": IntegerField(null=True),
        "currency": CurrencyField(null=True),
        "amount": MoneyField(null=True),
        "probability": IntegerField(null=True),
    }, indexes=((("opportunity", "changed_at"), False),))
    db.create_tables([pipeline, stage, lost_reason, opportunity, member, stage_change])
