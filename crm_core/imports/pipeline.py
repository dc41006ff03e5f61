"""The importer: a file's rows through a list of compiled steps, a batch at a time.

A batch (``Batch``) holds its rows column by column: ``batch.values[name]`` is the list of
one field's values (API names), a row is an index into those lists, and what sets a row
apart (an error, the record an update changes, a skip) is kept in dicts keyed by that index.
Each step takes the whole batch, works over its columns (one list comprehension per
column on the happy path, the error path only for the values that fail) and leaves alone
the rows that already failed: a row's first error is the one reported.

  convert     text -> values, by the per-column converters (converters.py), then the
              money columns' currencies and the relation columns looked up by name
  relations   ``account``/``owner``... -> ids among the records the user may read
  keys        an external id known to the database makes the row an update
  scoped      lookups within another column's value (a stage by name within the row's
              pipeline, or the updated record's)
  owner       a new record without an owner gets the importing user
  required    a new record has its required fields
  checks      the object's completion of new values, then its own row rules (a contact
              reports to one of its account; an opportunity's stage gates), row by row
  custom      ``custom.<key>`` columns (or a custom field's label) -> the custom values,
              checked by the fields' compiled validator, encoded once per batch (wiring.py)
  row_hash    a new record without an external id is skipped when its mapped values were
              imported before
  duplicates  under the object's "block" duplicate setting, a new row sharing an exact key
              with a readable record (or an earlier line) is refused (wiring.py)
  assign      a new row that named no owner takes the assignment rules' owner ("apply"),
              after the steps that may refuse it so it takes no round-robin turn (wiring.py)

``steps`` is a plain list of (name, step) built in ``__init__``. A later part inserts a
step of one row at a time with ``importer.add_step(step, after="owner")`` (``step(row)``
reads and completes ``row.values``, or calls ``row.fail``), or a step over the batch with
``add_batch_step``. ``importer.after_insert`` takes callbacks for the inserted rows of
each batch (an ``Inserted``: their ids and columns; iterating it gives one ``Row`` each),
``at_end`` runs inside the transaction after the last batch and ``after_run`` once the
rows are stored (the new owners are notified there). New records are inserted by
``insert_batch``, one executemany per batch (COPY on PostgreSQL); updates go through the
object's update service, one record at a time, so they are checked and keep their history
like any change.
"""

from __future__ import annotations

import gc
import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any

import peewee
import psycopg

from crm_core.db import MoneyField, database, utcnow, vendor
from crm_core.errors import UserError
from crm_core.imports.converters import Bad, for_field
from crm_core.permissions import FIELD_EDIT, engine
from crm_core.record_checks import columns
from crm_core.records import BOOKKEEPING, diff, object_of, records_written

