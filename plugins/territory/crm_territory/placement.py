"""Placement: which territory of a model an account or lead belongs to, and keeping the
``territory_record`` rows right as records are written, merged or placed by hand.

A ``Placer`` loads one model's live territories once and compiles their criteria; its
``place(values)`` walks the tree from the roots in (position, id) order, enters the first
territory whose criteria match, then its first matching child, and so on: the deepest
matching territory wins; no matching root, no territory. Planning and active models are
kept placed (so a switch-over is ready); archived models are frozen.

Reads and writes are set-based: the records' values come back as tuples, in id chunks,
and the placements are written with one ``executemany`` (COPY on PostgreSQL) per kind of
change; a placement made by hand (``source = "manual"``) is never touched by the rules.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from crm_core.db import database, utcnow, vendor
from crm_core.errors import UserError
from crm_territory.criteria import CUSTOM_PREFIX, OBJECT_FIELDS, compile_criteria, fields_of
from crm_territory.models import PLACED_OBJECTS, Territory, TerritoryModel, TerritoryRecord

PLACED_STATES = ("planning", "active")
CHUNK = 900  # ids per IN list: under SQLite's limit on bound variables
MEMO_SIZE = 100_000  # value combinations a Placer remembers
_UNKNOWN = object()


def object_model(object_name):
    """The core model of a placed object (``account``, ``lead``)."""
    from crm_core.permissions import engine

    return engine().objects[object_name].model


def placed_models():
    """The ids of the models kept placed (planning and active), in id order."""
    return [m for (m,) in TerritoryModel.alive(TerritoryModel.id)
            .where(TerritoryModel.state.in_(PLACED_STATES)).order_by(TerritoryModel.id).tuples()]


def active_model_id():
    """The id of the active model (the one that grants access and assigns), or None."""
    return (TerritoryModel.alive(TerritoryModel.id).where(TerritoryModel.state == "active")
            .order_by(TerritoryModel.id).scalar())


def territory_rows(model_ids):
    """``{model id: [(id, parent_id, name, criteria, position)]}``: the live territories a
    ``Placer`` reads, in (position, id) order, for several models in one query."""
    rows = {model_id: [] for model_id in model_ids}
    if rows:
        for model_id, *row in (Territory.alive(Territory.model_id, Territory.id, Territory.parent_id,
                                               Territory.name, Territory.criteria, Territory.position)
                               .where(Territory.model_id.in_(list(rows)))
                               .order_by(Territory.position, Territory.id).tuples()):
            rows[model_id].append(tuple(row))
    return rows


def placed_in(model_id, object_name, territory_ids):
    """A subquery of the ids of the records of ``object_name`` placed in ``territory_ids``."""
    return (TerritoryRecord.select(TerritoryRecord.record_id)
            .where((TerritoryRecord.model_id == model_id) & (TerritoryRecord.object == object_name)
                   & TerritoryRecord.territory_id.in_(sorted(territory_ids))))


# -- the placer ---------------------------------------------------------------------------------------

class Placer:
    """The tree of one model compiled for one object: ``place(values) -> territory id | None``.

    ``values`` are the record's fields under their API names (``country``, ``region``,
    ``industry``, ``postal_code``, ``employees``) and its custom values under ``custom``.
    """

    def __init__(self, model_id, object_name, territories=None):
        if object_name not in PLACED_OBJECTS:
            raise ValueError(f"records of {object_name!r} are not placed")
        self.model_id = model_id
        self.object_name = object_name
        rows = territories if territories is not None else territory_rows([model_id])[model_id]
        self.names = {}
        self.parents = {}
        self.matchers = {}
        self.fields = set()
        self.roots, self.children = [], defaultdict(list)
        live = {row[0] for row in rows}
        for territory_id, parent_id, name, raw, _position in rows:
            criteria = json.loads(raw or "{}")
            self.names[territory_id] = name
            self.parents[territory_id] = parent_id if parent_id in live else None
            self.matchers[territory_id] = compile_criteria(criteria, object_name)
            self.fields |= fields_of(criteria)
            # A territory whose parent is gone is a root, as the tree of the services shows it.
            if parent_id is None or parent_id not in live:
                self.roots.append(territory_id)
            else:
                self.children[parent_id].append(territory_id)
        # The fields a placement depends on (a key the object lacks is never tested).
        self.key_fields = None if any(name.startswith(CUSTOM_PREFIX) for name in self.fields) else tuple(
            sorted(name for name in self.fields if name in OBJECT_FIELDS[object_name]))
        self._memo = {}

    def place(self, values):
        """The deepest matching territory of the first matching branch, or None.

        Records share few combinations of the fields the criteria read (a country, a
        region...): each combination is walked once and remembered, unless custom values
        (lists) are read."""
        if self.key_fields is None:
            return self._walk(values)
        key = tuple(values.get(name) for name in self.key_fields)
        try:
            found = self._memo.get(key, _UNKNOWN)
        except TypeError:  # a value that cannot be a key (a list): walk
            return self._walk(values)
        if found is _UNKNOWN:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = self._walk(values)
        return found

    def _walk(self, values):
        found, candidates, matchers, children = None, self.roots, self.matchers, self.children
        while candidates:
            for territory_id in candidates:
                if matchers[territory_id](values):
                    found, candidates = territory_id, children.get(territory_id)
                    break
            else:
                break
        return found

    def path(self, territory_id):
        """The names from the root down to ``territory_id``."""
        chain, seen = [], set()
        while territory_id is not None and territory_id in self.names and territory_id not in seen:
            seen.add(territory_id)
            chain.append(self.names[territory_id])
            territory_id = self.parents[territory_id]
        return list(reversed(chain))


# -- reading values ----------------------------------------------------------------------------------

class ValueReader:
    """Reads the fields the criteria of some placers need, as ``(id, values)`` pairs."""

    def __init__(self, object_name, placers):
        model = object_model(object_name)
        self.model = model
        wanted = set().union(*(p.fields for p in placers)) if placers else set()
        self.columns = sorted(k for k in wanted if not k.startswith(CUSTOM_PREFIX) and k in model._meta.fields)
        self.custom = any(k.startswith(CUSTOM_PREFIX) for k in wanted) and "custom" in model._meta.fields
        names = self.columns + (["custom"] if self.custom else [])
        self.names = names
        self.selected = [model.id] + [getattr(model, n) for n in names]

    def _rows(self, query):
        # A plain cursor: the ORM's per-value conversion cost as much as the placing itself.
        # The columns read are text and integers as the driver gives them; only the custom
        # values need their field's conversion (JSON text on SQLite, exact decimals).
        names = self.names
        sql, params = query.sql()
        cursor = database.execute_sql(sql, params)
        if not self.custom:
            for row in cursor:
                yield row[0], dict(zip(names, row[1:]))
            return
        custom = self.model.custom.python_value
        for row in cursor:
            values = dict(zip(names, row[1:]))
            values["custom"] = custom(values["custom"])
            yield row[0], values

    def by_ids(self, ids):
        """The live records among ``ids`` (chunked IN lists)."""
        model = self.model
        ids = sorted(set(ids))
        for start in range(0, len(ids), CHUNK):
            query = (model.select(*self.selected)
                     .where(model.deleted_at.is_null() & model.id.in_(ids[start:start + CHUNK]))
                     .order_by(model.id))
            yield from self._rows(query)

    def batches(self, size):
        """Every live record, ``size`` at a time in id order (keyset: no deep offset)."""
        model = self.model
        last = 0
        while True:
            batch = list(self._rows(model.select(*self.selected)
                                    .where(model.deleted_at.is_null() & (model.id > last))
                                    .order_by(model.id).limit(size)))
            if not batch:
                return
            yield batch
            last = batch[-1][0]


# -- moves: what changes, and writing it ----------------------------------------------------------------

@dataclass
class Moves:
    """What the rules change for one model and object: rows to insert, update, delete."""

    model_id: int
    object_name: str
    inserts: list = field(default_factory=list)   # (record_id, territory_id)
    updates: list = field(default_factory=list)   # (row id, record_id, old territory, new territory)
    deletes: list = field(default_factory=list)   # (row id, record_id, old territory)
    examined: int = 0
    manual: int = 0
    unplaced: int = 0

    @property
    def moved(self):
        return len(self.inserts) + len(self.updates) + len(self.deletes)

    def pairs(self):
        """(record_id, from territory or None, to territory or None) of every move."""
        for record_id, territory_id in self.inserts:
            yield record_id, None, territory_id
        for _row, record_id, old, new in self.updates:
            yield record_id, old, new
        for _row, record_id, old in self.deletes:
            yield record_id, old, None


def existing_placements(model_id, object_name, record_ids):
    """``{record_id: (row id, territory_id, source)}`` of the records' placements in the model."""
    ids = sorted(set(record_ids))
    if not ids:
        return {}
    T = TerritoryRecord
    base = T.select(T.record_id, T.id, T.territory_id, T.source).where(
        (T.model_id == model_id) & (T.object == object_name))
    if len(ids) > CHUNK and ids[-1] - ids[0] < 4 * len(ids):
        # A realignment's batch is a dense run of ids: one range scan of the unique index.
        wanted = set(ids)
        return {record_id: (row_id, territory_id, source) for record_id, row_id, territory_id, source
                in base.where(T.record_id.between(ids[0], ids[-1])).tuples().iterator() if record_id in wanted}
    found = {}
    for start in range(0, len(ids), CHUNK):
        for record_id, row_id, territory_id, source in base.where(
                T.record_id.in_(ids[start:start + CHUNK])).tuples():
            found[record_id] = (row_id, territory_id, source)
    return found


