"""Daily pipeline snapshots and the trend report built on them.

The worker takes one snapshot a day, early in the morning (UTC): every open opportunity as
it stands, written with a single INSERT ... SELECT (no row passes through Python). A day
has one snapshot: a second run adds nothing (it finds the day's rows; two runs at the same
moment meet the unique (day, opportunity) index, and one of them writes nothing). Snapshots older than
``CRM_SNAPSHOT_DAILY_DAYS`` are thinned to the first one of each month.

The trend report compares the snapshot of a day with the opportunities now, over what the
reader may see NOW: what was added, won, lost, moved to another stage, or slipped (its
expected close date pushed later) since then.
"""

from __future__ import annotations

import datetime as dt

import peewee
from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.analysis.models import PipelineSnapshot
from crm_core.analysis.reports import Filters, Totals, amounts_hidden, narrowed, visible
from crm_core.db import database
from crm_core.errors import UserError
from crm_core.opportunities.models import Opportunity

CATEGORIES = {"added": _l("Added"), "won": _l("Won"), "lost": _l("Lost"), "moved": _l("Moved to another stage"),
              "slipped": _l("Slipped")}
COPIED = ("owner_id", "pipeline_id", "stage_id", "status", "currency", "amount", "probability",
          "expected_close_date")


def today():
    return dt.datetime.now(dt.timezone.utc).date()


def take_snapshot(day=None):
    """The open opportunities of ``day`` (today, UTC) into the snapshot table; returns the
    number of rows written (0 when the day's snapshot exists already)."""
    day = day or today()
    source = (Opportunity.select(peewee.Value(day, converter=PipelineSnapshot.day.db_value), Opportunity.id,
                                 Opportunity.owner_id, Opportunity.pipeline, Opportunity.stage,
                                 Opportunity.status, Opportunity.currency, Opportunity.amount,
                                 Opportunity.probability, Opportunity.expected_close_date)
              .where(Opportunity.deleted_at.is_null() & (Opportunity.status == "open")))
    fields = [PipelineSnapshot.day, PipelineSnapshot.opportunity] + [getattr(PipelineSnapshot, name)
                                                                     for name in COPIED]
    with database.atomic():
        # A day's snapshot is written whole in one transaction, so a row of the day means
        # the day is done. A plain INSERT ... SELECT: ON CONFLICT DO NOTHING would cost a
        # speculative insertion per row (on PostgreSQL 36 s instead of 21 s for 600,000 rows).
        if PipelineSnapshot.select().where(PipelineSnapshot.day == day).exists():
            return 0
        try:
            with database.atomic():
                return PipelineSnapshot.insert_from(source, fields).as_rowcount().execute()
        except peewee.IntegrityError:
            return 0  # another worker took the day's snapshot at the same moment (unique index)


def thin(day=None, keep_days=None):
    """Delete the snapshots older than ``keep_days`` except the first of each month;
    returns the number of days removed."""
    day = day or today()
    keep_days = keep_days if keep_days is not None else current_app.config["CRM_SNAPSHOT_DAILY_DAYS"]
    cutoff = day - dt.timedelta(days=keep_days)
    old = [d for (d,) in PipelineSnapshot.select(PipelineSnapshot.day).where(PipelineSnapshot.day < cutoff)
           .distinct().order_by(PipelineSnapshot.day).tuples()]
    kept, doomed = set(), []
    for d in old:
        if (d.year, d.month) in kept:
            doomed.append(d)
        else:
            kept.add((d.year, d.month))
    if doomed:
        with database.atomic():
            PipelineSnapshot.delete().where(PipelineSnapshot.day.in_(doomed)).execute()
    return len(doomed)


def daily_snapshot():
    """The worker's daily job: today's snapshot, then the thinning of old ones."""
    written = take_snapshot()
    thin()
    return written


# -- the trend report ---------------------------------------------------------------------------------

def snapshot_day(since):
    """The latest day on or before ``since`` with a snapshot; a 422 when there is none."""
    day = (PipelineSnapshot.select(PipelineSnapshot.day).where(PipelineSnapshot.day <= since)
           .order_by(PipelineSnapshot.day.desc()).limit(1).scalar())
    if day is None:
        raise UserError(_l("There is no pipeline snapshot of that day or before: snapshots are taken "
                           "every day from the day the worker first ran."), field="since")
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return day


