"""API of opportunities (lists with the shared filters, stage moves, team selling, bulk
edits) and of the company's pipelines, stages and lost reasons.

Pipelines, stages and lost reasons are read by every signed-in user (forms and boards
need them); changing them takes the named permission ``opportunities.configure``
(administrators hold every permission; sales managers get it by default)."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify, request
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, ListQuery, check_if_match, with_etag
from crm_core.api import access
from crm_core.api.errors import _messages
from crm_core.api.resources import ID, IF_MATCH, IF_MATCH_OPTIONAL, Resource, may_change, optional_version, register
from crm_core.errors import FieldValueError, UserError
from crm_core.opportunities import lists, services
from crm_core.opportunities.models import OPPORTUNITY_SOURCES, STAGE_KINDS, LostReason, OpportunityMember, Pipeline, Stage
from crm_core.opportunities.schemas import (BulkResponseSchema, BulkSchema, LostReasonPatchSchema, LostReasonSchema,
                                            MemberPatchSchema, MemberSchema, MoveSchema, OpportunityPatchSchema,
                                            OpportunitySchema, PipelinePatchSchema, PipelineSchema, ReorderSchema,
                                            StagePatchSchema, StageSchema)
from crm_core.permissions import engine

CONFIGURE = "opportunities.configure"

opportunities_blueprint = Blueprint("opportunities_api", __name__, url_prefix="/opportunities",
                                    description="Opportunities: deals on pipelines of stages, with their team.")
pipelines_blueprint = Blueprint("pipelines_api", __name__, url_prefix="/pipelines",
                                description="The company's pipelines (sales processes) and their stages.")
lost_reasons_blueprint = Blueprint("lost_reasons_api", __name__, url_prefix="/lost-reasons",
                                   description="Why deals are lost: the company's list.")


class OpportunityListQuery(ListQuery):
    """The API list with the filters every opportunity list shares (crm_core.opportunities.lists)."""

    def where(self, query, args):
        hidden = lists.hidden_arguments(access.field_levels("opportunity"), args, args.get("sort"))
        if hidden:
            raise ApiError(400, "hidden_field", fields={
                key: [str(_hidden_message())] for key in hidden})
        if args.get("close_from") and args.get("close_to") and args["close_from"] > args["close_to"]:
            raise ApiError(400, fields={"close_to": [str(_close_range_message())]})
        return lists.where(query, args)

    def page(self, query, args):
        query = self.where(query, args)
        page, per_page = args["page"], args["per_page"]
        total = query.count()
        items = list(lists.ordered(query, args.get("sort")).paginate(page, per_page))
        return {"items": items, "total": total, "page": page, "per_page": per_page}


def _hidden_message():
    from flask_babel import lazy_gettext as _l

    return _l("You cannot filter or sort by this field.")


def _close_range_message():
    from flask_babel import lazy_gettext as _l

    return _l("The end of the period comes before its start.")


opportunities_list = OpportunityListQuery(
    "Opportunity", sort=dict(lists.SORTS), default_sort=lists.DEFAULT_SORT,
    filters={"pipeline_id": (ma.fields.Integer(validate=ID), None),
             "stage_id": (ma.fields.Integer(validate=ID), None),
             "owner_id": (ma.fields.Integer(validate=ID), None),
             "department_id": (ma.fields.Integer(validate=ID, metadata={
                 "description": "owners in this department or any below it"}), None),
             "status": (ma.fields.String(validate=ma.validate.OneOf(STAGE_KINDS)), None),
             "source": (ma.fields.String(validate=ma.validate.OneOf(OPPORTUNITY_SOURCES)), None),
             "campaign_id": (ma.fields.Integer(validate=ID), None),
             "account_id": (ma.fields.Integer(validate=ID), None),
             "close_from": (ma.fields.Date(metadata={"description": "expected close date from (inclusive)"}), None),
             "close_to": (ma.fields.Date(metadata={"description": "expected close date until (inclusive)"}), None),
             "q": (ma.fields.String(validate=ma.validate.Length(max=200), metadata={
                 "description": "a part of the name"}), None)})

OPPORTUNITIES = Resource("opportunity", "opportunities", OpportunitySchema, OpportunityPatchSchema,
                         opportunities_list, services.create_opportunity, services.update_opportunity,
                         services.delete_opportunity)
register(opportunities_blueprint, OPPORTUNITIES)


def _changeable(opportunity_id):
    """The opportunity, if the caller may change it (404 unreadable, 403 read-only)."""
    record = access.get_readable("opportunity", opportunity_id)
    access.require_object("opportunity", "update")
    access.require(record, "update")
    return record


@opportunities_blueprint.route("/<int:opportunity_id>/stage")
class OpportunityMove(MethodView):
    @opportunities_blueprint.arguments(MoveSchema)
    @opportunities_blueprint.response(200, OpportunitySchema)
    @opportunities_blueprint.doc(**IF_MATCH_OPTIONAL)
    def post(self, data, opportunity_id):
        """Move the opportunity to another stage of its pipeline, with what the stage may
        need (a lost reason...). A refused move is a 422 ``stage_requirements`` listing
        every unmet requirement under its field; nothing changes. If-Match is checked when sent."""
        record = access.get_readable("opportunity", opportunity_id)
        may_change("opportunity", record, data)
        values = dict(data)
        stage_id = values.pop("stage_id")
        services.move(record, stage_id, actor_id=current_user.id, expected_version=optional_version(record),
                      **values)
        return with_etag(jsonify(OPPORTUNITIES.out(record)), record)


# -- the team ---------------------------------------------------------------------------------------

def _member_of(record, member_id):
    member = OpportunityMember.get_or_none((OpportunityMember.id == member_id)
                                           & (OpportunityMember.opportunity == record.id))
    if member is None:
        raise ApiError(404)
    return member


@opportunities_blueprint.route("/<int:opportunity_id>/members")
class OpportunityMembers(MethodView):
    @opportunities_blueprint.response(200, MemberSchema(many=True))
    def get(self, opportunity_id):
        """The opportunity's team (besides its owner)."""
        record = access.get_readable("opportunity", opportunity_id)
        return services.members(record)

    @opportunities_blueprint.arguments(MemberSchema)
    @opportunities_blueprint.response(201, MemberSchema)
    def post(self, data, opportunity_id):
        """Put a user on the team: they read the opportunity (or change it, access = edit).
        Needs the edit level on the opportunity."""
        record = _changeable(opportunity_id)
        return services.add_member(record, data, actor_id=current_user.id)


