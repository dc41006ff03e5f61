"""The analysis reports: the pipeline by a dimension, lost deals, one opportunity's stage
history, and velocity (days per stage, days to win).

Every report starts from the access engine's query of opportunities for the reader, so a
rep's report never counts what they cannot see. Money is totalled per currency: each
group carries one entry per currency (conversion into CRM_CURRENCY with the company's
rates plugs in at ``_entries``, once the rates exist).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass

import peewee
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from crm_core.analysis.dimensions import dimensions, stage_names, user_names
from crm_core.db import vendor
from crm_core.money import Money, from_units
from crm_core.opportunities.models import LostReason, Opportunity, Pipeline, Stage, StageChange
from crm_core.permissions import FIELD_HIDDEN, engine

LOST_DIMENSIONS = {"reason": _l("Lost reason"), "stage": _l("Stage before it was lost"),
                   "owner": _l("Owner"), "competitor": _l("Competitor")}
LOST_FIELDS = {"reason": (("opportunity", "lost_reason_id"),), "stage": (("opportunity", "stage_id"),),
               "owner": (("opportunity", "owner_id"),), "competitor": (("opportunity", "competitors"),)}


@dataclass(frozen=True)
class Filters:
    """What every report may be narrowed by; ``date_from``/``date_to`` (inclusive) apply to
    the report's own date (see each report)."""

    pipeline_id: int | None = None
    owner_id: int | None = None
    department_id: int | None = None
    status: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @classmethod
    def of(cls, args):
        return cls(**{name: args.get(name) for name in cls.__dataclass_fields__})


def hidden_fields(user_id, pairs):
    """The ``object.field`` names among ``pairs`` that field security hides from the reader
    (grouping by one of them would show what the reader may not see)."""
    hidden = []
    for object_name, field in pairs:
        levels = engine().field_levels(user_id, object_name)
        level = levels.get("*", levels.get(field, 2)) if "*" in levels else levels.get(field, 2)
        if level == FIELD_HIDDEN:
            hidden.append(f"{object_name}.{field}" if object_name != "opportunity" else field)
    return hidden


def amounts_hidden(user_id):
    return bool(hidden_fields(user_id, [("opportunity", "amount")]))


def visible(user_id, *fields):
    """The opportunities the reader may see (a SELECT of ``fields``)."""
    return engine().query(user_id, "opportunity", *fields)


def narrowed(query, filters, date=None):
    """``query`` narrowed by ``filters``; ``date`` says which day the period applies to:
    "close" (the closed date, else the expected close date), "closed", or None."""
    if filters.pipeline_id is not None:
        query = query.where(Opportunity.pipeline == filters.pipeline_id)
    if filters.owner_id is not None:
        query = query.where(Opportunity.owner_id == filters.owner_id)
    if filters.department_id is not None:
        people = engine().organisation().members("department_tree", filters.department_id)
        query = query.where(Opportunity.owner_id.in_(sorted(people) or [0]))
    if filters.status is not None:
        query = query.where(Opportunity.status == filters.status)
    for bound, compare in ((filters.date_from, "__ge__"), (filters.date_to, "__le__")):
        if bound is None or date is None:
            continue
        closed = getattr(Opportunity.closed_date, compare)(bound)
        if date == "closed":
            query = query.where(closed)
        else:
            expected = getattr(Opportunity.expected_close_date, compare)(bound)
            query = query.where((Opportunity.closed_date.is_null(False) & closed)
                                | (Opportunity.closed_date.is_null() & expected))
    return query


# -- money per currency ---------------------------------------------------------------------------

class Totals:
    """Count, amount and weighted amount per currency, added up exactly (stored units)."""

    def __init__(self):
        self.count = 0
        self._by_currency = defaultdict(lambda: [0, 0, 0])  # count, amount units, units x percent

    def add(self, currency, count, amount_units, weighted_units):
        self.count += count
        entry = self._by_currency[currency]
        entry[0] += count
        entry[1] += int(amount_units or 0)
        entry[2] += int(weighted_units or 0)

    def entries(self, amounts=True):
        return _entries(self._by_currency, amounts)

    def merge(self, other):
        for currency, (count, amount, weighted) in other._by_currency.items():
            self.add(currency, count, amount, weighted)


def _entries(by_currency, amounts=True):
    """[{currency, count, amount, weighted_amount}] in currency order; the weighted amount
    is rounded to the currency's minor unit. Amounts are None when the reader may not see
    them."""
    out = []
    for currency in sorted(by_currency):
        count, amount, weighted = by_currency[currency]
        entry = {"currency": currency, "count": count, "amount": None, "weighted_amount": None}
        if amounts:
            entry["amount"] = from_units(amount)
            entry["weighted_amount"] = Money(from_units(weighted) / 100, currency).rounded().amount
        out.append(entry)
    return out


