"""The check on entry: the records a new or changed record may duplicate, among those the
person entering it may read (a record they cannot read is never named, and never blocks:
its existence would leak through the refusal)."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from rapidfuzz import fuzz

from crm_core.db import database
from crm_core.duplicates.keys import keys_for
from crm_core.duplicates.rules import settings_of, spec_of
from crm_core.errors import UserError

# Off inside a merge: the two records are duplicates on purpose.
_checking = contextvars.ContextVar("crm_duplicates_checking", default=True)


@contextmanager
def unchecked():
    """No entry check inside this block (merging two records that match)."""
    token = _checking.set(False)
    try:
        yield
    finally:
        _checking.reset(token)


CANDIDATES = 200   # fuzzy candidates compared per entry, from the name's blocks
SHOWN = 20         # possible duplicates named at most


@dataclass
class Match:
    record: object
    label: str
    reasons: list = field(default_factory=list)
    score: int = 100

    def as_dict(self):
        return {"id": self.record.id, "label": self.label, "reasons": self.reasons, "score": self.score}


class PossibleDuplicates(UserError):
    """The entry looks like records the user may see: under "warn" a 409 the client may
    confirm, under "block" a 422. ``matches`` are shown with the error."""

    def __init__(self, matches, blocked):
        names = ", ".join(match.label for match in matches[:5])
        if blocked:
            message = _l("This record duplicates %(names)s.", names=names)
        else:
            message = _l("This record may duplicate %(names)s: check them, then confirm.", names=names)
        super().__init__(message, field="_schema", code="duplicates" if blocked else "possible_duplicates")
        self.matches, self.blocked = matches, blocked
        self.extra = {"duplicates": [match.as_dict() for match in matches]}


def score(a, b):
    """How alike two normalised names are (0-100): word order does not count."""
    return int(round(fuzz.token_sort_ratio(a, b)))


def find_duplicates(object_name, values, actor_id, exclude_id=None, settings=None):
    """The records of ``object_name`` that ``values`` (API names) may duplicate under the
    object's rules, among those ``actor_id`` may read (all live records when None), best
    first, as ``Match`` objects."""
    from crm_core.duplicates.models import MatchKey
    from crm_core.permissions import engine

    spec = spec_of(object_name)
    settings = settings or settings_of(object_name)
    model = engine().objects[object_name].model
    keys = keys_for(object_name, values)
    exact = {rule["key"] for rule in settings.rules if rule["method"] == "exact"}
    fuzzy = settings.rule("name") if (settings.rule("name") or {}).get("method") == "fuzzy" else None
    wanted = [(kind, value) for kind, value in keys if kind in exact]
    name = next((value for kind, value in keys if kind == "name"), None)
    blocks = [value for kind, value in keys if kind == "block"] if fuzzy and name else []

    def readable():
        return engine().query(actor_id, object_name) if actor_id is not None else model.alive()

    found: dict[int, Match] = {}
    for kind, value in wanted:
        ids = MatchKey.select(MatchKey.record_id).where(
            (MatchKey.object == object_name) & (MatchKey.kind == kind) & (MatchKey.value == value))
        query = readable().where(model.id.in_(ids))
        if exclude_id is not None:
            query = query.where(model.id != exclude_id)
        for record in query.limit(SHOWN):
            match = found.setdefault(record.id, Match(record, spec.label_of(record)))
            if kind not in match.reasons:
                match.reasons.append(kind)
    if blocks:
        candidates = (MatchKey.select(MatchKey.record_id).where(
            (MatchKey.object == object_name) & (MatchKey.kind == "block") & (MatchKey.value.in_(blocks)))
            .distinct().limit(CANDIDATES * 5))
        names = dict(MatchKey.select(MatchKey.record_id, MatchKey.value).where(
            (MatchKey.object == object_name) & (MatchKey.kind == "name")
            & MatchKey.record_id.in_(candidates)).tuples())
        if exclude_id is not None:
            names.pop(exclude_id, None)
        alike = {record_id: score(name, other) for record_id, other in names.items()}
        alike = {record_id: s for record_id, s in alike.items() if s >= fuzzy.get("threshold", 90)}
        if alike:
            best = sorted(alike, key=lambda record_id: -alike[record_id])[:CANDIDATES]
            for record in readable().where(model.id.in_(best)):
                match = found.setdefault(record.id, Match(record, spec.label_of(record)))
                match.reasons.append("name")
                match.score = alike[record.id] if match.reasons == ["name"] else 100
    return sorted(found.values(), key=lambda m: (-len(m.reasons), -m.score, m.record.id))[:SHOWN]


def check_entry(object_name, values, actor_id, record=None, confirmed=False):
    """Called by the services on create (``record`` None) and on change (``values`` are the
    record's values with the changes over them). Under "off", or "warn" when the user
    confirmed, nothing; otherwise raises ``PossibleDuplicates`` when the entry matches
    records the actor may read. Returns the matches found (empty when not checked)."""
    if not _checking.get():
        return []
    settings = settings_of(object_name)
    if settings.mode == "off" or (settings.mode == "warn" and confirmed):
        return []
    matches = find_duplicates(object_name, values, actor_id,
                              exclude_id=record.id if record is not None else None, settings=settings)
    if matches:
        raise PossibleDuplicates(matches, blocked=settings.mode == "block")
    return matches


def check_create(object_name, values, actor_id, confirmed=False):
    """The services' check before inserting ``values`` (checked, API names)."""
    return check_entry(object_name, values, actor_id, confirmed=confirmed)


def check_update(object_name, record, changes, actor_id, confirmed=False):
    """The services' check before changing ``record``: only when a key changes (editing
    the title of a record that already has a twin does not ask again)."""
    from crm_core.duplicates.keys import values_of

    before = values_of(record)
    after = {**before, **changes}
    if keys_for(object_name, after) == keys_for(object_name, before):
        return []
    return check_entry(object_name, after, actor_id, record=record, confirmed=confirmed)


def find_duplicates_bulk(object_name, rows, actor_id=None, country=None, keys=None):
    """For many rows at once (an import, a batch of web-to-lead submissions): per row, the
    ids of existing records sharing an exact key under the object's rules (email, phone,
    tax id; names are left to the scan), among those ``actor_id`` may read (all live
    records when None). A few indexed queries per thousand rows, never one per row.
    ``keys``: each row's ``keys_for`` already computed (the importer reuses them)."""
    from crm_core.duplicates.models import MatchKey
    from crm_core.permissions import engine

    settings = settings_of(object_name)
    exact = {rule["key"] for rule in settings.rules if rule["method"] == "exact"}
    if keys is None:
        keys = [keys_for(object_name, values, country=country) for values in rows]
    row_keys = [[key for key in found if key[0] in exact] for found in keys]
    wanted = sorted({key for keys in row_keys for key in keys})
    owners: dict[tuple, set] = {}
    p = database.param
    for kind in exact:
        values = [value for k, value in wanted if k == kind]
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            # Plain SQL: building a 500-value IN with the ORM cost more than running it.
            cursor = database.execute_sql(
                f'SELECT "value", "record_id" FROM "{MatchKey._meta.table_name}" WHERE "object" = {p} '
                f'AND "kind" = {p} AND "value" IN ({", ".join([p] * len(chunk))})', [object_name, kind, *chunk])
            for value, record_id in cursor:
                owners.setdefault((kind, value), set()).add(record_id)
    if not owners:
        return [[] for _ in row_keys]  # no key of these rows is stored: nothing to read
    candidates = sorted({record_id for ids in owners.values() for record_id in ids})
    model = engine().objects[object_name].model
    visible = set()
    for start in range(0, len(candidates), 500):
        chunk = candidates[start:start + 500]
        query = (engine().query(actor_id, object_name, model.id) if actor_id is not None
                 else model.alive(model.id))
        visible.update(i for (i,) in query.where(model.id.in_(chunk)).tuples())
    return [sorted({i for key in keys for i in owners.get(key, ()) if i in visible}) for keys in row_keys]
