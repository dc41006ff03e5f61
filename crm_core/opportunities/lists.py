"""Which opportunities a list shows: the filters and sort keys the API, the list page,
the board, the export and saved views share, so a URL means the same everywhere.

Filters: pipeline_id, stage_id, owner_id, department_id (every owner in that department
or below it), status, source, campaign_id, account_id, close_from/close_to (expected
close date, inclusive) and q (a part of the name). Sorting by the stage sorts by its
position in the pipeline.
"""

from __future__ import annotations

import datetime as dt

from crm_core.opportunities.models import Opportunity, Stage

# The public sort keys and what they order by.
SORTS = {"id": Opportunity.id, "name": Opportunity.name, "amount": Opportunity.amount,
         "expected_close_date": Opportunity.expected_close_date, "probability": Opportunity.probability,
         "stage": Stage.position, "updated_at": Opportunity.updated_at, "created_at": Opportunity.created_at}
DEFAULT_SORT = "expected_close_date"
# Filters compared for equality: {parameter: column}.
EQUAL = {"pipeline_id": Opportunity.pipeline, "stage_id": Opportunity.stage, "owner_id": Opportunity.owner_id,
         "status": Opportunity.status, "source": Opportunity.source, "campaign_id": Opportunity.campaign,
         "account_id": Opportunity.account}
RANGE = {"close_from": Opportunity.expected_close_date, "close_to": Opportunity.expected_close_date}
# The field each parameter reads, for field security (filtering by a hidden field is refused).
FIELD_OF = {**{name: name for name in EQUAL}, "department_id": "owner_id",
            "close_from": "expected_close_date", "close_to": "expected_close_date", "q": "name",
            "stage": "stage_id"}
PARAMETERS = (*EQUAL, "department_id", "close_from", "close_to", "q")


def department_owners(department_id):
    """The users of the department and of every department below it."""
    from crm_core.permissions import engine

    org = engine().organisation()
    tree = org.subtree(int(department_id))
    return sorted(user for user, department in org.user_department.items() if department in tree)


def where(query, args):
    """``query`` narrowed by the filters in ``args`` (missing or None: not applied)."""
    for name, column in EQUAL.items():
        if args.get(name) not in (None, ""):
            query = query.where(column == args[name])
    if args.get("department_id") not in (None, ""):
        query = query.where(Opportunity.owner_id.in_(department_owners(args["department_id"])))
    if args.get("close_from") not in (None, ""):
        query = query.where(Opportunity.expected_close_date >= args["close_from"])
    if args.get("close_to") not in (None, ""):
        query = query.where(Opportunity.expected_close_date <= args["close_to"])
    text = (args.get("q") or "").strip()[:200]
    if text:
        query = query.where(Opportunity.name.contains(text))
    return query


def ordered(query, sort):
    """``query`` in the order of ``sort`` ("-amount": descending), the id breaking ties."""
    key = sort.lstrip("-") if sort and sort.lstrip("-") in SORTS else DEFAULT_SORT
    descending = bool(sort) and sort.startswith("-") and sort.lstrip("-") in SORTS
    column = SORTS[key]
    if key == "stage":
        query = query.join(Stage, on=(Opportunity.stage == Stage.id))
    first = column.desc() if descending else column.asc()
    return query.order_by(first, Opportunity.id.desc() if descending else Opportunity.id.asc())


def hidden_arguments(levels, args, sort=None):
    """The parameters of ``args`` (and the sort key) that read a field hidden from the reader."""
    from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN

    def level(field):
        return levels.get("*", levels.get(field, FIELD_EDIT))

    used = [name for name in FIELD_OF if args.get(name) not in (None, "")]
    if sort:
        used.append(sort.lstrip("-"))
    return sorted({name for name in used if level(FIELD_OF.get(name, name)) == FIELD_HIDDEN})


def parse_args(source):
    """The filters of a query string (a page's request.args or a saved view) as typed
    values; what is not valid is left out, with its name in the second value."""
    out, bad = {}, []
    for name in PARAMETERS:
        raw = (source.get(name) or "").strip()
        if not raw:
            continue
        if name.endswith("_id"):
            if raw.isdigit() and len(raw) < 19:
                out[name] = int(raw)
            else:
                bad.append(name)
        elif name in RANGE:
            try:
                out[name] = dt.date.fromisoformat(raw)
            except ValueError:
                bad.append(name)
        else:
            out[name] = raw[:200]
    return out, bad
