"""The analysis API: ``/reports/pipeline``, ``/reports/lost-deals``, ``/reports/velocity``,
``/reports/trend`` and ``/opportunities/<id>/stage-history``, over what the caller may see.

Money comes per currency: every group has one ``totals`` entry per currency."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.analysis import reports, snapshots
from crm_core.analysis.dimensions import dimensions
from crm_core.api import ApiError, Blueprint, Schema
from crm_core.api import access
from crm_core.api.fields import Amount
from crm_core.api.resources import ID
from crm_core.opportunities.models import STAGE_KINDS

blueprint = Blueprint("analysis_api", __name__, url_prefix="/reports",
                      description="Analysis: the pipeline by dimension, lost deals, velocity, the trend.")
history_blueprint = Blueprint("stage_history_api", __name__, url_prefix="/opportunities",
                              description="The stage history of an opportunity.")


# -- arguments -------------------------------------------------------------------------------------

class FilterSchema(Schema):
    pipeline_id = ma.fields.Integer(load_default=None, validate=ID)
    owner_id = ma.fields.Integer(load_default=None, validate=ID)
    department_id = ma.fields.Integer(load_default=None, validate=ID, metadata={
        "description": "opportunities owned by people in this department or below it"})
    date_from = ma.fields.Date(load_default=None, metadata={"description": "first day of the period"})
    date_to = ma.fields.Date(load_default=None, metadata={"description": "last day of the period"})
    lang = ma.fields.String(load_default=None, load_only=True)

    @ma.validates_schema
    def _period(self, data, **_kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ma.ValidationError({"date_to": [str(_l("The end of the period comes before its start."))]})


class PipelineQuerySchema(FilterSchema):
    by = ma.fields.String(required=True, metadata={
        "description": "owner, source, campaign, industry, region, country, close_month, close_quarter, "
                       "stage, pipeline, or a dimension a plugin registers (territory)"})
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STAGE_KINDS))


class LostQuerySchema(FilterSchema):
    by = ma.fields.String(load_default="reason", validate=ma.validate.OneOf(list(reports.LOST_DIMENSIONS)))


class TrendQuerySchema(Schema):
    since = ma.fields.Date(required=True, metadata={"description": "compare the snapshot of this day with now"})
    category = ma.fields.String(load_default=None, validate=ma.validate.OneOf(list(snapshots.CATEGORIES)),
                                metadata={"description": "list the opportunities of this category"})
    pipeline_id = ma.fields.Integer(load_default=None, validate=ID)
    owner_id = ma.fields.Integer(load_default=None, validate=ID)
    department_id = ma.fields.Integer(load_default=None, validate=ID)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    lang = ma.fields.String(load_default=None, load_only=True)


# -- answers ----------------------------------------------------------------------------------------

class MoneyEntrySchema(Schema):
    currency = ma.fields.String()
    count = ma.fields.Integer()
    amount = Amount(allow_none=True, metadata={"description": "null when the caller may not see amounts"})
    weighted_amount = Amount(allow_none=True, metadata={"description": "amount x probability"})


class LostEntrySchema(Schema):
    currency = ma.fields.String()
    count = ma.fields.Integer()
    amount = Amount(allow_none=True)


class RowSchema(Schema):
    key = ma.fields.Raw(allow_none=True, metadata={"description": "the group's value (an id, a code, a month)"})
    label = ma.fields.String()
    count = ma.fields.Integer()
    totals = ma.fields.List(ma.fields.Nested(MoneyEntrySchema))


class PipelineReportSchema(Schema):
    by = ma.fields.String()
    label = ma.fields.String()
    rows = ma.fields.List(ma.fields.Nested(RowSchema))
    count = ma.fields.Integer()
    totals = ma.fields.List(ma.fields.Nested(MoneyEntrySchema))


class LostRowSchema(RowSchema):
    totals = ma.fields.List(ma.fields.Nested(LostEntrySchema))


class LostReportSchema(PipelineReportSchema):
    rows = ma.fields.List(ma.fields.Nested(LostRowSchema))
    totals = ma.fields.List(ma.fields.Nested(LostEntrySchema))


class VelocityStageSchema(Schema):
    stage_id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String()
    count = ma.fields.Integer(metadata={"description": "stays in the stage that ended in the period"})
    average_days = ma.fields.Float(allow_none=True)
    median_days = ma.fields.Float(allow_none=True)


class VelocityPipelineSchema(Schema):
    pipeline_id = ma.fields.Integer()
    name = ma.fields.String()
    stages = ma.fields.List(ma.fields.Nested(VelocityStageSchema))
    won_count = ma.fields.Integer()
    average_days_to_win = ma.fields.Float(allow_none=True)
    median_days_to_win = ma.fields.Float(allow_none=True)


class VelocitySchema(Schema):
    pipelines = ma.fields.List(ma.fields.Nested(VelocityPipelineSchema))


class TrendCategorySchema(Schema):
    key = ma.fields.String()
    label = ma.fields.String()
    count = ma.fields.Integer()
    totals = ma.fields.List(ma.fields.Nested(LostEntrySchema))


class TrendItemSchema(Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    owner_id = ma.fields.Integer()
    status = ma.fields.String()
    stage_id = ma.fields.Integer()
    stage = ma.fields.String(allow_none=True)
    then_stage_id = ma.fields.Integer(allow_none=True)
    then_stage = ma.fields.String(allow_none=True)
    currency = ma.fields.String()
    amount = Amount(allow_none=True)
    then_amount = Amount(allow_none=True)
    expected_close_date = ma.fields.Date(allow_none=True)
    then_expected_close_date = ma.fields.Date(allow_none=True)


class TrendSchema(Schema):
    since = ma.fields.Date()
    snapshot_day = ma.fields.Date(metadata={"description": "the snapshot compared: the latest on or before since"})
    categories = ma.fields.List(ma.fields.Nested(TrendCategorySchema))
    category = ma.fields.String(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(TrendItemSchema))
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()


class StageMoveSchema(Schema):
    id = ma.fields.Integer()
    from_stage_id = ma.fields.Integer(allow_none=True)
    from_stage = ma.fields.String(allow_none=True)
    to_stage_id = ma.fields.Integer()
    to_stage = ma.fields.String(allow_none=True)
    kind = ma.fields.String(allow_none=True)
    changed_at = ma.fields.DateTime()
    changed_by_id = ma.fields.Integer(allow_none=True)
    changed_by = ma.fields.String(allow_none=True)
    left_at = ma.fields.DateTime(allow_none=True)
    current = ma.fields.Boolean()
    days_in_stage = ma.fields.Float(allow_none=True, metadata={
        "description": "days spent in the stage (so far, for the open stage it is in); null once closed"})
    currency = ma.fields.String(allow_none=True)
    amount = Amount(allow_none=True)
    probability = ma.fields.Integer(allow_none=True)


class StageHistorySchema(Schema):
    opportunity_id = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(StageMoveSchema))


# -- checks ------------------------------------------------------------------------------------------

def _readable_opportunities():
    access.require_object("opportunity", "read")


def _no_hidden(pairs):
    hidden = reports.hidden_fields(current_user.id, pairs)
    if hidden:
        raise ApiError(400, "hidden_field", fields={
            name: [str(_l("You cannot filter or sort by this field."))] for name in hidden})


def _filter_fields(args):
    used = [("opportunity", name) for name in ("pipeline_id", "owner_id", "status") if args.get(name) is not None]
    if args.get("department_id") is not None:
        used.append(("opportunity", "owner_id"))
    return used


# -- routes --------------------------------------------------------------------------------------------

@blueprint.route("/pipeline")
class PipelineReport(MethodView):
    @blueprint.arguments(PipelineQuerySchema, location="query")
    @blueprint.response(200, PipelineReportSchema)
    def get(self, args):
        """The pipeline grouped by a dimension: count, amount and weighted amount per
        currency, over the opportunities the caller may see. The period applies to the
        closed date, or the expected close date of open opportunities."""
        _readable_opportunities()
        known = dimensions()
        if args["by"] not in known:
            raise ApiError(400, fields={"by": [str(_l("Choose one of: %(choices)s.",
                                                      choices=", ".join(known)))]})
        _no_hidden(list(known[args["by"]].fields) + _filter_fields(args))
        return reports.pipeline_report(current_user.id, args.pop("by"), reports.Filters.of(args))


@blueprint.route("/lost-deals")
class LostDeals(MethodView):
    @blueprint.arguments(LostQuerySchema, location="query")
    @blueprint.response(200, LostReportSchema)
    def get(self, args):
        """Lost deals closed in the period, grouped by lost reason, the stage they were in
        before they were lost (from the stage history), owner or competitor."""
        _readable_opportunities()
        _no_hidden(list(reports.LOST_FIELDS[args["by"]]) + _filter_fields(args))
        return reports.lost_deals_report(current_user.id, args.pop("by"), reports.Filters.of(args))


@blueprint.route("/velocity")
class Velocity(MethodView):
    @blueprint.arguments(FilterSchema, location="query")
    @blueprint.response(200, VelocitySchema)
    def get(self, args):
        """Average and median days per stage (stays that ended in the period) and days to
        win (deals won in the period), per pipeline."""
        _readable_opportunities()
        _no_hidden(_filter_fields(args))
        return reports.velocity_report(current_user.id, reports.Filters.of(args))


@blueprint.route("/trend")
class Trend(MethodView):
    @blueprint.arguments(TrendQuerySchema, location="query")
    @blueprint.response(200, TrendSchema)
    def get(self, args):
        """What was added, won, lost, moved to another stage or slipped (expected close date
        pushed later) since a day: the snapshot of that day (or the latest before it)
        compared with now, over what the caller may see now; counts and amounts per
        category, and one page of the opportunities of ``category``."""
        _readable_opportunities()
        _no_hidden(_filter_fields(args))
        filters = reports.Filters(pipeline_id=args["pipeline_id"], owner_id=args["owner_id"],
                                  department_id=args["department_id"])
        return snapshots.trend_report(current_user.id, args["since"], filters, args["category"],
                                      args["page"], args["per_page"])


@history_blueprint.route("/<int:opportunity_id>/stage-history")
class StageHistory(MethodView):
    @history_blueprint.response(200, StageHistorySchema)
    def get(self, opportunity_id):
        """Every stage move of the opportunity: from and to which stage, who, when, and the
        days spent in each stage. A 404 for an opportunity the caller may not read."""
        record = access.get_readable("opportunity", opportunity_id)
        items = reports.stage_history(record)
        hide_amount = reports.hidden_fields(current_user.id, [("opportunity", "amount")])
        hide_probability = reports.hidden_fields(current_user.id, [("opportunity", "probability")])
        for item in items:
            if hide_amount:
                item["amount"] = item["currency"] = None
            if hide_probability:
                item["probability"] = None
        return {"opportunity_id": record.id, "items": items}