def diff(placer, rows, existing, moves):
    """Add to ``moves`` what placing ``rows`` ((id, values) pairs) changes against ``existing``."""
    place = placer.place
    for record_id, values in rows:
        moves.examined += 1
        old = existing.get(record_id)
        if old is not None and old[2] == "manual":
            moves.manual += 1
            continue
        territory_id = place(values)
        if territory_id is None:
            moves.unplaced += 1
        if old is None:
            if territory_id is not None:
                moves.inserts.append((record_id, territory_id))
        elif territory_id is None:
            moves.deletes.append((old[0], record_id, old[1]))
        elif territory_id != old[1]:
            moves.updates.append((old[0], record_id, old[1], territory_id))
    return moves


def write(moves, now=None):
    """Apply ``moves`` in bulk (the caller holds the transaction)."""
    if not moves.moved:
        return
    placed_at = TerritoryRecord.placed_at.db_value(now or utcnow())
    p = database.param
    cursor = database.cursor()
    if moves.deletes:
        rows = [row for row, _record, _old in moves.deletes]
        for start in range(0, len(rows), CHUNK):
            TerritoryRecord.delete().where(TerritoryRecord.id.in_(rows[start:start + CHUNK])).execute()
    if moves.updates:
        cursor.executemany(f'UPDATE "territory_record" SET "territory_id" = {p}, "placed_at" = {p} '
                           f'WHERE "id" = {p}',
                           [(new, placed_at, row) for row, _record, _old, new in moves.updates])
    if moves.inserts:
        values = [(moves.model_id, moves.object_name, record_id, territory_id, "rule", placed_at)
                  for record_id, territory_id in moves.inserts]
        columns = '"model_id", "object", "record_id", "territory_id", "source", "placed_at"'
        if vendor() == "postgresql":
            with cursor.copy(f'COPY "territory_record" ({columns}) FROM STDIN') as copy:
                for row in values:
                    copy.write_row(row)
        else:
            cursor.executemany(f'INSERT INTO "territory_record" ({columns}) VALUES ({", ".join([p] * 6)})',
                               values)


