"""The funnel of a pipeline as the reader may see it: per stage the count, amount and
weighted amount, the open totals and the win rate, for a rep, a team, a department (its
subtree) or everyone the reader may see.

Exact and fast: the access engine splits the reader's filter into whole owners (read
from the aggregates the triggers of migration 0019 keep) plus other grants (shares,
criteria sharing rules, team selling, plugin grants: scanned, without the records of
those owners). When the filter cannot be split (a plugin restriction...), the answer is
a plain scan under the read filter. Both give the same numbers (tests/test_funnel.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.db import vendor
from crm_core.errors import FieldValueError, UserError
from crm_core.funnel.models import FunnelClosedMonth, FunnelTotal
from crm_core.funnel.rates import MissingRate, company_currency, converter
from crm_core.money import SCALE, check_currency
from crm_core.opportunities.models import Opportunity, Pipeline, Stage
from crm_core.org.services import Problems
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, engine

CLOSED = ("won", "lost")
HUNDRED = Decimal(100)


# -- who is in the funnel -----------------------------------------------------------------------

def scope_owners(owner_id=None, team_id=None, department_id=None, problems=None):
    """The owners whose opportunities the funnel counts (before the access rules): one
    user, a team's members, a department's subtree; None for everyone."""
    from crm_core.org.models import Department, Team
    from crm_core.users.models import User

    problems = problems if problems is not None else Problems()
    given = [name for name, value in (("owner_id", owner_id), ("team_id", team_id),
                                      ("department_id", department_id)) if value is not None]
    if len(given) > 1:
        problems.add(given[1], _l("Choose one of a person, a team or a department."))
        return None
    org = engine().organisation()
    if owner_id is not None:
        if not User.select().where((User.id == owner_id) & User.deleted_at.is_null()).exists():
            problems.add("owner_id", _l("No such user."))
        return {owner_id}
    if team_id is not None:
        if not Team.select().where(Team.id == team_id).exists():
            problems.add("team_id", _l("No such team."))
        return org.members("team", team_id)
    if department_id is not None:
        if not Department.select().where((Department.id == department_id)
                                         & Department.deleted_at.is_null()).exists():
            problems.add("department_id", _l("No such department."))
        return org.members("department_tree", department_id)
    return None


# -- the numbers ------------------------------------------------------------------------------

def _weighted_column():
    # units times percent: NUMERIC on PostgreSQL, where a bigint product may overflow
    amount = Opportunity.amount.cast("NUMERIC") if vendor() == "postgresql" else Opportunity.amount
    return fn_sum(amount * Opportunity.probability)


def _in(column, ids):
    """``column IN (ids)`` with the ids written into the SQL: a manager's hundreds of
    owner ids compile far faster as one literal than as bound parameters."""
    return column.in_(peewee.SQL("(%s)" % ", ".join(str(int(i)) for i in sorted(ids))))


def fn_sum(expression):
    return peewee.fn.COALESCE(peewee.fn.SUM(expression), 0).coerce(False)


def _accumulate(into, rows):
    for row in rows:
        bucket = into[(row[0], row[1])]
        for i, value in enumerate(row[2:]):
            bucket[i] += int(value or 0)
    return into


def _split_owners(parts, scope):
    """Owners answered from the aggregates: all of ``scope`` (None: everyone) when the
    reader sees every record, else the reader's whole owners within ``scope``."""
    if parts.everyone:
        return scope
    return set(parts.owners) if scope is None else set(parts.owners) & scope


def _others(parts, whole, scope, condition):
    """Records granted otherwise (shares, criteria rules, team selling, plugin grants) whose
    owner is not already counted whole: each grant on its own, so every one can use its
    index, joined by UNION."""
    if parts.everyone or not parts.others:
        return None
    base = Opportunity.deleted_at.is_null() & condition
    if whole:
        base &= Opportunity.owner_id.not_in(peewee.SQL("(%s)" % ", ".join(str(int(i)) for i in sorted(whole))))
    if scope is not None:
        base &= _in(Opportunity.owner_id, scope) if scope else peewee.SQL("1 = 0")
    ids = reduce(lambda a, b: a | b, [Opportunity.select(Opportunity.id).where(base & expression)
                                      for expression in parts.others])
    return Opportunity.id.in_(ids)


