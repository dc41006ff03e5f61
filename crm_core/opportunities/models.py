"""Pipelines (a company's sales processes) with their ordered stages, opportunities on
them, the team selling on each, the reasons deals are lost, and every stage move.

A stage's ``kind`` says what reaching it means: ``open`` (still selling), ``won`` or
``lost`` (closed). Pipelines contributed by plugins carry the plugin's name in
``source`` and a stable ``key``; the company may rename them but not delete them while
the plugin is on.
"""

import peewee

from crm_core.accounts.models import Account, Contact
from crm_core.customfields.models import CustomValuesField
from crm_core.db import BaseModel, CurrencyField, MoneyField, UTCDateTimeField, utcnow
from crm_core.leads.models import LEAD_SOURCES, Campaign, Lead
from crm_core.records import RecordModel

STAGE_KINDS = ("open", "won", "lost")
OPPORTUNITY_SOURCES = LEAD_SOURCES
MEMBER_ROLES = ("owner", "presales", "executive_sponsor", "technical", "support", "other")
# What a team member may do with the opportunity (through the access engine).
MEMBER_ACCESS = ("read", "edit")


class Pipeline(RecordModel):
    name = peewee.CharField(max_length=200)
    # A stable name for scripts and plugins ("standard", "territory.enterprise"...).
    key = peewee.CharField(max_length=100, unique=True)
    description = peewee.TextField(null=True)
    is_default = peewee.BooleanField(default=False)
    active = peewee.BooleanField(default=True)
    position = peewee.IntegerField(default=0)
    # "core", "company" (made by an administrator) or the contributing plugin's name.
    source = peewee.CharField(max_length=64, default="company")


class Stage(RecordModel):
    pipeline = peewee.ForeignKeyField(Pipeline, backref="stages", on_delete="CASCADE")
    name = peewee.CharField(max_length=200)
    key = peewee.CharField(max_length=100)
    position = peewee.IntegerField(default=0)
    probability = peewee.IntegerField(default=0)  # percent, 0..100
    kind = peewee.CharField(max_length=8, default="open")
    active = peewee.BooleanField(default=True)

    class Meta:
        indexes = ((("pipeline", "key"), True), (("pipeline", "position"), False))


class LostReason(RecordModel):
    name = peewee.CharField(max_length=200, unique=True)
    active = peewee.BooleanField(default=True)
    position = peewee.IntegerField(default=0)


class Opportunity(RecordModel):
    name = peewee.CharField(max_length=200)
    account = peewee.ForeignKeyField(Account, backref="opportunities", on_delete="RESTRICT")
    contact = peewee.ForeignKeyField(Contact, null=True, backref="opportunities", on_delete="SET NULL")
    owner_id = peewee.IntegerField()
    pipeline = peewee.ForeignKeyField(Pipeline, backref="opportunities", on_delete="RESTRICT")
    stage = peewee.ForeignKeyField(Stage, backref="opportunities", on_delete="RESTRICT")
    # The stage's kind, copied so lists, the funnel and the win rate need no join.
    status = peewee.CharField(max_length=8, default="open")
    currency = CurrencyField()
    amount = MoneyField(null=True, currency_field="currency")
    probability = peewee.IntegerField()  # percent; defaults from the stage
    expected_close_date = peewee.DateField(null=True)
    closed_date = peewee.DateField(null=True)
    source = peewee.CharField(max_length=20, null=True)
    campaign = peewee.ForeignKeyField(Campaign, null=True, backref="opportunities", on_delete="SET NULL")
    lead = peewee.ForeignKeyField(Lead, null=True, backref="opportunities", on_delete="SET NULL")
    competitors = peewee.TextField(null=True)  # free text, one competitor per line
    next_step = peewee.CharField(max_length=300, null=True)
    lost_reason = peewee.ForeignKeyField(LostReason, null=True, backref="+", on_delete="RESTRICT")
    lost_note = peewee.TextField(null=True)
    description = peewee.TextField(null=True)
    stage_changed_at = UTCDateTimeField(default=utcnow)
    custom = CustomValuesField()
    # The record's id in the system it was imported from: imports update by it.
    external_id = peewee.CharField(max_length=100, null=True, unique=True)

    class Meta:
        # A rep's list (by stage, by close date) and the funnel's scans start from the owner.
        indexes = ((("owner_id", "stage", "expected_close_date"), False),
                   (("owner_id", "expected_close_date"), False),
                   (("pipeline", "stage"), False),
                   (("account", "stage"), False),
                   (("status", "closed_date"), False),
                   # Every sort key of the lists (migration 0016): after the owner for a
                   # rep's list, alone for those who see many owners.
                   (("owner_id", "updated_at"), False), (("owner_id", "name"), False),
                   (("owner_id", "amount"), False), (("owner_id", "probability"), False),
                   (("expected_close_date",), False), (("updated_at",), False), (("name",), False),
                   (("amount",), False))


class OpportunityMember(BaseModel):
    """Team selling: a user working on the opportunity besides its owner."""

    opportunity = peewee.ForeignKeyField(Opportunity, backref="members", on_delete="CASCADE")
    user_id = peewee.IntegerField(index=True)
    role = peewee.CharField(max_length=32, default="other")
    access = peewee.CharField(max_length=8, default="read")
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("opportunity", "user_id"), True),)


class StageChange(BaseModel):
    """One move of an opportunity between stages (its first stage has no ``from_stage``):
    the stage history, time in stage and velocity come from these rows."""

    opportunity = peewee.ForeignKeyField(Opportunity, backref="stage_changes", on_delete="CASCADE")
    from_stage = peewee.ForeignKeyField(Stage, null=True, backref="+", on_delete="RESTRICT")
    to_stage = peewee.ForeignKeyField(Stage, backref="+", on_delete="RESTRICT")
    changed_at = UTCDateTimeField(default=utcnow, index=True)
    changed_by_id = peewee.IntegerField(null=True)
    currency = CurrencyField(null=True)
    amount = MoneyField(null=True, currency_field="currency")
    probability = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("opportunity", "changed_at"), False),)