# -- placing records as they are written -------------------------------------------------------------------

def place_records(object_name, ids, model_ids=None, placers=None):
    """Place the records ``ids`` of ``object_name`` in every planning and active model (or
    in ``model_ids``, or with the ``placers`` given), leaving manual placements alone.
    Returns the ``Moves`` per model."""
    if object_name not in PLACED_OBJECTS or not ids:
        return []
    if placers is None:
        model_ids = placed_models() if model_ids is None else model_ids
        placers = [Placer(model_id, object_name, rows) for model_id, rows in territory_rows(model_ids).items()]
    if not placers:
        return []
    reader = ValueReader(object_name, placers)
    rows = list(reader.by_ids(ids))
    done = []
    now = utcnow()
    with database.atomic():
        for placer in placers:
            existing = existing_placements(placer.model_id, object_name, [r for r, _ in rows])
            moves = diff(placer, rows, existing, Moves(placer.model_id, object_name))
            write(moves, now)
            done.append(moves)
    return done


def records_written(object_name, ids, fields):
    """``crm_records_written``: place created records, and changed ones when a changed field
    is one the criteria read (contacts and opportunities follow their account: nothing to do).

    Runs on every save of an account or lead: the placed models' territories are read once
    (two queries), for the check and, when it passes, for the placers."""
    if object_name not in PLACED_OBJECTS or not ids:
        return
    rows = territory_rows(placed_models())
    if fields is not None:
        changed, read = set(fields), set()
        for territories in rows.values():
            for _id, _parent, _name, raw, _position in territories:
                read |= fields_of(json.loads(raw or "{}"))
        if "custom" in changed:  # a writer that did not say which custom values changed
            changed |= {name for name in read if name.startswith(CUSTOM_PREFIX)}
        if not changed & read:
            return
    place_records(object_name, ids,
                  placers=[Placer(model_id, object_name, territories) for model_id, territories in rows.items()])


def records_merged(object_name, merged):
    """``crm_records_merged``: the merged account or lead leaves every model; the survivor
    keeps its own placements (manual ones included)."""
    if object_name not in PLACED_OBJECTS:
        return
    (TerritoryRecord.delete().where((TerritoryRecord.object == object_name)
                                    & (TerritoryRecord.record_id == merged.id)).execute())


# -- placing by hand --------------------------------------------------------------------------------------