BATCH = 5000
MAX_STORED_ERRORS = 10_000
INTEGRITY = (peewee.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
IGNORED = frozenset(["id", "version", "created_at", "updated_at", "created_by_id", "updated_by_id",
                     "deleted_at", "deleted_by_id", "custom"])
CUSTOM = "custom."  # a column mapped to ``custom.<key>`` fills that custom field


class FileProblem(Exception):
    """The mapping cannot import this file at all: [(column, code, params)]."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__(str(problems))


@dataclass
class Row:
    """One row as a per-row step sees it (``add_step``), or an ``after_insert`` callback
    iterating its rows: built from the batch's columns on demand, never on the happy path
    of the built-in steps."""

    line: int
    raw: list
    values: dict = field(default_factory=dict)
    error: tuple | None = None   # (column, value, code, params)
    record: Any = None           # the record an update changes
    custom: dict | None = None   # {key: text} of the custom columns (updates pass them on)
    owner_defaulted: bool = False  # no owner in the file: the assignment rules may give one
    proposed: int | None = None    # the owner the assignment rules propose
    skip: bool = False           # already imported
    hash: str | None = None
    id: int | None = None        # the new record's id, once inserted
    match_keys: list | None = None  # the duplicate keys, computed once per row

    def fail(self, column, value, code, **params):
        if self.error is None:
            self.error = (column, value, code, params)


class Batch:
    """Up to ``BATCH`` rows of the file, column by column (see the module's docstring)."""

    def __init__(self, lines, raws):
        self.lines, self.raws, self.size = lines, raws, len(lines)
        self.values = {}        # API name -> [value of each row]
        self.errors = {}        # index -> (column, value, code, params): the row's first error
        self.records = {}       # index -> the record an update changes
        self.custom = {}        # index -> {key: text} of an update's custom columns
        self.skipped = set()    # indices of rows imported before
        self.hashes = {}        # index -> row hash (new rows without an external id)
        self.defaulted = {}     # indices (keys, in order) of new rows that named no owner
        self.proposed = {}      # index -> the owner the assignment rules propose
        self.match_keys = {}    # index -> the row's duplicate keys, computed once

    def fail(self, index, column, value, code, **params):
        if index not in self.errors:
            self.errors[index] = (column, value, code, params)

    def live(self):
        """Indices of the rows still going: no error, not skipped."""
        errors, skipped = self.errors, self.skipped
        if not errors and not skipped:
            return range(self.size)
        return [i for i in range(self.size) if i not in errors and i not in skipped]

    def new(self):
        """Indices of the live rows that create a record."""
        records = self.records
        live = self.live()
        return live if not records else [i for i in live if i not in records]

    def column(self, name):
        """The column ``name`` to write into (a column of None if the batch has none yet)."""
        found = self.values.get(name)
        if found is None:
            found = self.values[name] = [None] * self.size
        return found

    def take(self, column, indices):
        """The values of rows ``indices`` in ``column`` (a column of this batch): the column
        itself when they are all its rows."""
        return column if len(indices) == self.size else [column[i] for i in indices]

    def texts(self, index):
        """The stripped text of the file's column ``index`` in every row ("" past a short row)."""
        raws = self.raws
        try:
            return list(map(str.strip, map(itemgetter(index), raws)))
        except IndexError:
            return [r[index].strip() if index < len(r) else "" for r in raws]

    def row(self, index):
        """Row ``index`` as a ``Row`` (for per-row steps and callbacks)."""
        return Row(self.lines[index], self.raws[index],
                   {name: column[index] for name, column in self.values.items()},
                   error=self.errors.get(index), record=self.records.get(index),
                   custom=self.custom.get(index), owner_defaulted=index in self.defaulted,
                   proposed=self.proposed.get(index), skip=index in self.skipped,
                   hash=self.hashes.get(index), match_keys=self.match_keys.get(index))

    def put(self, index, row):
        """Take back what a per-row step changed in ``row``."""
        for name, value in row.values.items():
            column = self.values.get(name)
            if column is None:
                if value is None:
                    continue
                column = self.column(name)
            column[index] = value
        if row.error is not None:
            self.errors.setdefault(index, row.error)
        if row.record is not None:
            self.records[index] = row.record
        if row.custom is not None:
            self.custom[index] = row.custom
        if row.owner_defaulted:
            self.defaulted[index] = True
        if row.proposed is not None:
            self.proposed[index] = row.proposed
        if row.skip:
            self.skipped.add(index)
        if row.match_keys is not None:
            self.match_keys[index] = row.match_keys


class RowValues(Mapping):
    """The values of one row of a batch as a read-only mapping, without copying them:
    for per-row rules (assignment conditions, a duplicate spec's country) in a loop that
    moves ``index`` along."""

    __slots__ = ("values", "index")

    def __init__(self, batch, index=0):
        self.values, self.index = batch.values, index

    def __getitem__(self, name):
        return self.values[name][self.index]

    def get(self, name, default=None):
        column = self.values.get(name)
        return default if column is None else column[self.index]

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)


class Inserted:
    """The rows of one batch just inserted, for ``after_insert`` callbacks: ``indices`` into
    ``batch`` and the new ``ids`` side by side, ``column(name)`` their values of one field;
    iterating gives a ``Row`` each (with its id), for callbacks that prefer rows."""

    def __init__(self, batch, indices, ids):
        self.batch, self.indices, self.ids = batch, indices, ids

    def column(self, name):
        found = self.batch.values.get(name)
        if found is None:
            return [None] * len(self.indices)
        return self.batch.take(found, self.indices)

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        for index, record_id_ in zip(self.indices, self.ids):
            row = self.batch.row(index)
            row.id = record_id_
            yield row

@dataclass
class Result:
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    refused: int = 0
    errors: list = field(default_factory=list)
    ignored_columns: list = field(default_factory=list)
    written: bool = False

    def add_error(self, line, column, value, code, params):
        self.refused += 1
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append({"row": line, "column": column, "value": value, "code": code,
                                "params": params})


def _lookup(table, key, value, keys, scope=None):
    """(key, value) rows of ``table`` whose ``key`` is among ``keys``: plain SQL in chunks
    (building a peewee IN of 500 values costs more than running it)."""
    mark = "%s" if vendor() == "postgresql" else "?"
    where = f'"{scope[0]}" = {mark} AND ' if scope else ""
    found = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        sql = (f'SELECT "{key}", "{value}" FROM "{table}" WHERE {where}"{key}" IN '
               f'({", ".join([mark] * len(chunk))})')
        found.extend(database.execute_sql(sql, ([scope[1]] if scope else []) + chunk).fetchall())
    return found


def targets(spec):
    """The names a column may map to: the object's fields (``account_id``) and relations
    (``account``)."""
    names = {r.name for r in spec.relations}
    for name, model_field in spec.model._meta.fields.items():
        if name not in BOOKKEEPING and name not in spec.skip:
            names.add(model_field.column_name if isinstance(model_field, peewee.ForeignKeyField) else name)
    names.discard("custom")
    if "custom" in spec.model._meta.fields:
        from crm_core.customfields import definitions

        names.update(CUSTOM + d.key for d in definitions(spec.name))
    return names


def normalise(header):
    return header.strip().lower().replace(" ", "_").replace("-", "_")


class Importer:
    """Imports rows of one object as ``actor_id``; see the module's docstring."""

    def __init__(self, spec, actor_id, header, mapping=None, partial=False, dry_run=False):
        self.spec, self.actor, self.partial, self.dry_run = spec, actor_id, partial, dry_run
        self.model = spec.model
        self.result = Result()
        self._cache: dict = {}
        self._values_of: dict = {}
        self._targets()
        self._plan(header, mapping or {})
        self.steps = [("convert", self.convert), ("relations", self.relations), ("keys", self.keys),
                      ("scoped", self.scoped), ("owner", self.owner), ("required", self.required),
                      ("checks", self.checks), ("row_hash", self.row_hashes)]
        # Called with each batch's inserted rows (an Inserted), in the import's transaction.
        self.after_insert = []
        # Called after the last batch, inside the import's transaction.
        self.at_end = []
        # Called once the rows are stored (not in a dry run nor a refused file).
        self.after_run = []
        from crm_core.imports import wiring

        wiring.wire(self)
        if spec.wire is not None:
            spec.wire(self)

    # -- the plan: which column goes where -----------------------------------------------------

    def _targets(self):
        self.fields = {}  # API name -> peewee field
        for name, model_field in self.model._meta.fields.items():
            if name in BOOKKEEPING or name in self.spec.skip:
                continue
            api = model_field.column_name if isinstance(model_field, peewee.ForeignKeyField) else name
            if api != "custom":
                self.fields[api] = model_field
        self.custom_specs = {}
        if "custom" in self.model._meta.fields:
            from crm_core.customfields.registry import by_key

            self.custom_specs = by_key(self.spec.name)
        # A custom field's label in any language names it too ("Budget", "Ngân sách").
        self.custom_labels = {normalise(str(label)): CUSTOM + key for key, spec in self.custom_specs.items()
                              for label in (spec.labels or {}).values() if label}
        self.relations_by_name = {r.name: r for r in self.spec.relations}
        self.relations_by_column = {r.column: r for r in self.spec.relations}

    def _plan(self, header, mapping):
        problems, used = [], {}
        self.columns = []     # (index, header, target, converter, needs db_value)
        self.lookups = []     # (index, header, relation)
        self.custom_columns = []  # (index, header, key)
        for index, title in enumerate(header):
            target = mapping[title] if title in mapping else normalise(title)
            if not target or target in IGNORED:
                continue
            if title not in mapping and target not in self.fields and target not in self.relations_by_name:
                target = self.custom_labels.get(target, target)
            if target.startswith(CUSTOM):
                if target[len(CUSTOM):] not in self.custom_specs:
                    problems.append((title, "unknown_field", {"field": target}))
                elif target in used:
                    problems.append((title, "duplicate_column", {"field": target}))
                else:
                    used[target] = title
                    self.custom_columns.append((index, title, target[len(CUSTOM):]))
                continue
            if target not in self.fields and target not in self.relations_by_name:
                if title in mapping:
                    problems.append((title, "unknown_field", {"field": target}))
                else:
                    self.result.ignored_columns.append(title)
                continue
            column = self.relations_by_name[target].column if target in self.relations_by_name else target
            if column in used:
                problems.append((title, "duplicate_column", {"field": column}))
                continue
            used[column] = title
            if target in self.relations_by_name:
                self.lookups.append((index, title, self.relations_by_name[target]))
            else:
                convert, adapt = for_field(target, self.fields[target], self.spec.choices.get(target))
                if convert is None:
                    problems.append((title, "unknown_field", {"field": target}))
                    continue
                self.columns.append((index, title, target, convert, adapt))
        levels = engine().field_levels(self.actor, self.spec.name)
        for column, title in used.items():
            name = self.fields[column].name if column in self.fields else column
            level = levels.get("*", levels.get(column, levels.get(name, FIELD_EDIT)))
            if level < FIELD_EDIT:
                problems.append((title, "not_editable", {}))
        if not engine().object_permissions(self.actor, self.spec.name).create:
            problems.append(("", "no_create", {}))
        if problems:
            raise FileProblem(problems)
        self.mapped = used
        self.money_columns = [(column, self.fields[column].currency_field) for column in used
                              if isinstance(self.fields.get(column), MoneyField)]
        self.title_of = dict(used)
        looked_up = {relation.column for _, _, relation in self.lookups}
        self.direct_ids = [(column, relation) for column, relation in self.relations_by_column.items()
                           if column in used and column not in looked_up]

    def update_context(self):
        """The context an update through the object's service runs in (the duplicate
        wiring turns the entry check off under "warn": an import does not ask)."""
        import contextlib

        return contextlib.nullcontext()

    def add_step(self, step, after):
        """Insert ``step(row)``, run row by row, after the step named ``after`` (see the
        module's docstring)."""
        self.add_batch_step(self._per_row(step), after, getattr(step, "__name__", "step"))

    def add_batch_step(self, step, after, name=None):
        """Insert ``step(batch)`` after the step named ``after``."""
        names = [existing for existing, _ in self.steps]
        self.steps.insert(names.index(after) + 1, (name or getattr(step, "__name__", "step"), step))

    @staticmethod
    def _per_row(step, new_only=False):
        def run(batch):
            for index in (batch.new() if new_only else batch.live()):
                row = batch.row(index)
                step(row)
                batch.put(index, row)
        return run

    # -- the steps, over a batch's columns ---------------------------------------------------------

    def convert(self, batch):
        values, fail = batch.values, batch.fail
        for index, title, target, convert, _adapt in self.columns:
            texts = batch.texts(index)
            limit = getattr(convert, "limit", None)
            if limit is not None and max(map(len, texts), default=0) <= limit:
                values[target] = [text or None for text in texts]  # text that fits is itself
                continue
            try:
                values[target] = [convert(text) if text else None for text in texts]
            except Bad:
                converted = []
                for i, text in enumerate(texts):
                    try:
                        converted.append(convert(text) if text else None)
                    except Bad as bad:
                        converted.append(None)
                        fail(i, title, text, bad.code, **bad.params)
                values[target] = converted
        for amount, currency in self.money_columns:
            amounts = values[amount]
            if not any(value.__class__ is tuple for value in amounts):
                continue
            # "USD 1,054" or "1 054 €": the amount's own currency, which a currency
            # column must not contradict.
            currencies = batch.column(currency)
            for i, value in enumerate(amounts):
                if value.__class__ is not tuple:
                    continue
                amounts[i], found = value
                given = currencies[i]
                if given is not None and given != found:
                    fail(i, self.title_of[amount], found, "currency_mismatch", currency=given, found=found)
                else:
                    currencies[i] = found
        for index, title, relation in self.lookups:
            if relation.scope is not None:
                continue  # after the keys step: an update's scope is its record's
            self._resolve_column(batch, index, title, relation, batch.live())

    def _resolve_column(self, batch, index, title, relation, indices, scopes=None):
        """Look up the names of the file's column ``index`` for the rows ``indices`` (each
        distinct name once per run), into the relation's column."""
        texts, ids, cache = batch.texts(index), batch.column(relation.column), self._cache
        for i in indices:
            text = texts[i]
            if not text:
                ids[i] = None
                continue
            scope = scopes[i] if scopes is not None else None
            key = (relation.name, text.lower(), scope)
            found = cache.get(key)
            if found is None:
                found = cache[key] = self._find(relation, text, scope)
            if found.__class__ is str:
                ids[i] = None
                batch.fail(i, title, text, found)
            else:
                ids[i] = found

    def scoped(self, batch):
        for index, title, relation in self.lookups:
            if relation.scope is None:
                continue
            given = batch.values.get(relation.scope) if relation.scope in self.mapped else None
            scopes, default = [None] * batch.size, None
            indices = batch.live()
            for i in indices:
                if given is not None and given[i] is not None:
                    scopes[i] = given[i]
                elif i in batch.records:
                    scopes[i] = getattr(batch.records[i], relation.scope)
                else:
                    if default is None:
                        default = (self.memo(("scope", relation.name), relation.scope_default or (lambda: None)),)
                    scopes[i] = default[0]
            self._resolve_column(batch, index, title, relation, indices, scopes)

    def relations(self, batch):
        # Ids given directly (account_id, owner_id) must name records the user may read.
        for column, relation in self.direct_ids:
            given = batch.values.get(column)
            if given is None:
                continue
            errors = batch.errors
            for i, value in enumerate(given):
                if value is not None and i not in errors and not self._exists(relation, value):
                    batch.fail(i, self.title_of[column], str(value),
                               "no_user" if relation.object == "user" else "not_found")

    def owner(self, batch):
        if "owner_id" not in self.fields:
            return
        owners, records, actor = batch.column("owner_id"), batch.records, self.actor
        for i in batch.live():
            if owners[i] is None and i not in records:
                owners[i] = actor
                batch.defaulted[i] = True

    def required(self, batch):
        if not self.spec.required:
            return
        indices = batch.new()
        for name in self.spec.required:
            given = batch.values.get(name)
            title = self.title_of.get(name, name)
            for i in indices:
                if given is None or given[i] is None:
                    batch.fail(i, title, "", "required")

    def checks(self, batch):
        if self.spec.prepare or self.spec.row_checks:
            self._per_row(self._check_row, new_only=True)(batch)

    def _check_row(self, row):
        if self.spec.prepare:
            self.spec.prepare(row.values)
        for check in self.spec.row_checks:
            for column, code, params in check(row.values, self):
                row.fail(self.title_of.get(column + "_id", self.title_of.get(column, column)),
                         "", code, **params)
                return

    # -- lookups ------------------------------------------------------------------------------------

    def _find(self, relation, text, scope=None):
        from crm_core.users.models import User

        if relation.object == "user":
            query = User.alive().select(User.id).where(User.active == True)  # noqa: E712
            ids = [u.id for u in query.where((peewee.fn.LOWER(User.email) == text.lower())
                                             | (User.name == text)).limit(2)]
            return ids[0] if len(ids) == 1 else "no_user" if not ids else "ambiguous"
        model = relation.model or engine().objects[relation.object].model
        for key in relation.keys:
            if key not in model._meta.fields:
                continue
            column = getattr(model, key)
            condition = (column == text) if key == "external_id" else (
                peewee.fn.LOWER(column) == text.lower())
            if relation.scope is not None:
                condition &= getattr(model, relation.scope) == scope
            query = (model.alive().select(model.id) if relation.model is not None
                     else engine().query(self.actor, relation.object, model.id))
            ids = [r.id for r in query.where(condition).limit(2)]
            if len(ids) == 1:
                return ids[0]
            if ids:
                return "ambiguous"
        return "not_found"

    def _exists(self, relation, value):
        from crm_core.users.models import User

        key = (relation.name, "#id", value)
        if key not in self._cache:
            if relation.object == "user":
                found = User.alive().where((User.id == value) & (User.active == True)).exists()  # noqa: E712
            elif relation.model is not None:
                found = relation.model.alive().where(relation.model.id == value).exists()
            else:
                model = engine().objects[relation.object].model
                found = engine().query(self.actor, relation.object, model.id).where(
                    model.id == value).exists()
            self._cache[key] = found
        return self._cache[key]

    def memo(self, key, compute):
        """``compute()`` once per run for ``key``: for row checks that look things up."""
        key = ("memo", key)
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def value_of(self, model, record_id_, column):
        """One column of a record (cached): for row checks."""
        key = (model, record_id_, column)
        if key not in self._values_of:
            self._values_of[key] = model.select(model._meta.columns[column]).where(
                model.id == record_id_).scalar()
        return self._values_of[key]

    # -- the steps on the database's side -----------------------------------------------------------

    def keys(self, batch):
        """Rows whose external id is in the database become updates of that record."""
        given = batch.values.get("external_id")
        if given is None:
            return
        wanted = [i for i in batch.live() if given[i]]
        if not wanted:
            return
        model, title = self.model, self.title_of.get("external_id")
        keys = list({given[i] for i in wanted})
        existing = dict(_lookup(model._meta.table_name, "external_id", "id", keys))
        readable = {}
        ids = list(existing.values())
        # Only the ids that exist go through the access engine (none, in a first import).
        for start in range(0, len(ids), 500):
            for record in engine().query(self.actor, self.spec.name).where(model.id.in_(ids[start:start + 500])):
                readable[record.external_id] = record
        seen, lines = self._seen_external, batch.lines
        for i in wanted:
            key = given[i]
            first = seen.get(key)
            if first is not None:
                batch.fail(i, title, key, "duplicate_in_file", line=first)
                continue
            seen[key] = lines[i]
            if key in readable:
                batch.records[i] = readable[key]
            elif key in existing:
                batch.fail(i, title, key, "external_id_taken")

    def row_hashes(self, batch):
        """New rows without an external id: skipped when the same values were imported."""
        from crm_core.imports.models import ImportedRow

        external = batch.values.get("external_id")
        fresh = batch.new()
        if external is not None:
            fresh = [i for i in fresh if not external[i]]
        if not fresh:
            return
        parts = []
        for name in sorted(self.mapped):
            column = batch.values.get(name)
            if column is None:
                column = [None] * batch.size
            parts.append([f"{name}\x1e{value}" for value in batch.take(column, fresh)])
        blake2b = hashlib.blake2b
        hashes = [blake2b(text.encode("utf-8"), digest_size=16).hexdigest() for text in map("\x1f".join, zip(*parts))]
        known = {h for h, _ in _lookup(ImportedRow._meta.table_name, "row_hash", "record_id", list(set(hashes)),
                                       ("object_name", self.spec.name))}
        for i, row_hash in zip(fresh, hashes):
            if row_hash in known:
                batch.skipped.add(i)
            else:
                known.add(row_hash)
                batch.hashes[i] = row_hash

    # -- running ----------------------------------------------------------------------------------------

    def run(self, rows, progress=None):
        """Import ``rows`` ((line, values) pairs); returns the Result. All or nothing unless
        partial; a dry run writes nothing."""
        self._seen_external = {}
        self._insert_plan()
        lock = {"lock_type": "IMMEDIATE"} if vendor() == "sqlite" else {}
        rows = iter(rows)
        # The cyclic collector would walk every object of the application again and again
        # while the batches build their columns (a quarter of a large import's time): the
        # objects that exist now are left out of its passes until the run ends.
        gc.freeze()
        try:
            return self._run(rows, lock, progress)
        finally:
            gc.unfreeze()

    def _run(self, rows, lock, progress):
        with database.atomic(**lock) as transaction:
            while True:
                chunk = list(islice(rows, BATCH))
                if not chunk:
                    break
                self._batch(Batch([line for line, _ in chunk], [raw for _, raw in chunk]))
                if progress and len(chunk) == BATCH:
                    progress(self.result.total)
            for callback in self.at_end:
                callback()
            if self.dry_run or (self.result.refused and not self.partial):
                transaction.rollback()
            else:
                self.result.written = True
        if self.result.written:
            for callback in self.after_run:
                callback()
        if progress:
            progress(self.result.total)
        return self.result

    def _batch(self, batch):
        result = self.result
        result.total += batch.size
        for _name, step in self.steps:
            step(batch)
        errors, skipped, records = batch.errors, batch.skipped, batch.records
        if not errors and not skipped and not records:
            inserts = list(range(batch.size))
        else:
            inserts = []
            for i in range(batch.size):
                if i in errors:
                    result.add_error(batch.lines[i], *errors[i])
                elif i in skipped:
                    result.skipped += 1
                elif i in records:
                    self._update(batch.row(i))
                else:
                    inserts.append(i)
        if inserts and not (result.refused and not self.partial):
            self.insert_batch(batch, inserts)

    def _update(self, row):
        record = row.record
        changes = {k: v for k, v in row.values.items()
                   if k in self.mapped and k != "external_id" and not k.startswith(CUSTOM)}
        custom_changed = row.custom is not None and any(
            (record.custom or {}).get(key) != value for key, value in row.values["custom"].items())
        try:
            if not diff(record, columns(self.model, changes)) and not custom_changed:
                # The file says what the record holds already: nothing to check or write.
                self.result.skipped += 1
                return
        except ValueError:
            pass  # a value the field cannot hold: the service says why, below
        if not engine().object_permissions(self.actor, self.spec.name).edit or \
                not engine().can(self.actor, record, "update"):
            return self.result.add_error(row.line, self.title_of["external_id"], record.external_id,
                                         "no_update", {})
        if "owner_id" in changes and changes["owner_id"] != record.owner_id and \
                not engine().can(self.actor, record, "transfer"):
            return self.result.add_error(row.line, self.title_of["owner_id"], str(changes["owner_id"]),
                                         "no_transfer", {})
        if custom_changed:
            changes["custom"] = row.custom  # the service checks and merges them with the stored ones
        try:
            with database.atomic(), self.update_context():
                changed = self.spec.update(record, changes, actor_id=self.actor)
        except UserError as exc:
            column, message = next(iter(exc.fields.items()))
            if getattr(exc, "unmet", None):
                # A refused stage move: every unmet requirement, not only the first.
                message = " ".join([str(exc.message)] + [str(m) for _, m in exc.unmet])
            if getattr(exc, "matches", None) is not None:
                return self.result.add_error(row.line, "", "", "duplicate",
                                             {"records": ", ".join(str(m.record.id) for m in exc.matches)})
            title = self.title_of.get(column, self.title_of.get(column.removesuffix("_id"), column))
            return self.result.add_error(row.line, title, "", "rejected", {"message": str(message)})
        if changed:
            self.result.updated += 1
        else:
            self.result.skipped += 1

    # -- inserting ----------------------------------------------------------------------------------------

    def _insert_plan(self):
        """The insert's columns and, for each, how a batch's column of values is made
        (constants, defaults, db_value)."""
        now, meta = utcnow(), self.model._meta
        constants = {"version": 1, "created_at": now, "updated_at": now, "created_by_id": self.actor,
                     "updated_by_id": self.actor, "deleted_at": None, "deleted_by_id": None}
        adapted = {target for _, _, target, _, adapt in self.columns if adapt}
        self.insert_columns, self.row_values = ["id"], []
        for name, model_field in meta.fields.items():
            if name == "id":
                continue
            self.insert_columns.append(model_field.column_name)
            if name in constants:
                value = model_field.db_value(constants[name])
                self.row_values.append(lambda values, count, value=value: [value] * count)
                continue
            api = model_field.column_name if isinstance(model_field, peewee.ForeignKeyField) else name
            needs_db = api in adapted or isinstance(model_field, (peewee.DateField,)) or \
                type(model_field).__name__ in ("UTCDateTimeField", "MoneyField", "CurrencyField")
            self.row_values.append(self._column_maker(api, model_field.default, model_field if needs_db else None))

    @staticmethod
    def _column_maker(api, default, model_field):
        """``make(columns, count)``: the insert's values of one field for ``count`` rows from
        their ``columns`` (API name -> values): the default for None, then db_value."""
        convert = None
        if model_field is not None:
            convert = (lambda value: value.isoformat()) if (
                vendor() == "sqlite" and isinstance(model_field, peewee.DateField)) else model_field.db_value

        def make(columns, count):
            values = columns.get(api)
            if values is None:
                values = [default() for _ in range(count)] if callable(default) else [default] * count
            elif callable(default):
                values = [default() if value is None else value for value in values]
            elif default is not None:
                values = [default if value is None else value for value in values]
            if convert is not None:
                values = [None if value is None else convert(value) for value in values]
            return values
        return make

    def _next_ids(self, count):
        table = self.model._meta.table_name
        if vendor() == "postgresql":
            cursor = database.execute_sql(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                (table, count))
            return [r[0] for r in cursor.fetchall()]
        # SQLite: the import holds the write lock (BEGIN IMMEDIATE), so no one else inserts.
        start = (database.execute_sql(f'SELECT MAX(id) FROM "{table}"').fetchone()[0] or 0) + 1
        return list(range(start, start + count))

    def insert_batch(self, batch, indices):
        """Insert the new records of ``batch`` (rows ``indices``), their row hashes, and run
        the ``after_insert`` callbacks: the one place where an import writes new records."""
        from crm_core.imports.models import ImportedRow

        count = len(indices)
        ids = self._next_ids(count)
        columns = {name: batch.take(values, indices) for name, values in batch.values.items()}
        tuples = list(zip(ids, *[make(columns, count) for make in self.row_values]))
        try:
            with database.atomic():
                self._write(tuples)
        except INTEGRITY:
            if not self.partial:
                for i in indices:
                    self.result.add_error(batch.lines[i], "", "", "database", {})
                return
            # Find the offending rows one by one; the others go in.
            kept = []
            for i, values in zip(indices, tuples):
                try:
                    with database.atomic():
                        self._write([values])
                    kept.append((i, values[0]))
                except INTEGRITY:
                    self.result.add_error(batch.lines[i], "", "", "database", {})
            indices, ids = [i for i, _ in kept], [record_id_ for _, record_id_ in kept]
        self.result.created += len(indices)
        inserted = Inserted(batch, indices, ids)
        for callback in self.after_insert:
            callback(inserted)
        records_written(object_of(self.model), ids, None, self.actor)  # once per batch, in its transaction
        row_hashes = batch.hashes
        if row_hashes:
            hashes = [(self.spec.name, row_hashes[i], record_id_) for i, record_id_ in zip(indices, ids)
                      if i in row_hashes]
            if hashes:
                self._write(hashes, ImportedRow._meta.table_name, ("object_name", "row_hash", "record_id"))

    def _write(self, tuples, table=None, columns=None):
        table = table or self.model._meta.table_name
        names = ", ".join(f'"{c}"' for c in columns or self.insert_columns)
        if vendor() == "postgresql":
            cursor = database.cursor()
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for values in tuples:
                    copy.write_row(values)
            return
        marks = ", ".join("?" for _ in columns or self.insert_columns)
        database.cursor().executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', tuples)

