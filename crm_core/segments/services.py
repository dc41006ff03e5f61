"""Segments: who may see and change them, saving them, running them (always through the
access engine, never on a field hidden from the reader), and mailing lists.

A segment is shared by its owner with a team, a department (and the departments under
it) or everyone; only the owner (or an administrator) changes or deletes it. Whoever
runs a segment gets their own readable records: sharing a segment shares a question,
never its answers.
"""

from __future__ import annotations

import json

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.db import database
from crm_core.errors import UserError
from crm_core.org.models import Department, Team
from crm_core.org.services import Problems
from crm_core.permissions import Level, engine
from crm_core.records import create_record, soft_delete, update_record
from crm_core.segments.conditions import ConditionError, compile_tree
from crm_core.segments.models import VISIBILITIES, Segment

OBJECTS = ("account", "contact", "lead")
MAX_TREE = 20_000  # characters of JSON
COUNT_CAP = 10_000  # lists count exactly up to here, then say "more than"


def segment_objects():
    """Objects segments run on: the core's and any other opted-in object (custom column)."""
    from crm_core.customfields.registry import objects

    return list(dict.fromkeys([*OBJECTS, *objects()]))


# -- who sees what -----------------------------------------------------------------------------------

def visible_segments(user_id):
    """The segments ``user_id`` may see and run: their own and those shared with them."""
    subject = engine().subject(user_id)
    query = Segment.alive()
    if subject.is_admin:
        return query
    shared = (Segment.owner_id == user_id) | (Segment.visibility == "everyone")
    if subject.teams:
        shared |= (Segment.visibility == "team") & Segment.team_id.in_(list(subject.teams))
    if subject.departments:
        # Shared with a department: its members and the departments below it.
        shared |= (Segment.visibility == "department") & Segment.department_id.in_(list(subject.departments))
    return query.where(shared)


def get_visible(user_id, segment_id):
    return visible_segments(user_id).where(Segment.id == segment_id).first()


def may_change(user_id, segment):
    return segment.owner_id == user_id or engine().subject(user_id).is_admin


# -- saving -----------------------------------------------------------------------------------------

def tree_of(segment):
    return json.loads(segment.conditions)


def _check(values, problems, actor_id, segment=None):
    if "name" in values:
        name = values["name"].strip() if isinstance(values["name"], str) else ""
        if not name or len(name) > 200:
            problems.add("name", _l("This field is required."))
        values["name"] = name
    if "object" in values and values["object"] not in segment_objects():
        problems.add("object", _l("Choose one of: %(choices)s.", choices=", ".join(segment_objects())))
    visibility = values.get("visibility", segment.visibility if segment else "private")
    if visibility not in VISIBILITIES:
        problems.add("visibility", _l("Choose one of: %(choices)s.", choices=", ".join(VISIBILITIES)))
    team_id = values.get("team_id", segment.team_id if segment else None)
    department_id = values.get("department_id", segment.department_id if segment else None)
    if visibility == "team":
        subject = engine().subject(actor_id)
        if team_id is None or not Team.alive().where(Team.id == team_id).exists() or (
                team_id not in subject.teams and not subject.is_admin):
            problems.add("team_id", _l("Choose one of your teams."))
    if visibility == "department" and (
            department_id is None or not Department.alive().where(Department.id == department_id).exists()):
        problems.add("department_id", _l("No such department."))
    if visibility != "team":
        values["team_id"] = None
    if visibility != "department":
        values["department_id"] = None
    if "conditions" in values and "object" not in problems:
        object_name = values.get("object", segment.object if segment else None)
        text = json.dumps(values["conditions"], ensure_ascii=False, sort_keys=True)
        if len(text) > MAX_TREE:
            problems.add("conditions", _l("This value is not valid."))
        else:
            try:
                compile_tree(object_name, actor_id, values["conditions"])
            except ConditionError as problem:
                if problem.code == "hidden_field":
                    raise
                for field, message in problem.fields.items():
                    problems.add(field, message)
            values["conditions"] = text


