"""What the pipeline analysis can group opportunities by: the core's dimensions and those
plugins register through ``crm_register_report_dimensions`` (the territory plugin adds
"territory")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.errors import RegistryError

ORDERS = ("count", "value", "names")


@dataclass(frozen=True)
class ReportDimension:
    """A way to group opportunities (see docs/hooks.md, crm_register_report_dimensions)."""

    key: str
    label: Any
    expression: Any  # a peewee node, or a function (vendor) -> node
    join: Callable | None = None  # query -> query with the joins the expression needs
    names: Callable | None = None  # (values, user_id) -> {value: label}
    fields: tuple = field(default_factory=tuple)  # (object, field) pairs the grouping reveals
    order: str = "count"

    def validate(self, owner):
        if not self.key or not self.key.replace("_", "").isalnum():
            raise RegistryError(f"{owner}: report dimension key {self.key!r} must be letters, digits and _")
        if self.order not in ORDERS:
            raise RegistryError(f"{owner}: report dimension {self.key!r}: order must be one of "
                                f"{', '.join(ORDERS)}")
        if not (isinstance(self.expression, peewee.Node) or callable(self.expression)):
            raise RegistryError(f"{owner}: report dimension {self.key!r} has no expression")

    def column(self, vendor):
        return self.expression if isinstance(self.expression, peewee.Node) else self.expression(vendor)


def collect(app, host):
    """Every owner's dimensions into the ``report dimensions`` registry (called once, when
    the application is created)."""
    def check(spec, owner):
        if not isinstance(spec, ReportDimension):
            raise RegistryError(f"{owner}: {spec!r} is not a crm_core.analysis.ReportDimension")
        spec.validate(owner)

    return host.collect("crm_register_report_dimensions", "report dimension", "report dimensions",
                        lambda spec: spec.key, check, app=app)


def dimensions(app=None):
    """{key: ReportDimension} in registration order (core first)."""
    registry = (app or current_app).extensions["crm"].registries["report dimensions"]
    return dict(registry.items())


# -- the core's dimensions --------------------------------------------------------------------------

def user_names(values, _user_id):
    from crm_core.users.models import User

    ids = [v for v in values if v is not None]
    return {uid: name for uid, name in User.select(User.id, User.name).where(User.id.in_(ids)).tuples()}


def _sources(values, _user_id):
    from crm_core.leads.views import SOURCES

    return {key: label for key, label in SOURCES}


def _campaigns(values, user_id):
    """Names of the campaigns the reader may read; the others stay unnamed (their id)."""
    from crm_core.leads.models import Campaign
    from crm_core.permissions import engine

    ids = [v for v in values if v is not None]
    readable = engine().query(user_id, "campaign", Campaign.id, Campaign.name).where(Campaign.id.in_(ids))
    return dict(readable.tuples())


def _countries(values, _user_id):
    from flask_babel import get_locale

    names = get_locale().territories if get_locale() is not None else {}
    return {v: names.get(v, v) for v in values if v}


def stage_names(values, _user_id):
    from crm_core.opportunities.models import Pipeline, Stage

    rows = (Stage.select(Stage.id, Stage.name, Pipeline.name).join(Pipeline)
            .where(Stage.id.in_([v for v in values if v is not None]))
            .order_by(Pipeline.position, Pipeline.id, Stage.position, Stage.id).tuples())
    several = len({pipeline for _id, _name, pipeline in rows}) > 1
    return {sid: f"{pipeline} · {name}" if several else name for sid, name, pipeline in rows}


def _pipelines(values, _user_id):
    from crm_core.opportunities.models import Pipeline

    return dict(Pipeline.select(Pipeline.id, Pipeline.name)
                .where(Pipeline.id.in_([v for v in values if v is not None]))
                .order_by(Pipeline.position, Pipeline.id).tuples())


def _join_account(query):
    from crm_core.accounts.models import Account
    from crm_core.opportunities.models import Opportunity

    return query.join(Account, peewee.JOIN.LEFT_OUTER, on=(Opportunity.account == Account.id))


def _close_month(vendor):
    from crm_core.opportunities.models import Opportunity

    if vendor == "postgresql":
        return peewee.fn.to_char(Opportunity.expected_close_date, "YYYY-MM")
    return peewee.fn.strftime("%Y-%m", Opportunity.expected_close_date)


def _close_quarter(vendor):
    from crm_core.opportunities.models import Opportunity

    day = Opportunity.expected_close_date
    if vendor == "postgresql":
        return peewee.fn.to_char(day, 'YYYY-"Q"Q')
    quarter = (peewee.Cast(peewee.fn.strftime("%m", day), "INTEGER") + 2) / 3
    return peewee.fn.strftime("%Y", day).concat("-Q").concat(peewee.Cast(quarter, "TEXT"))


def core_dimensions():
    from crm_core.accounts.models import Account
    from crm_core.opportunities.models import Opportunity

    return [
        ReportDimension("owner", _l("Owner"), Opportunity.owner_id, names=user_names,
                        fields=(("opportunity", "owner_id"),)),
        ReportDimension("source", _l("Source"), Opportunity.source, names=_sources,
                        fields=(("opportunity", "source"),)),
        ReportDimension("campaign", _l("Campaign"), Opportunity.campaign, names=_campaigns,
                        fields=(("opportunity", "campaign_id"),)),
        ReportDimension("industry", _l("Industry"), Account.industry, join=_join_account,
                        fields=(("account", "industry"),)),
        ReportDimension("region", _l("Region"), Account.region, join=_join_account,
                        fields=(("account", "region"),)),
        ReportDimension("country", _l("Country"), Account.country, join=_join_account, names=_countries,
                        fields=(("account", "country"),)),
        ReportDimension("close_month", _l("Expected close month"), _close_month, order="value",
                        fields=(("opportunity", "expected_close_date"),)),
        ReportDimension("close_quarter", _l("Expected close quarter"), _close_quarter, order="value",
                        fields=(("opportunity", "expected_close_date"),)),
        ReportDimension("stage", _l("Stage"), Opportunity.stage, names=stage_names, order="names",
                        fields=(("opportunity", "stage_id"),)),
        ReportDimension("pipeline", _l("Pipeline"), Opportunity.pipeline, names=_pipelines, order="names",
                        fields=(("opportunity", "pipeline_id"),)),
    ]