@opportunities_blueprint.route("/<int:opportunity_id>/members/<int:member_id>")
class OpportunityMember_(MethodView):
    @opportunities_blueprint.arguments(MemberPatchSchema)
    @opportunities_blueprint.response(200, MemberSchema)
    def patch(self, data, opportunity_id, member_id):
        """Change a member's role or access."""
        record = _changeable(opportunity_id)
        return services.update_member(_member_of(record, member_id), data, actor_id=current_user.id)

    @opportunities_blueprint.response(204)
    def delete(self, opportunity_id, member_id):
        """Take a user off the team."""
        record = _changeable(opportunity_id)
        services.remove_member(_member_of(record, member_id), actor_id=current_user.id)


OpportunityMember_.__name__ = "OpportunityMemberItem"


# -- bulk edit -------------------------------------------------------------------------------------

def bulk_update(ids, changes, actor_id):
    """Apply ``changes`` to each opportunity on its own, through the same rules as a single
    change (stage gates included): a record that fails keeps all its values. Returns one
    result per id, in order: {"id", "ok", "status", "errors"}."""
    from flask_babel import gettext as _

    levels = access.field_levels("opportunity")
    refused_fields = [key for key in changes if levels.get("*", levels.get(key, 2)) < 2]
    results = []
    for record_id in dict.fromkeys(ids):
        engine_ = engine()
        record = engine_.query(actor_id, "opportunity").where(
            engine_.objects["opportunity"].model.id == record_id).first()
        if record is None:
            results.append({"id": record_id, "ok": False, "status": 404,
                            "errors": {"id": [_("No such opportunity.")]}})
            continue
        giving = "owner_id" in changes and changes["owner_id"] != record.owner_id
        if not engine_.can(actor_id, record, "transfer" if giving else "update"):
            results.append({"id": record_id, "ok": False, "status": 403,
                            "errors": {"id": [_("You may not change this opportunity.")]}})
            continue
        if refused_fields:
            results.append({"id": record_id, "ok": False, "status": 422,
                            "errors": {key: [_("You may not change this field.")] for key in refused_fields}})
            continue
        try:
            services.update_opportunity(record, dict(changes), actor_id=actor_id)
        except UserError as problem:
            results.append({"id": record_id, "ok": False, "status": 409 if problem.code in UserError.CONFLICTS
                            else 422, "errors": {f: _messages(m) for f, m in problem.fields.items()}})
            continue
        except FieldValueError as problem:
            results.append({"id": record_id, "ok": False, "status": 422,
                            "errors": {problem.field: [str(problem.message)]}})
            continue
        results.append({"id": record_id, "ok": True, "status": 200, "errors": {}})
    return results