def placement_of(model_id, object_name, record_id):
    """The placement row of a record in a model, or None."""
    return (TerritoryRecord.select().where((TerritoryRecord.model_id == model_id)
                                           & (TerritoryRecord.object == object_name)
                                           & (TerritoryRecord.record_id == record_id)).first())


def may_place_by_hand(actor_id, territory):
    """Holders of ``territory.manage`` may place records in any territory; a territory's
    manager in the territories they manage (theirs and those below it)."""
    from crm_territory.services import may_manage_members

    return may_manage_members(actor_id, territory)


def conflict(message, field="_schema"):
    """A refusal answered 409 with ``message`` as the error's own message."""
    error = UserError(message, field=field, code="stale")
    error.show_message = True
    return error


def _placed_model(model_id):
    from crm_territory.services import get_model

    model = get_model(model_id)
    if model is None:
        raise UserError(_l("No such territory model."), field="model_id")
    if model.state not in PLACED_STATES:
        raise conflict(_l("An archived model is frozen: its placements cannot change."), field="model_id")
    return model


def place_by_hand(object_name, record_id, territory, actor_id=None):
    """Place a record in ``territory`` by hand: the rules and realignment leave it there."""
    _placed_model(territory.model_id)
    now = utcnow()
    with database.atomic():
        row = placement_of(territory.model_id, object_name, record_id)
        if row is None:
            row = TerritoryRecord.create(model_id=territory.model_id, object=object_name, record_id=record_id,
                                         territory_id=territory.id, source="manual", placed_at=now)
        elif row.territory_id != territory.id or row.source != "manual":
            row.territory_id, row.source, row.placed_at = territory.id, "manual", now
            row.save()
    _audit("territory_placed_by_hand", actor_id, object_name, record_id, territory_id=territory.id,
           model_id=territory.model_id)
    return row


def back_to_rules(object_name, record_id, model_id, actor_id=None):
    """Drop a manual placement and place the record by the rules again; returns the new
    placement (None when no territory's criteria take it)."""
    _placed_model(model_id)
    with database.atomic():
        (TerritoryRecord.delete().where((TerritoryRecord.model_id == model_id)
                                        & (TerritoryRecord.object == object_name)
                                        & (TerritoryRecord.record_id == record_id)
                                        & (TerritoryRecord.source == "manual")).execute())
        place_records(object_name, [record_id], model_ids=[model_id])
    _audit("territory_placement_to_rules", actor_id, object_name, record_id, model_id=model_id)
    return placement_of(model_id, object_name, record_id)


def _audit(event, actor_id, object_name, record_id, **details):
    from crm_core.audit.services import log_security

    log_security(event, actor_id=actor_id, subject=f"{object_name} {record_id}", **details)


# -- the assignment target "territory" --------------------------------------------------------------------

class TerritoryPicker:
    """Gives a record to the member of its territory (active model) holding the fewest open
    records of the object, counting what it gave during the run (ties: the lowest user id).
    No active model, no territory, or no active member: None (the next rule decides)."""

    def __init__(self, object_name):
        from crm_core.assignment.engine import open_counts
        from crm_core.users.models import User

        from crm_territory.models import TerritoryMember

        model_id = active_model_id()
        self.placer = Placer(model_id, object_name) if model_id is not None else None
        self.members = defaultdict(list)
        self.counts = {}
        if self.placer is None or not self.placer.matchers:
            return
        rows = list(TerritoryMember.select(TerritoryMember.territory_id, TerritoryMember.user_id)
                    .where(TerritoryMember.territory_id.in_(sorted(self.placer.matchers))).tuples())
        people = sorted({user_id for _, user_id in rows})
        active = {u for (u,) in User.alive(User.id).where(User.id.in_(people) & (User.active == True))  # noqa: E712
                  .tuples()} if people else set()
        for territory_id, user_id in rows:
            if user_id in active:
                self.members[territory_id].append(user_id)
        self.counts = dict(open_counts(object_name, active)) if active else {}

    def pick(self, values):
        if self.placer is None:
            return None
        territory_id = self.placer.place(values)
        candidates = self.members.get(territory_id) if territory_id is not None else None
        if not candidates:
            return None
        counts = self.counts
        chosen = min(candidates, key=lambda user_id: (counts.get(user_id, 0), user_id))
        counts[chosen] = counts.get(chosen, 0) + 1
        return chosen

    __call__ = pick

    def finish(self):
        """Nothing is reserved: the counts live only as long as the run."""


def compile_picker(object_name, block=None):
    """``AssignmentTarget.compile``: one picker per rule set run (``block`` is the
    round-robin reservation size, which a territory does not need)."""
    return TerritoryPicker(object_name)


def assignment_targets():
    from crm_core.assignment import AssignmentTarget

    return [AssignmentTarget(key="territory", label=_l("Territory"), objects=PLACED_OBJECTS,
                             compile=compile_picker)]