def create_segment(values, actor_id):
    """A new segment ``{name, object, conditions, visibility?, team_id?, department_id?,
    description?}`` owned by ``actor_id``."""
    values = {"visibility": "private", "conditions": {"all": []}, **values}
    problems = Problems()
    for required in ("name", "object"):
        if not values.get(required):
            problems.add(required, _l("This field is required."))
    _check(values, problems, actor_id)
    problems.check()
    return create_record(Segment, actor_id=actor_id, owner_id=actor_id, **values)


def update_segment(segment, changes, actor_id, expected_version=None):
    changes = dict(changes)
    if "object" in changes and changes["object"] != segment.object:
        raise UserError(_l("The kind of record of a segment cannot change."), field="object")
    changes.pop("object", None)
    problems = Problems()
    _check(changes, problems, actor_id, segment)
    problems.check()
    return update_record(segment, changes, actor_id=actor_id, expected_version=expected_version)


def delete_segment(segment, actor_id, expected_version=None):
    from crm_core.errors import VersionConflict

    if expected_version is not None and int(expected_version) != segment.version:
        raise VersionConflict(Segment, segment.id, expected_version, segment.version)
    with database.atomic():
        soft_delete(segment, actor_id=actor_id)


# -- running ----------------------------------------------------------------------------------------

def query(object_name, user_id, tree):
    """The records of ``object_name`` that ``user_id`` may read and that match ``tree``
    (ConditionError for a tree that cannot run or names a field hidden from them)."""
    condition = compile_tree(object_name, user_id, tree)
    model = engine().objects[object_name].model
    # Both databases answer the access rules' OR (owner, shares, ...) by collecting every
    # readable row through several indexes and sorting them, evaluating the JSON conditions
    # on each (SQLite: 265 ms for a rep's 20,000 of 1,000,000 contacts). As one CASE, the
    # rules are tested first on each row and the JSON only on readable rows, walking the
    # primary key in page order until the page is full (bench/bench_segments.py and
    # docs/decisions.md have the figures).
    access = engine().read_filter(user_id, object_name, Level.READ)
    if access is None:
        return model.select().where(peewee.SQL("1 = 0"))
    return model.select().where(peewee.Case(None, [(access, condition)], False))


def run(object_name, user_id, tree, page=1, per_page=50, count=False):
    """One page: ``{"items", "has_more", "total", "total_capped", "page", "per_page"}``,
    newest first. ``total`` is None unless ``count`` asks for it, and then exact only up to
    COUNT_CAP (``total_capped`` says "more than"): counting a broad segment over a million
    records evaluates its conditions on every readable row, which costs far more than a
    page (the first page stops at its 50th match)."""
    condition = compile_tree(object_name, user_id, tree)
    model = engine().objects[object_name].model
    # One branch per access grant, each on its own index and cut at the page's end (a rep's
    # owner index walked newest first stops at the 50th match): see AccessEngine.page_of.
    items = engine().page_of(user_id, object_name, condition, [model.id.desc()],
                             offset=(page - 1) * per_page, limit=per_page + 1)
    has_more = len(items) > per_page
    items = items[:per_page]
    total = None
    if count:
        if page == 1 and not has_more:
            total = len(items)
        else:
            capped = query(object_name, user_id, tree).select(model.id).limit(COUNT_CAP + 1)
            total = model.select(peewee.fn.COUNT(peewee.SQL("*"))).from_(capped.alias("capped")).scalar()
    return {"items": items, "has_more": has_more,
            "total": None if total is None else min(total, COUNT_CAP),
            "total_capped": bool(total is not None and total > COUNT_CAP), "page": page, "per_page": per_page}


def mailing_list(segment, user_id):
    """Yield the records of ``segment`` that ``user_id`` may read and that have an email
    address (contacts and leads; accounts too), oldest first; contacts who asked not to be
    emailed are left out. Runs in batches, so a large list is never held in memory."""
    model = engine().objects[segment.object].model
    if "email" not in model._meta.fields:
        raise UserError(_l("These records have no email address."), field="object")
    selected = query(segment.object, user_id, tree_of(segment)).where(
        model.email.is_null(False) & (model.email != ""))
    if "do_not_email" in model._meta.fields:
        selected = selected.where(model.do_not_email == False)  # noqa: E712
    last = 0
    while True:
        batch = list(selected.where(model.id > last).order_by(model.id).limit(500))
        if not batch:
            return
        yield from batch
        last = batch[-1].id