@opportunities_blueprint.route("/bulk")
class OpportunityBulk(MethodView):
    @opportunities_blueprint.arguments(BulkSchema)
    @opportunities_blueprint.response(200, BulkResponseSchema)
    def post(self, data):
        """Change several opportunities at once (owner, stage, expected close date,
        probability...): each goes through the rules of a single change and either changes
        whole or not at all; the answer says, per id, whether it changed and why not."""
        access.require_object("opportunity", "update")
        if not data["changes"]:
            raise ApiError(422, fields={"changes": [str(_nothing_message())]})
        results = bulk_update(data["ids"], data["changes"], current_user.id)
        changed = sum(1 for result in results if result["ok"])
        return {"results": results, "changed": changed, "failed": len(results) - changed}


def _nothing_message():
    from flask_babel import lazy_gettext as _l

    return _l("Say what to change.")


# -- pipelines, stages, lost reasons ----------------------------------------------------------------

def require_configure():
    if not engine().has_permission(current_user.id, CONFIGURE):
        raise ApiError(403)


def pipeline_out(pipeline):
    data = PipelineSchema(exclude=("stages",)).dump(pipeline)
    data["stages"] = StageSchema(many=True).dump(services.stages(pipeline, include_inactive=True))
    return data


def _alive_or_404(model, condition):
    record = model.alive().where(condition).first()
    if record is None:
        raise ApiError(404)
    return record


def _pipeline(pipeline_id):
    return _alive_or_404(Pipeline, Pipeline.id == pipeline_id)


def _stage(pipeline, stage_id):
    return _alive_or_404(Stage, (Stage.id == stage_id) & (Stage.pipeline == pipeline.id))


@pipelines_blueprint.route("")
class Pipelines(MethodView):
    @pipelines_blueprint.response(200, PipelineSchema(many=True))
    def get(self):
        """The company's pipelines in order, each with its stages (switched-off ones included)."""
        include = request.args.get("include_inactive", "").lower() in ("1", "true", "yes")
        return jsonify([pipeline_out(p) for p in services.pipelines(include_inactive=include)])

    @pipelines_blueprint.arguments(PipelineSchema)
    @pipelines_blueprint.response(201, PipelineSchema)
    def post(self, data):
        """A new pipeline, with its stages in order (needs opportunities.configure)."""
        require_configure()
        pipeline = services.create_pipeline(data, actor_id=current_user.id)
        return with_etag(jsonify(pipeline_out(pipeline)), pipeline), 201


Pipelines.get = pipelines_blueprint.doc(parameters=[{"in": "query", "name": "include_inactive", "required": False,
                                                     "schema": {"type": "boolean"}}])(Pipelines.get)


@pipelines_blueprint.route("/<int:pipeline_id>")
class PipelineItem(MethodView):
    @pipelines_blueprint.response(200, PipelineSchema)
    def get(self, pipeline_id):
        """One pipeline with its stages."""
        pipeline = _pipeline(pipeline_id)
        return with_etag(jsonify(pipeline_out(pipeline)), pipeline)

    @pipelines_blueprint.arguments(PipelinePatchSchema)
    @pipelines_blueprint.response(200, PipelineSchema)
    @pipelines_blueprint.doc(**IF_MATCH)
    def patch(self, data, pipeline_id):
        """Rename, make the default, switch off (If-Match: its version)."""
        require_configure()
        pipeline = _pipeline(pipeline_id)
        services.update_pipeline(pipeline, data, actor_id=current_user.id, expected_version=check_if_match(pipeline))
        return with_etag(jsonify(pipeline_out(pipeline)), pipeline)

    @pipelines_blueprint.response(204)
    @pipelines_blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, pipeline_id):
        """Into the recycle bin with its stages (409 while opportunities use it)."""
        require_configure()
        pipeline = _pipeline(pipeline_id)
        services.delete_pipeline(pipeline, actor_id=current_user.id, expected_version=optional_version(pipeline))


