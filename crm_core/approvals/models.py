"""Approval requests, the steps of their approver chain, and the companies' approval policies."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow

REQUEST_STATES = ("pending", "approved", "rejected", "cancelled", "superseded")
STEP_STATES = ("waiting", "pending", "approved", "rejected", "skipped")


class ApprovalPolicy(BaseModel):
    """The company's settings of one kind of approval (thresholds...), as JSON the kind
    validates; ``version`` guards concurrent edits like every record's."""

    kind = peewee.CharField(max_length=64, primary_key=True)
    active = peewee.BooleanField(default=False)
    settings = peewee.TextField(default="{}")
    version = peewee.IntegerField(default=1)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by_id = peewee.IntegerField(null=True)


class ApprovalRequest(BaseModel):
    """What someone proposes for one record: ``proposed`` (the values asked for, JSON, API
    names) over ``base`` (the approved values when it was asked: a request whose record
    has moved away from them is stale)."""

    kind = peewee.CharField(max_length=64)
    object = peewee.CharField(max_length=64)
    record_id = peewee.BigIntegerField()
    proposed = peewee.TextField()
    base = peewee.TextField(default="{}")
    reasons = peewee.TextField(default="[]")  # why it needs approval: the rules it crossed
    note = peewee.TextField(null=True)        # the requester's own words
    state = peewee.CharField(max_length=16, default="pending")
    requested_by_id = peewee.IntegerField(null=True)
    requested_at = UTCDateTimeField(default=utcnow)
    decided_at = UTCDateTimeField(null=True)
    decided_by_id = peewee.IntegerField(null=True)
    version = peewee.IntegerField(default=1)

    class Meta:
        indexes = ((("object", "record_id", "state"), False), (("requested_by_id", "state"), False),
                   (("state", "requested_at"), False))


class ApprovalStep(BaseModel):
    """One approver of a request, in chain order; the first ``pending`` step decides next."""

    request = peewee.ForeignKeyField(ApprovalRequest, backref="steps", on_delete="CASCADE")
    position = peewee.IntegerField()
    approver_id = peewee.IntegerField()
    state = peewee.CharField(max_length=16, default="waiting")
    decided_at = UTCDateTimeField(null=True)
    decided_by_id = peewee.IntegerField(null=True)
    comment = peewee.TextField(null=True)

    class Meta:
        indexes = ((("request", "position"), True), (("approver_id", "state"), False))
