"""The territory as a report dimension, and the numbers of a territory's page.

An opportunity's territory is where its account is placed in the ACTIVE model (an
opportunity is never placed itself); an opportunity whose account is not placed there has
none. The dimension is an expression, so the pipeline analysis (``?by=territory``) and the
funnel (``?dimension=territory&value=<id>``) group and filter with it over what the
access engine lets the reader see.
"""

from __future__ import annotations

from collections import defaultdict

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.analysis.dimensions import ReportDimension
from crm_territory import services
from crm_territory.models import Territory, TerritoryRecord
from crm_territory.placement import active_model_id, placed_in

NO_MODEL = -1  # a model id no row has: with no active model nothing is placed


def territory_of_opportunity(_vendor=None):
    """The territory id of ``Opportunity``'s account in the active model as a correlated
    subquery: one value per opportunity, NULL when not placed."""
    from crm_core.opportunities.models import Opportunity

    # Read on every report: an activation counts from the very next request.
    model_id = active_model_id() or NO_MODEL
    return (TerritoryRecord
            .select(TerritoryRecord.territory_id)
            .where((TerritoryRecord.model_id == model_id) & (TerritoryRecord.object == "account")
                   & (TerritoryRecord.record_id == Opportunity.account_id)))


def territory_names(values, _user_id):
    """{value: territory name}: every signed-in user may read the tree (not the records in
    it). Values come as ids, or as their text when a filter gives them (the funnel's
    ``?value=``); each is answered under the key it came with."""
    wanted = {}
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text.isdigit() and len(text) < 19:
            wanted.setdefault(int(text), []).append(value)
    if not wanted:
        return {}
    names = dict(Territory.alive(Territory.id, Territory.name).where(Territory.id.in_(list(wanted))).tuples())
    return {value: names[tid] for tid, given in wanted.items() if tid in names for value in given}


def dimensions():
    # The grouping tells which account an opportunity belongs to, so it is as hidden as
    # the opportunity's account.
    return [ReportDimension("territory", _l("Territory"), territory_of_opportunity, names=territory_names,
                            fields=(("opportunity", "account_id"),))]


# -- a territory's page ------------------------------------------------------------------------------

def placed_accounts(territory):
    """A subquery of the ids of the accounts placed in ``territory`` and below it."""
    return placed_in(territory.model_id, "account", services.subtree_ids(territory))


def pipeline_of(territory, user_id):
    """The open pipeline of the territory's accounts (its subtree) that the reader may see:
    [{stage_id, name, pipeline, count, totals: {currency: amount units}}] per open stage in
    pipeline order, and the grand totals (Decimal amounts); amounts are None when field
    security hides them."""
    from crm_core.analysis.reports import amounts_hidden, visible
    from crm_core.opportunities.models import Opportunity, Pipeline, Stage

    query = (visible(user_id, Opportunity.stage, Opportunity.currency, peewee.fn.COUNT(Opportunity.id),
                     peewee.fn.SUM(Opportunity.amount).coerce(False))
             .where((Opportunity.status == "open") & Opportunity.account_id.in_(placed_accounts(territory)))
             .group_by(Opportunity.stage, Opportunity.currency))
    per_stage = defaultdict(lambda: {"count": 0, "totals": defaultdict(int)})
    for stage_id, currency, count, amount in query.tuples():
        per_stage[stage_id]["count"] += count
        per_stage[stage_id]["totals"][currency] += int(amount or 0)
    hide = amounts_hidden(user_id)
    stages = (Stage.select(Stage.id, Stage.name, Pipeline.name).join(Pipeline)
              .where(Stage.id.in_(list(per_stage) or [0]))
              .order_by(Pipeline.position, Pipeline.id, Stage.position, Stage.id).tuples())
    rows, count, totals = [], 0, defaultdict(int)
    for stage_id, name, pipeline in stages:
        entry = per_stage[stage_id]
        count += entry["count"]
        for currency, units in entry["totals"].items():
            totals[currency] += units
        rows.append({"stage_id": stage_id, "name": name, "pipeline": pipeline, "count": entry["count"],
                     "totals": None if hide else _amounts(entry["totals"])})
    return {"rows": rows, "count": count, "totals": None if hide else _amounts(totals)}


def _amounts(units_by_currency):
    from crm_core.money import from_units

    return {currency: from_units(units) for currency, units in sorted(units_by_currency.items())}