@pipelines_blueprint.route("/<int:pipeline_id>/stages")
class PipelineStages(MethodView):
    @pipelines_blueprint.response(200, StageSchema(many=True))
    def get(self, pipeline_id):
        """The pipeline's stages in order."""
        return services.stages(_pipeline(pipeline_id), include_inactive=True)

    @pipelines_blueprint.arguments(StageSchema)
    @pipelines_blueprint.response(201, StageSchema)
    def post(self, data, pipeline_id):
        """A new stage (at the end unless a position is given)."""
        require_configure()
        stage = services.create_stage(_pipeline(pipeline_id), data, actor_id=current_user.id)
        return with_etag(jsonify(StageSchema().dump(stage)), stage), 201


@pipelines_blueprint.route("/<int:pipeline_id>/stages/reorder")
class PipelineStagesReorder(MethodView):
    @pipelines_blueprint.arguments(ReorderSchema)
    @pipelines_blueprint.response(200, StageSchema(many=True))
    def post(self, data, pipeline_id):
        """Put the stages in this order (every stage of the pipeline, once)."""
        require_configure()
        pipeline = _pipeline(pipeline_id)
        services.reorder_stages(pipeline, data["stage_ids"], actor_id=current_user.id)
        return services.stages(pipeline, include_inactive=True)


@pipelines_blueprint.route("/<int:pipeline_id>/stages/<int:stage_id>")
class PipelineStage(MethodView):
    @pipelines_blueprint.response(200, StageSchema)
    def get(self, pipeline_id, stage_id):
        """One stage."""
        stage = _stage(_pipeline(pipeline_id), stage_id)
        return with_etag(jsonify(StageSchema().dump(stage)), stage)

    @pipelines_blueprint.arguments(StagePatchSchema)
    @pipelines_blueprint.response(200, StageSchema)
    @pipelines_blueprint.doc(**IF_MATCH)
    def patch(self, data, pipeline_id, stage_id):
        """Rename, re-weigh, switch off a stage (its kind is fixed once deals are in it)."""
        require_configure()
        stage = _stage(_pipeline(pipeline_id), stage_id)
        services.update_stage(stage, data, actor_id=current_user.id, expected_version=check_if_match(stage))
        return with_etag(jsonify(StageSchema().dump(stage)), stage)

    @pipelines_blueprint.response(204)
    @pipelines_blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, pipeline_id, stage_id):
        """Into the recycle bin (409 once deals are in it or passed through it)."""
        require_configure()
        stage = _stage(_pipeline(pipeline_id), stage_id)
        services.delete_stage(stage, actor_id=current_user.id, expected_version=optional_version(stage))


def _reason(reason_id):
    return _alive_or_404(LostReason, LostReason.id == reason_id)


@lost_reasons_blueprint.route("")
class LostReasons(MethodView):
    @lost_reasons_blueprint.response(200, LostReasonSchema(many=True))
    def get(self):
        """The company's reasons in order (switched-off ones included, active false)."""
        return services.lost_reasons(include_inactive=True)

    @lost_reasons_blueprint.arguments(LostReasonSchema)
    @lost_reasons_blueprint.response(201, LostReasonSchema)
    def post(self, data):
        """A new reason (needs opportunities.configure)."""
        require_configure()
        reason = services.create_lost_reason(data, actor_id=current_user.id)
        return with_etag(jsonify(LostReasonSchema().dump(reason)), reason), 201


@lost_reasons_blueprint.route("/<int:reason_id>")
class LostReasonItem(MethodView):
    @lost_reasons_blueprint.response(200, LostReasonSchema)
    def get(self, reason_id):
        """One reason."""
        reason = _reason(reason_id)
        return with_etag(jsonify(LostReasonSchema().dump(reason)), reason)

    @lost_reasons_blueprint.arguments(LostReasonPatchSchema)
    @lost_reasons_blueprint.response(200, LostReasonSchema)
    @lost_reasons_blueprint.doc(**IF_MATCH)
    def patch(self, data, reason_id):
        """Rename, reorder or switch off (If-Match: its version)."""
        require_configure()
        reason = _reason(reason_id)
        services.update_lost_reason(reason, data, actor_id=current_user.id, expected_version=check_if_match(reason))
        return with_etag(jsonify(LostReasonSchema().dump(reason)), reason)

    @lost_reasons_blueprint.response(204)
    @lost_reasons_blueprint.doc(**IF_MATCH_OPTIONAL)
    def delete(self, reason_id):
        """Into the recycle bin (409 once lost deals give it: switch it off instead)."""
        require_configure()
        reason = _reason(reason_id)
        services.delete_lost_reason(reason, actor_id=current_user.id, expected_version=optional_version(reason))
