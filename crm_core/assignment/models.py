"""Rule sets, rules, round-robin groups and the proposals waiting for a manager."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow

RULE_SET_MODES = ("apply", "propose")
PROPOSAL_STATUSES = ("pending", "confirmed", "rejected")


class AssignmentRuleSet(BaseModel):
    """Per object: whether rules apply at once or are proposed, and whether they run when a
    record is created without an owner."""

    object = peewee.CharField(max_length=64, primary_key=True)
    mode = peewee.CharField(max_length=16, default="apply")
    run_on_create = peewee.BooleanField(default=True)
    version = peewee.IntegerField(default=1)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by_id = peewee.IntegerField(null=True)


class AssignmentGroup(BaseModel):
    """Members take turns. ``turns`` only grows: member ``turns % n`` is next (a full or
    inactive one is skipped); writers advance it by a conditional update on ``version``."""

    name = peewee.CharField(max_length=200, unique=True)
    capacity = peewee.IntegerField(null=True)  # open records per member; none: no limit
    turns = peewee.BigIntegerField(default=0)
    version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)


class AssignmentGroupMember(BaseModel):
    group = peewee.ForeignKeyField(AssignmentGroup, backref="members", on_delete="CASCADE")
    user_id = peewee.IntegerField()
    position = peewee.IntegerField(default=0)
    capacity = peewee.IntegerField(null=True)  # overrides the group's
    active = peewee.BooleanField(default=True)

    class Meta:
        indexes = ((("group", "user_id"), True),)


class AssignmentRule(BaseModel):
    object = peewee.CharField(max_length=64)
    position = peewee.IntegerField(default=0)
    name = peewee.CharField(max_length=200)
    conditions = peewee.TextField(default="[]")  # JSON: [{"field", "op", "value"}], all must hold
    owner_id = peewee.IntegerField(null=True)
    group = peewee.ForeignKeyField(AssignmentGroup, null=True, backref="rules", on_delete="RESTRICT")
    target = peewee.CharField(max_length=64, null=True)  # a registered AssignmentTarget's key
    active = peewee.BooleanField(default=True)
    version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("object", "position"), False),)


class AssignmentProposal(BaseModel):
    """An owner a rule proposed for a record, until a manager confirms, changes or rejects it."""

    object = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    rule_id = peewee.IntegerField(null=True)
    proposed_owner_id = peewee.IntegerField()
    status = peewee.CharField(max_length=16, default="pending")
    created_at = UTCDateTimeField(default=utcnow)
    created_by_id = peewee.IntegerField(null=True)
    decided_at = UTCDateTimeField(null=True)
    decided_by_id = peewee.IntegerField(null=True)
    owner_id = peewee.IntegerField(null=True)  # who got the record when decided

    class Meta:
        indexes = ((("object", "status", "record_id"), False),)
