"""Reports API: the funnel (``GET /reports/funnel``) and the currency rates the company
maintains (``/currency-rates``): everyone reads them, the ``currency_rates.manage``
permission changes them."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify
from flask.views import MethodView
from flask_login import current_user

from crm_core.api import ApiError, Blueprint, Schema
from crm_core.errors import UserError
from crm_core.api import access
from crm_core.funnel import rates, services
from crm_core.funnel.models import CurrencyRate
from crm_core.permissions import engine

reports_blueprint = Blueprint("reports_api", __name__, url_prefix="/reports",
                              description="Reports over the records the caller may see.")
rates_blueprint = Blueprint("currency_rates_api", __name__, url_prefix="/currency-rates",
                            description="Currency rates the company maintains for money totals.")
ID = ma.validate.Range(min=1, max=2**63 - 1)
MONEY = {"description": "a decimal as a string, in `currency`; null when a rate is missing "
                        "or the amount is hidden from the caller"}


class FunnelQuery(Schema):
    pipeline_id = ma.fields.Integer(validate=ID, metadata={"description": "default: the default pipeline"})
    owner_id = ma.fields.Integer(validate=ID, metadata={"description": "one person's opportunities"})
    team_id = ma.fields.Integer(validate=ID, metadata={"description": "the team members' opportunities"})
    department_id = ma.fields.Integer(validate=ID, metadata={
        "description": "the opportunities of the department and the departments below it"})
    currency = ma.fields.String(metadata={"description": "convert every amount into this currency "
                                                         "(422 when a rate is missing)"})
    closed_from = ma.fields.Date(metadata={"description": "win rate: closed on or after"})
    closed_to = ma.fields.Date(metadata={"description": "win rate: closed on or before"})
    dimension = ma.fields.String(validate=ma.validate.Length(min=1, max=64), metadata={
        "description": "restrict to the opportunities whose report dimension (GET "
                       "/analysis/pipeline's `by`: owner, source, campaign, industry, region, country, "
                       "close_month, close_quarter, stage, pipeline, or a plugin's such as territory) "
                       "equals `value`; exact (a scan under the access rules). 400 for an unknown "
                       "dimension or one revealing a field hidden from the caller"})
    value = ma.fields.String(validate=ma.validate.Length(max=200), metadata={
        "description": "the dimension's value as the pipeline analysis shows it (an id for owner, "
                       "campaign, stage, pipeline, territory; text otherwise); empty: records "
                       "without one. Only with `dimension`"})
    lang = ma.fields.String(load_default=None, load_only=True)

    @ma.validates_schema
    def _value_needs_a_dimension(self, data, **_kwargs):
        from flask_babel import lazy_gettext as _l

        if "value" in data and "dimension" not in data:
            raise ma.ValidationError({"dimension": [str(_l("Name the dimension the value belongs to."))]})


class CurrencyAmountSchema(Schema):
    currency = ma.fields.String()
    count = ma.fields.Integer()
    amount = ma.fields.String(allow_none=True)
    weighted_amount = ma.fields.String(allow_none=True)


class FunnelStageSchema(Schema):
    stage_id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "open, won or lost"})
    position = ma.fields.Integer()
    probability = ma.fields.Integer()
    count = ma.fields.Integer()
    amount = ma.fields.String(allow_none=True, metadata=MONEY)
    weighted_amount = ma.fields.String(allow_none=True, metadata=MONEY)
    currency = ma.fields.String()
    amounts = ma.fields.List(ma.fields.Nested(CurrencyAmountSchema), metadata={"description": "per currency"})


class CurrencyTotalsSchema(Schema):
    currency = ma.fields.String()
    total_amount = ma.fields.String(allow_none=True)
    weighted_amount = ma.fields.String(allow_none=True)
    won_amount = ma.fields.String(allow_none=True)
    lost_amount = ma.fields.String(allow_none=True)


class FunnelSchema(Schema):
    pipeline_id = ma.fields.Integer()
    pipeline = ma.fields.String()
    owner_id = ma.fields.Integer(allow_none=True)
    team_id = ma.fields.Integer(allow_none=True)
    department_id = ma.fields.Integer(allow_none=True)
    dimension = ma.fields.String(allow_none=True, metadata={"description": "the dimension restricting it"})
    dimension_label = ma.fields.String(allow_none=True)
    value = ma.fields.String(allow_none=True, metadata={"description": "its value (null: none)"})
    value_label = ma.fields.String(allow_none=True, metadata={"description": "the value's name"})
    currency = ma.fields.String(metadata={"description": "of every converted amount"})
    missing_rates = ma.fields.List(ma.fields.String(), metadata={
        "description": "currencies without a rate today: the converted totals are null"})
    stages = ma.fields.List(ma.fields.Nested(FunnelStageSchema), metadata={"description": "in order"})
    total_count = ma.fields.Integer(metadata={"description": "open stages only"})
    total_amount = ma.fields.String(allow_none=True, metadata={"description": "open stages only"})
    weighted_amount = ma.fields.String(allow_none=True, metadata={"description": "open amount x probability"})
    totals_by_currency = ma.fields.List(ma.fields.Nested(CurrencyTotalsSchema))
    closed_from = ma.fields.Date(allow_none=True)
    closed_to = ma.fields.Date(allow_none=True)
    won_count = ma.fields.Integer()
    lost_count = ma.fields.Integer()
    won_amount = ma.fields.String(allow_none=True)
    lost_amount = ma.fields.String(allow_none=True)
    win_rate = ma.fields.Float(allow_none=True, metadata={"description": "won / (won + lost) by count"})
    win_rate_value = ma.fields.Float(allow_none=True, metadata={"description": "won / (won + lost) by value"})


@reports_blueprint.route("/funnel")
class Funnel(MethodView):
    @reports_blueprint.arguments(FunnelQuery, location="query")
    @reports_blueprint.response(200, FunnelSchema)
    def get(self, args):
        """The funnel of a pipeline: per stage (in order) the count, amount and weighted
        amount of the opportunities the caller may see, the open totals and the win rate
        (over ``closed_from``..``closed_to`` when given), for one person, a team, a
        department's subtree or everyone; ``dimension`` and ``value`` restrict it to one
        value of a report dimension (the territory plugin's: ``dimension=territory&value=<id>``)."""
        access.require_object("opportunity", "read")
        args.pop("lang", None)
        if "dimension" in args:
            args.setdefault("value", "")
        try:
            return jsonify(services.funnel(current_user.id, **args))
        except UserError as problem:
            if problem.code not in ("unknown_dimension", "hidden_field"):
                raise
            # Like the pipeline analysis: a dimension is a question the caller may not ask.
            raise ApiError(400, "hidden_field" if problem.code == "hidden_field" else None,
                           fields={name: [str(message)] for name, message in problem.fields.items()})


class CurrencyRateSchema(Schema):
    id = ma.fields.Integer(dump_only=True)
    currency = ma.fields.String(required=True)
    rate = ma.fields.String(required=True, metadata={
        "description": "units of the company currency one unit of `currency` is worth"})
    valid_from = ma.fields.Date(required=True)
    created_at = ma.fields.DateTime(dump_only=True)


class CurrencyRateListSchema(Schema):
    company_currency = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(CurrencyRateSchema))