def _conditions(day):
    then = PipelineSnapshot
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    was_open = then.id.is_null(False)
    new = then.id.is_null() & (Opportunity.created_at >= start)
    now_open = Opportunity.status == "open"
    return {
        "added": new,
        "won": (Opportunity.status == "won") & (was_open | new),
        "lost": (Opportunity.status == "lost") & (was_open | new),
        "moved": was_open & now_open & (Opportunity.stage != then.stage_id),
        "slipped": was_open & now_open & then.expected_close_date.is_null(False)
                   & (Opportunity.expected_close_date > then.expected_close_date),
    }


def _compared(user_id, day, filters, *fields):
    """The reader's visible opportunities now, each beside its row in ``day``'s snapshot."""
    query = visible(user_id, *fields).join(
        PipelineSnapshot, peewee.JOIN.LEFT_OUTER,
        on=((PipelineSnapshot.opportunity == Opportunity.id) & (PipelineSnapshot.day == day)))
    return narrowed(query, Filters(**{**filters.__dict__, "status": None, "date_from": None, "date_to": None}))


def trend_report(user_id, since, filters=Filters(), category=None, page=1, per_page=50):
    """Counts and amounts per category since ``since`` and one page of the opportunities of
    ``category`` (all categories' counts always; the list only for the category asked)."""
    day = snapshot_day(since)
    conditions = _conditions(day)
    amounts = not amounts_hidden(user_id)
    # One pass over the reader's opportunities: a count and a sum per category and currency.
    columns = [Opportunity.currency]
    for condition in conditions.values():
        columns += [peewee.fn.SUM(peewee.Case(None, [(condition, 1)], 0)).coerce(False),
                    peewee.fn.SUM(peewee.Case(None, [(condition, Opportunity.amount)], 0)).coerce(False)]
    totals = {key: Totals() for key in conditions}
    for row in _compared(user_id, day, filters, *columns).group_by(Opportunity.currency).tuples():
        for index, key in enumerate(conditions):
            count, amount = row[1 + 2 * index], row[2 + 2 * index]
            if count:
                totals[key].add(row[0], int(count), amount, 0)
    categories = []
    for key in conditions:
        entries = totals[key].entries(amounts)
        for entry in entries:
            entry.pop("weighted_amount")
        categories.append({"key": key, "label": str(CATEGORIES[key]), "count": totals[key].count,
                           "totals": entries})
    out = {"since": since, "snapshot_day": day, "categories": categories, "category": category,
           "items": [], "total": 0, "page": page, "per_page": per_page}
    if category is not None:
        listed = _compared(user_id, day, filters, Opportunity, PipelineSnapshot.stage_id.alias("then_stage_id"),
                           PipelineSnapshot.amount.alias("then_amount"),
                           PipelineSnapshot.currency.alias("then_currency"),
                           PipelineSnapshot.expected_close_date.alias("then_expected_close_date"),
                           PipelineSnapshot.owner_id.alias("then_owner_id")).where(conditions[category])
        out["total"] = totals[category].count  # the summary counted them already
        rows = list(listed.order_by(Opportunity.id).paginate(page, per_page).objects())
        out["items"] = _items(rows, amounts)
    return out


def _items(rows, amounts):
    from crm_core.opportunities.models import Stage

    stage_ids = {r.stage_id for r in rows} | {r.then_stage_id for r in rows if r.then_stage_id}
    names = dict(Stage.select(Stage.id, Stage.name).where(Stage.id.in_(sorted(stage_ids) or [0])).tuples())
    items = []
    for row in rows:
        then_day = row.then_expected_close_date
        if isinstance(then_day, str):
            then_day = dt.date.fromisoformat(then_day)
        then_amount = row.then_amount
        if then_amount is not None and not hasattr(then_amount, "as_tuple"):
            then_amount = PipelineSnapshot.amount.python_value(then_amount)
        items.append({
            "id": row.id, "name": row.name, "owner_id": row.owner_id, "status": row.status,
            "stage_id": row.stage_id, "stage": names.get(row.stage_id),
            "then_stage_id": row.then_stage_id, "then_stage": names.get(row.then_stage_id),
            "currency": row.currency, "amount": row.amount if amounts else None,
            "then_amount": then_amount if amounts else None,
            "expected_close_date": row.expected_close_date, "then_expected_close_date": then_day})
    return items


def snapshot_days(limit=400):
    """The days that have a snapshot, latest first (the trend page offers them)."""
    return [d if isinstance(d, dt.date) else dt.date.fromisoformat(d)
            for (d,) in PipelineSnapshot.select(PipelineSnapshot.day).distinct()
            .order_by(PipelineSnapshot.day.desc()).limit(limit).tuples()]