def _label(value, names):
    if value is None or value == "":
        return _("Not set")
    return str(names.get(value, value))


def _rows(groups, names, order, amounts):
    """Report rows from {value: Totals}, sorted as the dimension says."""
    rows = [{"key": value, "label": _label(value, names), "count": totals.count,
             "totals": totals.entries(amounts)} for value, totals in groups.items()]
    if order == "value":
        rows.sort(key=lambda row: (row["key"] is None, str(row["key"])))
    elif order == "names":
        position = {value: index for index, value in enumerate(names)}
        rows.sort(key=lambda row: (position.get(row["key"], len(position)), str(row["key"])))
    else:
        rows.sort(key=lambda row: (-row["count"], row["label"].casefold()))
    return rows


def _summary(rows, groups, amounts):
    overall = Totals()
    for totals in groups.values():
        overall.merge(totals)
    return {"rows": rows, "count": overall.count, "totals": overall.entries(amounts)}


# -- the pipeline by a dimension ---------------------------------------------------------------------

def pipeline_report(user_id, by, filters=Filters()):
    """Count, amount and weighted amount (amount x probability) of the reader's visible
    opportunities grouped by dimension ``by``, per currency. The period applies to the day
    a deal closed, or is expected to close while open."""
    spec = dimensions()[by]
    column = spec.column(vendor())
    query = visible(user_id, column.alias("value"), Opportunity.currency, peewee.fn.COUNT(Opportunity.id),
                    peewee.fn.SUM(Opportunity.amount).coerce(False),
                    peewee.fn.SUM(Opportunity.amount * Opportunity.probability).coerce(False))
    if spec.join is not None:
        query = spec.join(query)
    # By position: the same expression written twice would differ in its bound parameters
    # on PostgreSQL ($1 vs $3), which then refuses to see it as grouped.
    query = narrowed(query, filters, "close").group_by(peewee.SQL("1"), Opportunity.currency)
    groups = defaultdict(Totals)
    for value, currency, count, amount, weighted in query.tuples():
        groups[value].add(currency, count, amount, weighted)
    names = spec.names(list(groups), user_id) if spec.names else {}
    amounts = not amounts_hidden(user_id)
    return {"by": by, "label": str(spec.label), **_summary(_rows(groups, names, spec.order, amounts),
                                                           groups, amounts)}


# -- lost deals ---------------------------------------------------------------------------------------

def stage_before(opportunity_id_column):
    """The stage an opportunity was in before its latest move (from the stage history)."""
    change = StageChange.alias()
    return (change.select(change.from_stage)
            .where(change.opportunity == opportunity_id_column)
            .order_by(change.changed_at.desc(), change.id.desc()).limit(1))


def competitors_of(text):
    """The competitors written on an opportunity (one a line), each once."""
    seen = {}
    for line in (text or "").splitlines():
        name = " ".join(line.split())
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return seen


def lost_deals_report(user_id, by, filters=Filters()):
    """The reader's visible lost deals closed in the period, grouped by ``by``: the lost
    reason, the stage the deal was in before it was lost (from the stage history), the
    owner, or the competitor (a deal naming two competitors counts for each)."""
    query = visible(user_id, Opportunity.currency, Opportunity.owner_id, Opportunity.lost_reason,
                    Opportunity.competitors, stage_before(Opportunity.id).alias("before"), Opportunity.amount)
    query = narrowed(query, Filters(**{**filters.__dict__, "status": None}), "closed")
    query = query.where(Opportunity.status == "lost")
    groups = defaultdict(Totals)
    labels = {}
    for currency, owner_id, reason_id, competitors, before, amount in query.tuples().iterator():
        units = 0 if amount is None else Opportunity.amount.db_value(amount)
        if by == "competitor":
            found = competitors_of(competitors)
            for key, name in found.items():
                labels.setdefault(key, name)
            keys = list(found) or [None]
        else:
            keys = [{"reason": reason_id, "stage": before, "owner": owner_id}[by]]
        for key in keys:
            groups[key].add(currency, 1, units, 0)
    values = list(groups)
    if by == "reason":
        names = dict(LostReason.select(LostReason.id, LostReason.name)
                     .where(LostReason.id.in_([v for v in values if v is not None])).tuples())
    elif by == "stage":
        names = stage_names(values, user_id)
    elif by == "owner":
        names = user_names(values, user_id)
    else:
        names = labels
    amounts = not amounts_hidden(user_id)
    rows = _rows(groups, names, "names" if by == "stage" else "count", amounts)
    for row in rows:
        for entry in row["totals"]:
            entry.pop("weighted_amount")
    summary = _summary(rows, groups, amounts)
    for entry in summary["totals"]:
        entry.pop("weighted_amount")
    return {"by": by, "label": str(LOST_DIMENSIONS[by]), **summary}