def stage_rows(user_id, pipeline_id, scope=None, restriction=None):
    """{(stage_id, currency): [count, amount units, weighted units * 100]} of the live
    opportunities of ``pipeline_id`` the user may read, owned within ``scope`` (and, with a
    ``restriction``, whose dimension has its value: always a scan, exact)."""
    totals = defaultdict(lambda: [0, 0, 0])
    on_pipeline = Opportunity.pipeline == pipeline_id
    scan_fields = (Opportunity.stage, Opportunity.currency, peewee.fn.COUNT(Opportunity.id),
                   fn_sum(Opportunity.amount), _weighted_column())
    parts = None if restriction is not None else engine().read_parts(user_id, "opportunity")
    if parts is None:
        condition = on_pipeline if scope is None else on_pipeline & Opportunity.owner_id.in_(sorted(scope))
        query = engine().query(user_id, "opportunity", *scan_fields).where(condition)
        if restriction is not None:
            query = restriction.apply(query)
        return _accumulate(totals, query.group_by(Opportunity.stage, Opportunity.currency).tuples())
    whole = _split_owners(parts, scope)
    if whole is None or whole:
        query = (FunnelTotal.select(FunnelTotal.stage_id, FunnelTotal.currency, fn_sum(FunnelTotal.count),
                                    fn_sum(FunnelTotal.amount), fn_sum(FunnelTotal.weighted))
                 .where(FunnelTotal.pipeline_id == pipeline_id))
        if whole is not None:
            query = query.where(_in(FunnelTotal.owner_id, whole))
        _accumulate(totals, query.group_by(FunnelTotal.stage_id, FunnelTotal.currency).tuples())
    others = _others(parts, whole, scope, on_pipeline)
    if others is not None:
        query = Opportunity.select(*scan_fields).where(on_pipeline & others)
        _accumulate(totals, query.group_by(Opportunity.stage, Opportunity.currency).tuples())
    return totals


def _month(day):
    return day.year * 100 + day.month


def _last_day(day):
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def split_period(start, end):
    """(first month, last month, [(from, to) date ranges]): whole months of [start, end]
    (either end may be open) read from the monthly aggregates, the rest scanned by day."""
    lo = 0 if start is None else _month(start if start.day == 1 else _last_day(start) + dt.timedelta(days=1))
    hi = 999912 if end is None else _month(end if end == _last_day(end) else end.replace(day=1) - dt.timedelta(days=1))
    if lo > hi:
        return None, None, [(start, end)]
    edges = []
    if start is not None and start.day != 1:
        edges.append((start, _last_day(start)))
    if end is not None and end != _last_day(end):
        edges.append((end.replace(day=1), end))
    return lo, hi, edges


def _between(start, end):
    condition = Opportunity.closed_date.is_null(False)
    if start is not None:
        condition &= Opportunity.closed_date >= start
    if end is not None:
        condition &= Opportunity.closed_date <= end
    return condition


