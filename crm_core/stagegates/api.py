"""API of stage gates: ``/stage-gates`` for holders of ``opportunities.configure``
(administrators unless granted): list by pipeline or stage, add, change (If-Match), remove,
and the requirement kinds the installation knows."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, Schema, check_if_match, page_schema, with_etag
from crm_core.api.listing import DEFAULT_PER_PAGE, MAX_PER_PAGE
from crm_core.api.resources import ID, IF_MATCH, IF_MATCH_OPTIONAL, optional_version
from crm_core.stagegates import services
from crm_core.stagegates.models import StageGate
from crm_core.stagegates.registry import kinds

blueprint = Blueprint("stage_gates_api", __name__, url_prefix="/stage-gates",
                      description="What moving an opportunity into a stage requires (opportunities.configure).")


class StageGateSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    version = ma.fields.Integer(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)
    stage_id = ma.fields.Integer(required=True, validate=ID, metadata={
        "description": "moving INTO this stage requires the gate"})
    pipeline_id = ma.fields.Integer(dump_only=True)
    kind = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100), metadata={
        "description": "field, team_role, or a kind a plugin registered (GET /stage-gates/kinds)"})
    params = ma.fields.Dict(load_default=dict, metadata={
        "description": "what the kind asks: field {field, minimum, exclusive}; team_role {role}"})
    also_backwards = ma.fields.Boolean(load_default=False, metadata={
        "description": "also when a deal moves back to this stage (otherwise only forwards)"})
    position = ma.fields.Integer(validate=ma.validate.Range(min=0, max=10_000))
    description = ma.fields.String(dump_only=True, metadata={"description": "what it asks, in the reader's language"})


class StageGatePatchSchema(StageGateSchema):
    stage_id = ma.fields.Integer(validate=ID)
    kind = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    params = ma.fields.Dict()
    also_backwards = ma.fields.Boolean()


class StageGateListArgs(Schema):
    pipeline_id = ma.fields.Integer(validate=ID)
    stage_id = ma.fields.Integer(validate=ID)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=DEFAULT_PER_PAGE, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))
    lang = ma.fields.String(load_default=None, load_only=True)


class ParamInputSchema(Schema):
    name = ma.fields.String()
    label = ma.fields.String()
    type = ma.fields.String(metadata={"description": "text, number, choice or boolean"})
    choices = ma.fields.List(ma.fields.Dict(), metadata={"description": "[{value, label}] for a choice"})
    required = ma.fields.Boolean()


class RequirementKindSchema(Schema):
    key = ma.fields.String()
    label = ma.fields.String()
    params = ma.fields.List(ma.fields.Nested(ParamInputSchema))


class KindListArgs(Schema):
    lang = ma.fields.String(load_default=None, load_only=True)


def gate_out(gate):
    return {"id": gate.id, "version": gate.version, "created_at": gate.created_at.isoformat(),
            "updated_at": gate.updated_at.isoformat(), "stage_id": gate.stage_id,
            "pipeline_id": gate.stage.pipeline_id, "kind": gate.kind, "params": services.params_of(gate),
            "also_backwards": gate.also_backwards, "position": gate.position,
            "description": str(services.describe(gate))}


def kind_out(kind):
    return {"key": kind.key, "label": str(kind.label), "params": [
        {"name": item.name, "label": str(item.label), "type": item.type, "required": item.required,
         "choices": [{"value": value, "label": str(label)} for value, label in item.options()]}
        for item in kind.inputs]}


def require_configurer():
    if not services.may_configure(current_user.id):
        raise ApiError(403)


def get_gate(stage_gate_id):
    require_configurer()
    gate = StageGate.get_or_none(StageGate.id == stage_gate_id)
    if gate is None or gate.stage.deleted_at is not None:
        raise ApiError(404)
    return gate


@blueprint.route("")
class StageGates(MethodView):
    @blueprint.arguments(StageGateListArgs, location="query")
    @blueprint.response(200, page_schema(StageGateSchema))
    def get(self, args):
        """The configured gates, in stage order; ?pipeline_id= or ?stage_id= narrows them."""
        require_configurer()
        every = services.gates(args.get("pipeline_id"), args.get("stage_id"))
        start = (args["page"] - 1) * args["per_page"]
        return jsonify({"items": [gate_out(g) for g in every[start:start + args["per_page"]]],
                        "total": len(every), "page": args["page"], "per_page": args["per_page"]})

    @blueprint.arguments(StageGateSchema)
    @blueprint.response(201, StageGateSchema)
    def post(self, data):
        """A new requirement of moving into a stage."""
        require_configurer()
        gate = services.create_gate(data, actor_id=current_user.id)
        return with_etag(jsonify(gate_out(gate)), gate), 201


@blueprint.route("/kinds")
class RequirementKinds(MethodView):
    @blueprint.arguments(KindListArgs, location="query")
    @blueprint.response(200, RequirementKindSchema(many=True))
    def get(self, _args):
        """The kinds of requirement this installation knows (the core's and the plugins'),
        with the params each takes."""
        require_configurer()
        return jsonify([kind_out(kind) for _key, kind in kinds().items()])


@blueprint.route("/<int:stage_gate_id>")
class StageGateItem(MethodView):
    @blueprint.response(200, StageGateSchema)
    def get(self, stage_gate_id):
        """One gate."""
        gate = get_gate(stage_gate_id)
        return with_etag(jsonify(gate_out(gate)), gate)

    @blueprint.arguments(StageGatePatchSchema)
    @blueprint.response(200, StageGateSchema)
    @blueprint.doc(**IF_MATCH)
    def patch(self, data, stage_gate_id):
        """Change what the gate asks (If-Match: its version); the stage stays."""
        gate = get_gate(stage_gate_id)
        version = check_if_match(gate)
        services.update_gate(gate, data, actor_id=current_user.id, expected_version=version)
        return with_etag(jsonify(gate_out(gate)), gate)

    @blueprint.response(204)
    @blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, stage_gate_id):
        """Remove the gate (If-Match optional: 412 when stale)."""
        gate = get_gate(stage_gate_id)
        services.delete_gate(gate, actor_id=current_user.id, expected_version=optional_version(gate))