def _dump(rate):
    return {"id": rate.id, "currency": rate.currency, "rate": rate.rate,
            "valid_from": rate.valid_from.isoformat(), "created_at": rate.created_at.isoformat()}


def _require_manage():
    if not engine().has_permission(current_user.id, "currency_rates.manage"):
        raise ApiError(403)


@rates_blueprint.route("")
class Rates(MethodView):
    @rates_blueprint.response(200, CurrencyRateListSchema)
    def get(self):
        """Every rate, newest first per currency."""
        return jsonify({"company_currency": rates.company_currency(),
                        "items": [_dump(r) for r in rates.rates()]})

    @rates_blueprint.arguments(CurrencyRateSchema)
    @rates_blueprint.response(201, CurrencyRateSchema)
    def post(self, data):
        """Record a rate valid from a date (one per currency and date)."""
        _require_manage()
        return jsonify(_dump(rates.create_rate(data, actor_id=current_user.id))), 201


@rates_blueprint.route("/<int:currency_rate_id>")
class RateItem(MethodView):
    @rates_blueprint.response(200, CurrencyRateSchema)
    def get(self, currency_rate_id):
        """One rate."""
        rate = CurrencyRate.get_or_none(CurrencyRate.id == currency_rate_id)
        if rate is None:
            raise ApiError(404)
        return jsonify(_dump(rate))

    @rates_blueprint.response(204)
    def delete(self, currency_rate_id):
        """Delete a rate entered by mistake."""
        _require_manage()
        rate = CurrencyRate.get_or_none(CurrencyRate.id == currency_rate_id)
        if rate is None:
            raise ApiError(404)
        rates.delete_rate(rate)
        return "", 204
