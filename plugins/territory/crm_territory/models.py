"""The territory plugin's tables (all prefixed ``territory_``; no core table is altered).

References between the plugin's own rows are plain integer columns checked by the
services, so a model, its territories, members and placements can be dropped together
by ``crm territory drop-tables`` without touching a core constraint.
"""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.records import RecordModel

MODEL_STATES = ("planning", "active", "archived")
ACCESS_LEVELS = ("read", "edit")
PLACED_OBJECTS = ("account", "lead")  # contacts and opportunities follow their account
PLACEMENT_SOURCES = ("rule", "manual")
REALIGNMENT_STATES = ("queued", "running", "previewed", "applied", "failed")


class TerritoryModel(RecordModel):
    """One alignment of the company into territories. Only the active model grants access;
    a planning model is prepared and switched to; an archived one is kept for history."""

    name = peewee.CharField(max_length=200)
    state = peewee.CharField(max_length=16, default="planning")
    description = peewee.TextField(default="")
    activated_at = UTCDateTimeField(null=True)


class Territory(RecordModel):
    """A node of a model's tree. ``criteria`` (JSON) decides which accounts and leads
    belong: ``{"country": ["VN"], "region": [...], "postal_code": [["70000", "79999"]],
    "industry": [...], "employees": {"min": 10, "max": 500}, "custom.<key>": [...]}``;
    every key given must match (and), any value of a key may (or)."""

    model_id = peewee.IntegerField(index=True)
    parent_id = peewee.IntegerField(null=True, index=True)
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    criteria = peewee.TextField(default="{}")
    access_level = peewee.CharField(max_length=8, default="edit")
    manager_id = peewee.IntegerField(null=True, index=True)
    position = peewee.IntegerField(default=0)


class TerritoryMember(BaseModel):
    """A rep in a territory."""

    territory_id = peewee.IntegerField()
    user_id = peewee.IntegerField(index=True)
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("territory_id", "user_id"), True),)


class TerritoryRecord(BaseModel):
    """Where an account or lead is placed in a model: by the rules, or by hand (a manual
    placement survives realignment)."""

    model_id = peewee.IntegerField()
    object = peewee.CharField(max_length=32)
    record_id = peewee.IntegerField()
    territory_id = peewee.IntegerField()
    source = peewee.CharField(max_length=8, default="rule")
    placed_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("model_id", "object", "record_id"), True),
                   (("territory_id", "object", "record_id"), False))


class TerritoryRealignment(BaseModel):
    """One realignment run of a model: its preview (what moves) and, once applied, the result."""

    model_id = peewee.IntegerField(index=True)
    state = peewee.CharField(max_length=16, default="queued")
    preview_only = peewee.BooleanField(default=False)
    summary = peewee.TextField(default="{}")  # JSON: counts per (from, to) territory pair
    moved = peewee.IntegerField(default=0)
    examined = peewee.IntegerField(default=0)
    error = peewee.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)
    finished_at = UTCDateTimeField(null=True)
    # 0002: progress (examined of total) and the last report, by which a dead run is known.
    total = peewee.IntegerField(default=0)
    started_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(null=True)
