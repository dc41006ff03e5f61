"""Web forms (what a form asks and where its leads go) and their submissions (every accepted
post, kept with its raw payload, address, time and result)."""

import peewee

from crm_core.db import BaseModel, UTCDateTimeField, utcnow
from crm_core.leads.models import Campaign, Lead
from crm_core.records import RecordModel

ASSIGN_BY = ("owner", "rules")
RESULTS = ("lead", "spam")


class WebForm(RecordModel):
    name = peewee.CharField(max_length=200)
    # Public: the form's address (in the snippet); ``secret`` signs its tokens and never leaves.
    key = peewee.CharField(max_length=40, unique=True)
    secret = peewee.CharField(max_length=64)
    owner_id = peewee.IntegerField(index=True)
    assign_by = peewee.CharField(max_length=16, default="owner")
    target_owner_id = peewee.IntegerField(null=True)
    campaign = peewee.ForeignKeyField(Campaign, null=True, backref="+", on_delete="SET NULL")
    source = peewee.CharField(max_length=20, default="web")
    thank_you_url = peewee.CharField(max_length=2000, null=True)
    allowed_origins = peewee.TextField(null=True)  # one origin a line
    fields = peewee.TextField()  # JSON: [{"name", "label", "required"}] in the form's order
    rate_limit = peewee.IntegerField(default=20)  # submissions per address per window
    active = peewee.BooleanField(default=True)


class WebFormSubmission(BaseModel):
    uid = peewee.CharField(max_length=32, unique=True)  # what the visitor is told
    form = peewee.ForeignKeyField(WebForm, backref="submissions", on_delete="CASCADE")
    idempotency_key = peewee.CharField(max_length=80)
    address = peewee.CharField(max_length=64)
    created_at = UTCDateTimeField(default=utcnow)
    payload = peewee.TextField()
    result = peewee.CharField(max_length=16)
    lead = peewee.ForeignKeyField(Lead, null=True, backref="+", on_delete="SET NULL")
    duplicate_of = peewee.CharField(max_length=16, null=True)  # "lead" or "contact"
    duplicate_id = peewee.IntegerField(null=True)

    class Meta:
        indexes = ((("form", "idempotency_key"), True), (("form", "created_at"), False))
