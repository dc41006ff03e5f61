"""The JSON shapes of opportunities, their team, stage moves, bulk edits, pipelines,
stages and lost reasons (money as a string decimal with its currency beside it)."""

from __future__ import annotations

import marshmallow as ma

from crm_core.api.fields import Amount, Currency
from crm_core.api.frame import Schema
from crm_core.api.resources import ID, RecordSchema
from crm_core.api.resources import optional_text as _text
from crm_core.customfields.schema import CustomValues
from crm_core.opportunities.models import (MEMBER_ACCESS, MEMBER_ROLES, OPPORTUNITY_SOURCES, STAGE_KINDS)

PERCENT = ma.validate.Range(min=0, max=100)
LONG_TEXT = ma.validate.Length(max=20000)


class OpportunitySchema(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    account_id = ma.fields.Integer(required=True, validate=ID)
    contact_id = ma.fields.Integer(allow_none=True, validate=ID)
    owner_id = ma.fields.Integer(validate=ID)
    pipeline_id = ma.fields.Integer(validate=ID)
    stage_id = ma.fields.Integer(validate=ID)
    status = ma.fields.String(dump_only=True, metadata={"description": "the stage's kind: open, won or lost"})
    currency = Currency()
    amount = Amount(allow_none=True)
    probability = ma.fields.Integer(validate=PERCENT, metadata={
        "description": "percent; the stage's own unless given"})
    expected_close_date = ma.fields.Date(allow_none=True)
    closed_date = ma.fields.Date(allow_none=True)
    source = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(OPPORTUNITY_SOURCES))
    campaign_id = ma.fields.Integer(allow_none=True, validate=ID)
    lead_id = ma.fields.Integer(allow_none=True, validate=ID)
    competitors = ma.fields.String(allow_none=True, validate=LONG_TEXT, metadata={
        "description": "one competitor per line"})
    next_step = _text(300)
    lost_reason_id = ma.fields.Integer(allow_none=True, validate=ID, metadata={
        "description": "required in a lost stage (GET /api/v1/lost-reasons)"})
    lost_reason = ma.fields.Function(
        lambda record: record.lost_reason.name if getattr(record, "lost_reason_id", None) else None,
        # On input a plain string field decides (a number or a list is "not a valid string").
        deserialize=lambda value: ma.fields.String().deserialize(value), allow_none=True,
        validate=ma.validate.Length(max=200), metadata={
            "type": "string", "description": "the lost reason's name; on input, a name of the company's "
                                             "list instead of lost_reason_id"})
    lost_note = ma.fields.String(allow_none=True, validate=LONG_TEXT)
    description = ma.fields.String(allow_none=True, validate=LONG_TEXT)
    stage_changed_at = ma.fields.DateTime(dump_only=True)
    custom = CustomValues("opportunity")
    external_id = ma.fields.String(dump_only=True, allow_none=True, metadata={
        "description": "the id in the system it was imported from (set by imports)"})


class OpportunityPatchSchema(OpportunitySchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    account_id = ma.fields.Integer(validate=ID)


class MoveSchema(Schema):
    stage_id = ma.fields.Integer(required=True, validate=ID)
    lost_reason_id = ma.fields.Integer(allow_none=True, validate=ID)
    lost_reason = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200), metadata={
        "description": "a lost reason's name, instead of lost_reason_id"})
    lost_note = ma.fields.String(allow_none=True, validate=LONG_TEXT)
    closed_date = ma.fields.Date(allow_none=True)
    probability = ma.fields.Integer(validate=PERCENT)
    amount = Amount(allow_none=True)
    expected_close_date = ma.fields.Date(allow_none=True)
    next_step = _text(300)
    competitors = ma.fields.String(allow_none=True, validate=LONG_TEXT)
    contact_id = ma.fields.Integer(allow_none=True, validate=ID)
    custom = CustomValues("opportunity")


class MemberSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    user_id = ma.fields.Integer(required=True, validate=ID)
    user_name = ma.fields.Function(lambda member: _user_name(member.user_id), dump_only=True)
    role = ma.fields.String(validate=ma.validate.OneOf(MEMBER_ROLES))
    access = ma.fields.String(validate=ma.validate.OneOf(MEMBER_ACCESS), metadata={
        "description": "read: sees the opportunity; edit: may change it"})
    created_at = ma.fields.DateTime(dump_only=True)


class MemberPatchSchema(Schema):
    role = ma.fields.String(validate=ma.validate.OneOf(MEMBER_ROLES))
    access = ma.fields.String(validate=ma.validate.OneOf(MEMBER_ACCESS))


def _user_name(user_id):
    from crm_core.users.models import User

    user = User.get_or_none(User.id == user_id)
    return user.name if user else None


class BulkChangesSchema(Schema):
    """What a bulk edit may set on every chosen opportunity."""

    owner_id = ma.fields.Integer(validate=ID)
    stage_id = ma.fields.Integer(validate=ID)
    expected_close_date = ma.fields.Date(allow_none=True)
    probability = ma.fields.Integer(validate=PERCENT)
    next_step = _text(300)
    source = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(OPPORTUNITY_SOURCES))
    campaign_id = ma.fields.Integer(allow_none=True, validate=ID)
    lost_reason_id = ma.fields.Integer(allow_none=True, validate=ID)


class BulkSchema(Schema):
    ids = ma.fields.List(ma.fields.Integer(validate=ID), required=True,
                         validate=ma.validate.Length(min=1, max=500))
    changes = ma.fields.Nested(BulkChangesSchema, required=True)


class BulkResultSchema(Schema):
    id = ma.fields.Integer()
    ok = ma.fields.Boolean()
    status = ma.fields.Integer(metadata={"description": "what the single change would have answered"})
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()))


class BulkResponseSchema(Schema):
    results = ma.fields.List(ma.fields.Nested(BulkResultSchema))
    changed = ma.fields.Integer()
    failed = ma.fields.Integer()


class StageSchema(RecordSchema):
    pipeline_id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    key = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=10000))
    probability = ma.fields.Integer(validate=PERCENT)
    kind = ma.fields.String(validate=ma.validate.OneOf(STAGE_KINDS))
    active = ma.fields.Boolean()


class StagePatchSchema(StageSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    key = ma.fields.String(dump_only=True)


class PipelineFields(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    key = ma.fields.String(validate=ma.validate.Length(min=1, max=100), metadata={
        "description": "a stable name for scripts; made from the name when not given"})
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=5000))
    is_default = ma.fields.Boolean()
    active = ma.fields.Boolean()
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=10000))
    source = ma.fields.String(dump_only=True, metadata={"description": "core, company or a plugin's name"})


class PipelineSchema(PipelineFields):
    """A pipeline with its stages in order (those switched off included, ``active`` false)."""

    stages = ma.fields.List(ma.fields.Nested(StageSchema), metadata={
        "description": "in order; on creation, the new pipeline's stages"})


class PipelinePatchSchema(PipelineFields):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


class ReorderSchema(Schema):
    stage_ids = ma.fields.List(ma.fields.Integer(validate=ID), required=True,
                               validate=ma.validate.Length(min=1, max=200))


class LostReasonSchema(RecordSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    active = ma.fields.Boolean()
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=10000))


class LostReasonPatchSchema(LostReasonSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