# -- stage history and velocity ------------------------------------------------------------------------

def _days(start, end):
    return round((end - start).total_seconds() / 86400, 1)


def stage_history(opportunity, now=None):
    """Every move of ``opportunity`` in order: from which stage into which, who moved it,
    when, and the days it then spent in the stage (so far, for the stage it is in while
    it is open)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    changes = list(StageChange.select().where(StageChange.opportunity == opportunity.id)
                   .order_by(StageChange.changed_at, StageChange.id))
    stage_ids = {c.to_stage_id for c in changes} | {c.from_stage_id for c in changes if c.from_stage_id}
    stages = {s.id: s for s in Stage.select().where(Stage.id.in_(sorted(stage_ids) or [0]))}
    people = user_names({c.changed_by_id for c in changes}, None)
    out = []
    for index, change in enumerate(changes):
        left_at = changes[index + 1].changed_at if index + 1 < len(changes) else None
        current = left_at is None
        to_stage = stages.get(change.to_stage_id)
        closed = current and to_stage is not None and to_stage.kind != "open"
        from_stage = stages.get(change.from_stage_id)
        out.append({
            "id": change.id, "from_stage_id": change.from_stage_id,
            "from_stage": from_stage.name if from_stage else None,
            "to_stage_id": change.to_stage_id, "to_stage": to_stage.name if to_stage else None,
            "kind": to_stage.kind if to_stage else None,
            "changed_at": change.changed_at, "changed_by_id": change.changed_by_id,
            "changed_by": people.get(change.changed_by_id), "left_at": left_at, "current": current,
            "days_in_stage": None if closed else _days(change.changed_at, left_at or now),
            "currency": change.currency, "amount": change.amount, "probability": change.probability})
    return out


def _in_period(day, filters):
    return ((filters.date_from is None or day >= filters.date_from)
            and (filters.date_to is None or day <= filters.date_to))


def velocity_report(user_id, filters=Filters()):
    """Per pipeline: the average and median days opportunities spent in each stage (stays
    that ended in the period), and the average and median days from the first stage to the
    win (deals won now whose winning move falls in the period), over the reader's visible
    opportunities. One pass over their stage history, in order."""
    ids = narrowed(visible(user_id, Opportunity.id), Filters(**{**filters.__dict__, "status": None,
                                                                  "date_from": None, "date_to": None}))
    stages = {s.id: s for s in Stage.select()}
    stays = defaultdict(list)  # stage id -> [days]
    wins = defaultdict(list)  # pipeline id -> [days]

    def close(first, last):
        # The latest move decides the stage a deal is in: won now when it went into a won stage.
        stage = stages.get(last[0]) if last else None
        if stage is not None and stage.kind == "won" and _in_period(last[1].date(), filters):
            wins[stage.pipeline_id].append(_days(first, last[1]))

    moves = (StageChange.select(StageChange.opportunity, StageChange.to_stage, StageChange.changed_at)
             .where(StageChange.opportunity.in_(ids))
             .order_by(StageChange.opportunity, StageChange.changed_at, StageChange.id).tuples())
    current, first, previous = None, None, None
    for opportunity_id, stage_id, changed_at in moves.iterator():
        if opportunity_id != current:
            close(first, previous)
            current, first, previous = opportunity_id, changed_at, None
        if previous is not None and _in_period(changed_at.date(), filters):
            stays[previous[0]].append(_days(previous[1], changed_at))
        previous = (stage_id, changed_at)
    close(first, previous)
    pipelines = Pipeline.alive().order_by(Pipeline.position, Pipeline.id)
    if filters.pipeline_id is not None:
        pipelines = pipelines.where(Pipeline.id == filters.pipeline_id)
    out = []
    for pipeline in pipelines:
        rows = []
        for stage in sorted((s for s in stages.values() if s.pipeline_id == pipeline.id and s.deleted_at is None),
                            key=lambda s: (s.position, s.id)):
            days = stays.get(stage.id, [])
            if stage.kind != "open" and not days:
                continue
            rows.append({"stage_id": stage.id, "name": stage.name, "kind": stage.kind, "count": len(days),
                         "average_days": _mean(days), "median_days": _median(days)})
        won = wins.get(pipeline.id, [])
        out.append({"pipeline_id": pipeline.id, "name": pipeline.name, "stages": rows, "won_count": len(won),
                    "average_days_to_win": _mean(won), "median_days_to_win": _median(won)})
    return {"pipelines": out}


def _mean(values):
    return round(statistics.fmean(values), 1) if values else None


def _median(values):
    return round(statistics.median(values), 1) if values else None