def closed_rows(user_id, pipeline_id, scope=None, start=None, end=None, restriction=None):
    """{(status, currency): [count, amount units]} of the won and lost opportunities the
    user may read closed within [start, end] (with a ``restriction``: a scan, exact)."""
    totals = defaultdict(lambda: [0, 0])
    closed = (Opportunity.pipeline == pipeline_id) & Opportunity.status.in_(CLOSED)
    scan_fields = (Opportunity.status, Opportunity.currency, peewee.fn.COUNT(Opportunity.id),
                   fn_sum(Opportunity.amount))
    group = (Opportunity.status, Opportunity.currency)
    parts = None if restriction is not None else engine().read_parts(user_id, "opportunity")
    if parts is None:
        condition = closed & _between(start, end)
        if scope is not None:
            condition &= Opportunity.owner_id.in_(sorted(scope))
        query = engine().query(user_id, "opportunity", *scan_fields).where(condition)
        if restriction is not None:
            query = restriction.apply(query)
        return _accumulate(totals, query.group_by(*group).tuples())
    whole = _split_owners(parts, scope)
    if whole is None or whole:
        lo, hi, edges = split_period(start, end)
        if lo is not None:
            query = (FunnelClosedMonth.select(FunnelClosedMonth.status, FunnelClosedMonth.currency,
                                              fn_sum(FunnelClosedMonth.count), fn_sum(FunnelClosedMonth.amount))
                     .where((FunnelClosedMonth.pipeline_id == pipeline_id)
                            & FunnelClosedMonth.month.between(lo, hi)))
            if whole is not None:
                query = query.where(_in(FunnelClosedMonth.owner_id, whole))
            _accumulate(totals, query.group_by(FunnelClosedMonth.status, FunnelClosedMonth.currency).tuples())
        for edge_start, edge_end in edges:
            condition = closed & Opportunity.deleted_at.is_null() & _between(edge_start, edge_end)
            if whole is not None:
                condition &= _in(Opportunity.owner_id, whole)
            _accumulate(totals, Opportunity.select(*scan_fields).where(condition).group_by(*group).tuples())
    others = _others(parts, whole, scope, closed & _between(start, end))
    if others is not None:
        query = Opportunity.select(*scan_fields).where(closed & _between(start, end) & others)
        _accumulate(totals, query.group_by(*group).tuples())
    return totals


# -- restricted to one value of a report dimension -----------------------------------------------

@dataclass(frozen=True)
class Restriction:
    """Opportunities whose report dimension ``key`` (crm_core.analysis) equals ``value``
    (None: those without one)."""

    key: str
    label: str
    value: object
    condition: object
    join: object = None
    value_label: str | None = None

    def apply(self, query):
        if self.join is not None:
            query = self.join(query)
        return query.where(self.condition)


def restriction(user_id, key, raw):
    """The Restriction for ``?dimension=<key>&value=<raw>`` (an empty value: none). A key
    no one registered is a UserError coded ``unknown_dimension``, a dimension revealing a
    field hidden from the reader one coded ``hidden_field`` (the API answers both 400)."""
    from crm_core.analysis.dimensions import dimensions
    from crm_core.analysis.reports import hidden_fields

    known = dimensions()
    if key not in known:
        raise UserError(_l("Choose one of: %(choices)s.", choices=", ".join(known)), field="dimension",
                        code="unknown_dimension")
    spec = known[key]
    hidden = hidden_fields(user_id, list(spec.fields))
    if hidden:
        raise UserError(_l("You cannot filter or sort by this field."), field="dimension", code="hidden_field",
                        fields={name: _l("You cannot filter or sort by this field.") for name in hidden})
    column = spec.column(vendor())
    value = _dimension_value(column, raw)
    if value is None:
        condition = column.is_null()
    elif isinstance(column, peewee.Field):
        condition = column == value
    else:
        # A computed dimension (a month, a plugin's subquery): its type is unknown here, and
        # PostgreSQL compares text with a number only by a cast; text = text works for both.
        condition = peewee.Cast(column, "TEXT") == value
    names = spec.names([value], user_id) if spec.names is not None and value is not None else {}
    label = None if value is None else str(names.get(value, value))
    return Restriction(key, str(spec.label), value, condition, spec.join, label)


