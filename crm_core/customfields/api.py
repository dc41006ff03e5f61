"""Custom fields API: everyone signed in may read the definitions (forms and imports need
them); administrators define, change (If-Match) and retire them. Plugins' fields are
listed but cannot be changed here."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, Schema, check_if_match, with_etag
from crm_core.customfields import services
from crm_core.customfields.models import TYPES
from crm_core.customfields.registry import definitions, objects
from crm_core.web.auth import require_admin

blueprint = Blueprint("custom_fields_api", __name__, url_prefix="/custom-fields",
                      description="Custom fields of accounts, contacts, leads and other records.")
IF_MATCH = {"parameters": [{"in": "header", "name": "If-Match", "required": True,
                            "schema": {"type": "string"}}]}


class ChoiceSchema(Schema):
    value = ma.fields.String(required=True)
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), load_default=dict)


class CustomFieldSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    object = ma.fields.String(required=True)
    key = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=40))
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(TYPES))
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    label = ma.fields.String(dump_only=True, metadata={"description": "in the caller's language"})
    choices = ma.fields.List(ma.fields.Nested(ChoiceSchema))
    required = ma.fields.Boolean()
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=10_000))
    currency = ma.fields.String(allow_none=True)
    retired = ma.fields.Boolean(dump_only=True)
    owner = ma.fields.String(dump_only=True, metadata={"description": "admin, or the plugin that registered it"})


class CustomFieldPatchSchema(CustomFieldSchema):
    object = ma.fields.String()
    key = ma.fields.String()
    type = ma.fields.String(validate=ma.validate.OneOf(TYPES))
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    retired = ma.fields.Boolean(metadata={"description": "true retires the field, false brings it back"})


class CustomFieldListQuery(Schema):
    object = ma.fields.String(load_default=None)
    retired = ma.fields.Boolean(load_default=False, metadata={"description": "include retired fields"})
    lang = ma.fields.String(load_default=None, load_only=True)


class CustomFieldListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(CustomFieldSchema))


def dump(spec):
    return {"id": spec.id, "version": spec.version, "object": spec.object, "key": spec.key,
            "type": spec.type, "labels": dict(spec.labels), "label": str(spec.label()),
            "choices": [{"value": v, "labels": dict(labels)} for v, labels in spec.choices],
            "required": spec.required, "position": spec.position, "currency": spec.currency,
            "retired": spec.retired, "owner": spec.owner}


def _stored_or_404(field_id):
    spec = services.stored_field(field_id)
    if spec is None:
        raise ApiError(404)
    return spec


@blueprint.route("")
class CustomFields(MethodView):
    @blueprint.arguments(CustomFieldListQuery, location="query")
    @blueprint.response(200, CustomFieldListSchema)
    def get(self, args):
        """The custom fields of every object (or of ``object``), in form order."""
        names = objects()
        if args["object"] is not None:
            if args["object"] not in names:
                raise ApiError(404)
            names = [args["object"]]
        return jsonify({"items": [dump(spec) for name in names
                                  for spec in definitions(name, include_retired=args["retired"])]})

    @blueprint.arguments(CustomFieldSchema)
    @blueprint.response(201, CustomFieldSchema)
    def post(self, data):
        """Add a field (administrators)."""
        require_admin()
        spec = services.create_field(data, actor_id=current_user.id)
        return with_etag(jsonify(dump(spec)), spec), 201


@blueprint.route("/<int:custom_field_id>")
class CustomFieldItem(MethodView):
    @blueprint.response(200, CustomFieldSchema)
    def get(self, custom_field_id):
        """One field an administrator defined."""
        spec = _stored_or_404(custom_field_id)
        return with_etag(jsonify(dump(spec)), spec)

    @blueprint.arguments(CustomFieldPatchSchema)
    @blueprint.response(200, CustomFieldSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, custom_field_id):
        """Change labels, choices, required, order, currency or type (stored values are
        converted, or the change is refused when one would not fit); ``retired``."""
        require_admin()
        spec = _stored_or_404(custom_field_id)
        version = check_if_match(spec)
        retired = data.pop("retired", None)
        if data:
            spec = services.update_field(spec, data, actor_id=current_user.id, expected_version=version)
        if retired is not None and retired != spec.retired:
            (services.retire_field if retired else services.restore_field)(spec, actor_id=current_user.id)
            spec = services.stored_field(custom_field_id)
        return with_etag(jsonify(dump(spec)), spec)

    @blueprint.response(204)
    def delete(self, custom_field_id):
        """Retire the field: no longer shown or accepted; its values are kept."""
        require_admin()
        spec = _stored_or_404(custom_field_id)
        if not spec.retired:
            services.retire_field(spec, actor_id=current_user.id)
