"""Segments API: list, create, change (If-Match), delete saved segments; run a saved one
or an ad-hoc condition tree, a page at a time. Results are the caller's readable records;
a condition on a field hidden from the caller is a 400."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify, request
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, Schema, check_if_match, with_etag
from crm_core.api import access
from crm_core.segments import services
from crm_core.segments.conditions import ConditionError, visible_fields
from crm_core.segments.models import VISIBILITIES, Segment

blueprint = Blueprint("segments_api", __name__, url_prefix="/segments",
                      description="Segments: saved queries over accounts, contacts and leads.")
ID = ma.validate.Range(min=1, max=2**63 - 1)
IF_MATCH = {"parameters": [{"in": "header", "name": "If-Match", "required": True,
                            "schema": {"type": "string"}}]}


class SegmentSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    object = ma.fields.String(required=True)
    owner_id = ma.fields.Integer(dump_only=True)
    visibility = ma.fields.String(validate=ma.validate.OneOf(VISIBILITIES))
    team_id = ma.fields.Integer(allow_none=True, validate=ID)
    department_id = ma.fields.Integer(allow_none=True, validate=ID)
    conditions = ma.fields.Dict(metadata={"description": '{"all"|"any": [conditions or groups]}; '
                                                         'a condition is {"field", "op", "value"}'})
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class SegmentPatchSchema(SegmentSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    object = ma.fields.String()


class PageQuery(Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=10_000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    count = ma.fields.Boolean(load_default=False, metadata={
        "description": "also count the matches (exact up to 10,000; slower on large segments)"})
    lang = ma.fields.String(load_default=None, load_only=True)


class RunSchema(Schema):
    object = ma.fields.String(required=True)
    conditions = ma.fields.Dict(required=True)


class ResultSchema(Schema):
    items = ma.fields.List(ma.fields.Dict())
    has_more = ma.fields.Boolean()
    total = ma.fields.Integer(allow_none=True, metadata={"description": "with ?count=true only"})
    total_capped = ma.fields.Boolean(metadata={"description": "more than total match"})
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


class SegmentListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(SegmentSchema))


class FieldSchema(Schema):
    name = ma.fields.String()
    kind = ma.fields.String()
    label = ma.fields.String()
    operators = ma.fields.List(ma.fields.String())
    choices = ma.fields.List(ma.fields.String())


class FieldListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(FieldSchema))


def dump(segment):
    out = SegmentSchema(exclude=("conditions",)).dump(segment)
    out["conditions"] = services.tree_of(segment)
    return out


def _resource(object_name):
    from crm_core.accounts.api import ACCOUNTS, CONTACTS
    from crm_core.leads.api import LEADS

    known = {"account": ACCOUNTS, "contact": CONTACTS, "lead": LEADS}
    return known.get(object_name)


def _out(object_name, record):
    resource = _resource(object_name)
    if resource is not None:
        return resource.out(record)
    return access.dump_visible(object_name, {"id": record.id, "version": record.version})


def _run(object_name, tree, args):
    if object_name not in services.segment_objects():
        raise ApiError(404)
    access.require_object(object_name, "read")
    try:
        page = services.run(object_name, current_user.id, tree, args["page"], args["per_page"],
                            count=args["count"])
    except ConditionError as problem:
        status = 400 if problem.code == "hidden_field" else 422
        raise ApiError(status, problem.code if status == 400 else None,
                       fields={f: [str(m)] for f, m in problem.fields.items()}) from None
    return jsonify({**page, "items": [_out(object_name, r) for r in page["items"]]})


def _hidden_as_400(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except ConditionError as problem:
        if problem.code != "hidden_field":
            raise
        raise ApiError(400, "hidden_field", fields={f: [str(m)] for f, m in problem.fields.items()}) from None


def _visible_or_404(segment_id):
    segment = services.get_visible(current_user.id, segment_id)
    if segment is None:
        raise ApiError(404)
    return segment


@blueprint.route("")
class Segments(MethodView):
    @blueprint.response(200, SegmentListSchema)
    def get(self):
        """The segments the caller may use: their own and those shared with them."""
        segments = services.visible_segments(current_user.id).order_by(Segment.name, Segment.id)
        return jsonify({"items": [dump(s) for s in segments]})

    @blueprint.arguments(SegmentSchema)
    @blueprint.response(201, SegmentSchema)
    def post(self, data):
        """Save a segment (owned by the caller)."""
        if data["object"] in services.segment_objects():
            access.require_object(data["object"], "read")
        segment = _hidden_as_400(services.create_segment, data, current_user.id)
        return with_etag(jsonify(dump(segment)), segment), 201


@blueprint.route("/run")
class SegmentRun(MethodView):
    @blueprint.arguments(RunSchema)
    @blueprint.arguments(PageQuery, location="query")
    @blueprint.response(200, ResultSchema)
    def post(self, data, args):
        """Run an ad-hoc condition tree: a page of the caller's readable matching records."""
        return _run(data["object"], data["conditions"], args)


@blueprint.route("/fields/<string:segment_object>")
class SegmentFields(MethodView):
    @blueprint.response(200, FieldListSchema)
    def get(self, segment_object):
        """The fields the caller may filter ``segment_object`` on, with their operators."""
        object_name = segment_object
        if object_name not in services.segment_objects():
            raise ApiError(404)
        access.require_object(object_name, "read")
        return jsonify({"items": [
            {"name": f.name, "kind": f.kind, "label": str(f.label), "operators": list(f.operators),
             "choices": list(f.spec.choice_values) if f.spec is not None else []}
            for f in visible_fields(object_name, current_user.id).values()]})


@blueprint.route("/<int:segment_id>")
class SegmentItem(MethodView):
    @blueprint.response(200, SegmentSchema)
    def get(self, segment_id):
        """One segment (404 unless it is the caller's or shared with them)."""
        segment = _visible_or_404(segment_id)
        return with_etag(jsonify(dump(segment)), segment)

    @blueprint.arguments(SegmentPatchSchema)
    @blueprint.response(200, SegmentSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, segment_id):
        """Change it (its owner or an administrator)."""
        segment = _visible_or_404(segment_id)
        if not services.may_change(current_user.id, segment):
            raise ApiError(403)
        version = check_if_match(segment)
        _hidden_as_400(services.update_segment, segment, data, current_user.id, expected_version=version)
        return with_etag(jsonify(dump(segment)), segment)

    @blueprint.response(204)
    def delete(self, segment_id):
        """Delete it (its owner or an administrator)."""
        segment = _visible_or_404(segment_id)
        if not services.may_change(current_user.id, segment):
            raise ApiError(403)
        version = check_if_match(segment) if request.headers.get("If-Match") else None
        services.delete_segment(segment, current_user.id, expected_version=version)


@blueprint.route("/<int:segment_id>/results")
class SegmentResults(MethodView):
    @blueprint.arguments(PageQuery, location="query")
    @blueprint.response(200, ResultSchema)
    def get(self, args, segment_id):
        """Run the segment: a page of the caller's readable records that match it."""
        segment = _visible_or_404(segment_id)
        return _run(segment.object, services.tree_of(segment), args)