def _dimension_value(column, raw):
    """``raw`` (query text) as the dimension's column holds it: a field converts it (an id
    of a foreign key is a number); a computed dimension compares it as text."""
    text = (raw or "").strip()
    if not text:
        return None
    if isinstance(column, peewee.Field):
        field = column.rel_field if isinstance(column, peewee.ForeignKeyField) else column
        whole = isinstance(field, (peewee.IntegerField, peewee.AutoField))
        try:
            # peewee leaves what int() refuses as it is: whole numbers are checked here.
            if whole and not re.fullmatch(r"-?\d{1,18}", text):
                raise ValueError(text)
            return field.python_value(field.db_value(int(text) if whole else text))
        except (ValueError, TypeError, ArithmeticError, FieldValueError):
            raise UserError(_l("“%(value)s” is not a value of this dimension.", value=text[:100]),
                            field="value", code="unknown_dimension") from None
    return text


# -- the report ---------------------------------------------------------------------------------

def _money(units):
    return Decimal(units).scaleb(-SCALE)


def _text(value):
    return None if value is None else format(value.normalize(), "f")


def _rate(part, whole):
    if whole is None or part is None or not whole:
        return None
    return float(round(Decimal(part) / Decimal(whole), 4))


def funnel(user_id, pipeline_id=None, owner_id=None, team_id=None, department_id=None,
           currency=None, closed_from=None, closed_to=None, dimension=None, value=None):
    """The funnel report (the API's body; the page draws it); ``dimension`` and ``value``
    restrict it to the opportunities whose report dimension has that value."""
    from crm_core.opportunities.services import default_pipeline

    problems = Problems()
    pipeline = None
    if pipeline_id is not None:
        pipeline = Pipeline.alive().where(Pipeline.id == pipeline_id).first()
        if pipeline is None:
            problems.add("pipeline_id", _l("No such pipeline."))
    else:
        # The default pipeline without writing the registered ones again on every view.
        pipeline = (Pipeline.alive().where(Pipeline.is_default == True).first()  # noqa: E712
                    or default_pipeline())
        if pipeline is None:
            problems.add("pipeline_id", _l("No pipeline is set up yet: ask an administrator."))
    scope = scope_owners(owner_id, team_id, department_id, problems)
    if currency is not None:
        try:
            currency = check_currency(currency)
        except FieldValueError as error:
            problems.add("currency", error.message)
    if closed_from is not None and closed_to is not None and closed_from > closed_to:
        problems.add("closed_to", _l("Choose an end on or after the start."))
    problems.check()
    only = restriction(user_id, dimension, value) if dimension is not None else None

    target = currency or company_currency()
    rows = stage_rows(user_id, pipeline.id, scope, only)
    period = closed_from is not None or closed_to is not None
    closed = closed_rows(user_id, pipeline.id, scope, closed_from, closed_to, only) if period else None
    currencies = sorted({c for _, c in rows} | {c for _, c in (closed or {})})
    convert = converter(target)
    missing = []
    for code in currencies:
        try:
            convert(0, code)
        except MissingRate:
            missing.append(code)
    if missing and currency is not None:
        raise UserError(_l("No rate of %(currencies)s is valid today: add one under Currency rates.",
                           currencies=", ".join(missing)), field="currency", code="missing_rate")

    def converted(units_by_currency):
        if missing and any(code in missing for code, units in units_by_currency.items() if units):
            return None
        return sum((convert(_money(units), code) for code, units in units_by_currency.items()
                    if code not in missing), Decimal(0))

    stages = list(Stage.alive().where(Stage.pipeline == pipeline.id).order_by(Stage.position, Stage.id))
    out_stages = []
    open_totals = {"count": 0, "amount": defaultdict(int), "weighted": defaultdict(int)}
    by_kind = {kind: {"count": 0, "amount": defaultdict(int)} for kind in CLOSED}
    for stage in stages:
        mine = {c: v for (s, c), v in rows.items() if s == stage.id}
        count = sum(v[0] for v in mine.values())
        if not stage.active and not count:
            continue
        amounts = {c: v[1] for c, v in mine.items()}
        weighted = {c: Decimal(v[2]) / HUNDRED for c, v in mine.items()}
        out_stages.append({
            "stage_id": stage.id, "name": stage.name, "kind": stage.kind, "position": stage.position,
            "probability": stage.probability, "count": count,
            "amount": _text(converted(amounts)), "weighted_amount": _text(converted(weighted)),
            "currency": target,
            "amounts": [{"currency": c, "count": mine[c][0], "amount": _text(_money(amounts[c])),
                         "weighted_amount": _text(_money(weighted[c]))} for c in sorted(mine)],
        })
        if stage.kind == "open":
            open_totals["count"] += count
            for c in mine:
                open_totals["amount"][c] += amounts[c]
                open_totals["weighted"][c] += weighted[c]
        elif stage.kind in CLOSED and not period:
            by_kind[stage.kind]["count"] += count
            for c in mine:
                by_kind[stage.kind]["amount"][c] += amounts[c]
    if period:
        for (status, c), (count, units) in closed.items():
            by_kind[status]["count"] += count
            by_kind[status]["amount"][c] += units
    won, lost = by_kind["won"], by_kind["lost"]
    won_amount, lost_amount = converted(won["amount"]), converted(lost["amount"])
    report = {
        "pipeline_id": pipeline.id, "pipeline": pipeline.name,
        "owner_id": owner_id, "team_id": team_id, "department_id": department_id,
        "dimension": only.key if only else None, "dimension_label": only.label if only else None,
        "value": None if only is None or only.value is None else str(only.value),
        "value_label": only.value_label if only else None,
        "currency": target, "missing_rates": missing,
        "stages": out_stages,
        "total_count": open_totals["count"],
        "total_amount": _text(converted(open_totals["amount"])),
        "weighted_amount": _text(converted(open_totals["weighted"])),
        "totals_by_currency": [
            {"currency": c, "total_amount": _text(_money(open_totals["amount"].get(c, 0))),
             "weighted_amount": _text(_money(open_totals["weighted"].get(c, 0))),
             "won_amount": _text(_money(won["amount"].get(c, 0))),
             "lost_amount": _text(_money(lost["amount"].get(c, 0)))} for c in currencies],
        "closed_from": closed_from.isoformat() if closed_from else None,
        "closed_to": closed_to.isoformat() if closed_to else None,
        "won_count": won["count"], "lost_count": lost["count"],
        "won_amount": _text(won_amount), "lost_amount": _text(lost_amount),
        "win_rate": _rate(won["count"], won["count"] + lost["count"]),
        "win_rate_value": (None if won_amount is None or lost_amount is None
                           else _rate(won_amount, won_amount + lost_amount)),
    }
    return _without_hidden_money(user_id, report)


def _hidden(levels, name):
    return levels.get("*", levels.get(name, FIELD_EDIT)) == FIELD_HIDDEN if "*" in levels else \
        levels.get(name, FIELD_EDIT) == FIELD_HIDDEN


def _without_hidden_money(user_id, report):
    """Field security holds in aggregates too (I7): no sums of an amount (or of a
    probability) the reader may not see."""
    levels = engine().field_levels(user_id, "opportunity")
    no_amount, no_probability = _hidden(levels, "amount"), _hidden(levels, "probability")
    if not (no_amount or no_probability):
        return report
    names = {"weighted_amount"} | ({"amount", "total_amount", "won_amount", "lost_amount"} if no_amount else set())
    blank = lambda row: {k: (None if k in names else v) for k, v in row.items()}  # noqa: E731
    report = blank(report)
    report["stages"] = [{**blank(s), "amounts": [blank(a) for a in s["amounts"]]} for s in report["stages"]]
    report["totals_by_currency"] = [blank(t) for t in report["totals_by_currency"]]
    if no_amount:
        report["win_rate_value"] = None
    return report
