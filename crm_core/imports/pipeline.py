"""The importer: a file's rows through a list of compiled steps, written in batches.

Each row goes through ``Importer.steps`` in order; a step reads and completes
``row.values`` (API names) or adds an error, and a row with an error goes no further:

  convert     text -> values, by the per-column converters (converters.py)
  relations   ``account``/``owner``... -> ids among the records the user may read
  keys        an external id known to the database makes the row an update (batch step)
  scoped      lookups within another column's value (a stage by name within the row's
              pipeline, or the updated record's)
  owner       a new record without an owner gets the importing user
  required    a new record has its required fields
  checks      the object's completion of new values, then its own row rules (a contact
              reports to one of its account; an opportunity's stage gates)
  custom      ``custom.<key>`` columns (or a custom field's label) -> the custom values,
              checked by the fields' compiled validator (wiring.py)
  row_hash    a new record without an external id is skipped when its mapped values were
              imported before (batch step)
  duplicates  under the object's "block" duplicate setting, a new row sharing an exact key
              with a readable record (or an earlier line) is refused (batch step, wiring.py)
  assign      a new row that named no owner takes the assignment rules' owner ("apply"),
              after the steps that may refuse it so it takes no round-robin turn (wiring.py)

``steps`` and ``batch_steps`` are plain lists built in ``__init__``; a later part inserts
its own step with ``importer.add_step(step, after="owner")``, and ``importer.after_insert``
takes callbacks for the inserted rows of each batch (the match keys are stored there),
``at_end`` runs inside the transaction after the last batch and ``after_run`` once the rows
are stored (the new owners are notified there). New records are inserted with
one executemany per batch (COPY on PostgreSQL); updates go through the object's update
service, one record at a time, so they are checked and keep their history like any change.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
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
        self.steps = [("convert", self.convert), ("relations", self.relations), ("keys", None),
                      ("scoped", self.scoped), ("owner", self.owner), ("required", self.required), ("checks", self.checks),
                      ("row_hash", None)]
        self.batch_steps = {"keys": self.keys, "row_hash": self.row_hashes}
        # Called with each batch's inserted rows (row.id set), in the import's transaction.
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
        """Insert ``step(row)`` after the step named ``after`` (see the module's docstring)."""
        names = [name for name, _ in self.steps]
        self.steps.insert(names.index(after) + 1, (getattr(step, "__name__", "step"), step))

    # -- per-row steps -----------------------------------------------------------------------------

    def convert(self, row):
        raw, values, width = row.raw, row.values, len(row.raw)
        for index, title, target, convert, _adapt in self.columns:
            text = raw[index].strip() if index < width else ""
            if not text:
                values[target] = None
                continue
            try:
                values[target] = convert(text)
            except Bad as bad:
                row.fail(title, text, bad.code, **bad.params)
                return
        for amount, currency in self.money_columns:
            if isinstance(values.get(amount), tuple):
                # "USD 1,054" or "1 054 €": the amount's own currency, which a currency
                # column must not contradict.
                values[amount], found = values[amount]
                given = values.get(currency)
                if given is not None and given != found:
                    row.fail(self.title_of[amount], found, "currency_mismatch", currency=given, found=found)
                    return
                values[currency] = found
        for index, title, relation in self.lookups:
            if relation.scope is not None:
                continue  # after the keys step: an update's scope is its record's
            text = raw[index].strip() if index < width else ""
            values[relation.column] = self.resolve(relation, text, title, row) if text else None
            if row.error:
                return

    def scoped(self, row):
        for index, title, relation in self.lookups:
            if relation.scope is None:
                continue
            text = row.raw[index].strip() if index < len(row.raw) else ""
            if not text:
                row.values[relation.column] = None
                continue
            if relation.scope in self.mapped and row.values.get(relation.scope) is not None:
                scope = row.values[relation.scope]
            elif row.record is not None:
                scope = getattr(row.record, relation.scope)
            else:
                scope = self.memo(("scope", relation.name), relation.scope_default or (lambda: None))
            row.values[relation.column] = self.resolve(relation, text, title, row, scope)
            if row.error:
                return

    def relations(self, row):
        # Ids given directly (account_id, owner_id) must name records the user may read.
        for column, relation in self.direct_ids:
            value = row.values.get(column)
            if value is not None and not self._exists(relation, value):
                row.fail(self.title_of[column], str(value),
                         "no_user" if relation.object == "user" else "not_found")
                return

    def owner(self, row):
        if row.record is None and "owner_id" in self.fields and row.values.get("owner_id") is None:
            row.values["owner_id"] = self.actor
            row.owner_defaulted = True

    def required(self, row):
        if row.record is None:
            for name in self.spec.required:
                if row.values.get(name) is None:
                    row.fail(self.title_of.get(name, name), "", "required")
                    return

    def checks(self, row):
        if row.record is None:
            if self.spec.prepare:
                self.spec.prepare(row.values)
            for check in self.spec.row_checks:
                for column, code, params in check(row.values, self):
                    row.fail(self.title_of.get(column + "_id", self.title_of.get(column, column)),
                             "", code, **params)
                    return

    # -- lookups ------------------------------------------------------------------------------------

    def resolve(self, relation, text, title, row, scope=None):
        key = (relation.name, text.lower(), scope)
        if key not in self._cache:
            self._cache[key] = self._find(relation, text, scope)
        found = self._cache[key]
        if isinstance(found, str):
            row.fail(title, text, found)
            return None
        return found

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

    # -- batch steps -----------------------------------------------------------------------------------

    def keys(self, rows):
        """Rows whose external id is in the database become updates of that record."""
        wanted = [row for row in rows if not row.error and row.values.get("external_id")]
        if not wanted:
            return
        model, title = self.model, self.title_of.get("external_id")
        keys = list({row.values["external_id"] for row in wanted})
        existing = dict(_lookup(model._meta.table_name, "external_id", "id", keys))
        readable = {}
        ids = list(existing.values())
        # Only the ids that exist go through the access engine (none, in a first import).
        for start in range(0, len(ids), 500):
            for record in engine().query(self.actor, self.spec.name).where(model.id.in_(ids[start:start + 500])):
                readable[record.external_id] = record
        for row in wanted:
            key = row.values["external_id"]
            first = self._seen_external.get(key)
            if first is not None:
                row.fail(title, key, "duplicate_in_file", line=first)
                continue
            self._seen_external[key] = row.line
            if key in readable:
                row.record = readable[key]
            elif key in existing:
                row.fail(title, key, "external_id_taken")

    def row_hashes(self, rows):
        """New rows without an external id: skipped when the same values were imported."""
        from crm_core.imports.models import ImportedRow

        fresh = [row for row in rows if not row.error and row.record is None
                 and not row.values.get("external_id")]
        names = sorted(self.mapped)
        for row in fresh:
            text = "\x1f".join(f"{n}\x1e{row.values.get(n)}" for n in names)
            row.hash = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
        hashes = list({row.hash for row in fresh})
        known = {h for h, _ in _lookup(ImportedRow._meta.table_name, "row_hash", "record_id", hashes,
                                       ("object_name", self.spec.name))}
        for row in fresh:
            if row.hash in known:
                row.skip = True
            else:
                known.add(row.hash)

    # -- running ----------------------------------------------------------------------------------------

    def run(self, rows, progress=None):
        """Import ``rows`` ((line, values) pairs); returns the Result. All or nothing unless
        partial; a dry run writes nothing."""
        self._seen_external = {}
        self._insert_plan()
        lock = {"lock_type": "IMMEDIATE"} if vendor() == "sqlite" else {}
        with database.atomic(**lock) as transaction:
            batch = []
            for line, raw in rows:
                batch.append(Row(line, raw))
                if len(batch) >= BATCH:
                    self._batch(batch)
                    batch = []
                    if progress:
                        progress(self.result.total)
            if batch:
                self._batch(batch)
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

    def _batch(self, rows):
        result = self.result
        result.total += len(rows)
        for name, step in self.steps:
            if step is None:
                self.batch_steps[name](rows)
                continue
            for row in rows:
                if row.error is None and not row.skip:
                    step(row)
        inserts = []
        for row in rows:
            if row.error is not None:
                result.add_error(row.line, *row.error)
            elif row.skip:
                result.skipped += 1
            elif row.record is not None:
                self._update(row)
            else:
                inserts.append(row)
        if inserts and not (result.refused and not self.partial):
            self._insert(inserts)

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
        """The insert's columns and how each row's value is found (default, db_value)."""
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
                self.row_values.append(lambda values, value=value: value)
                continue
            api = model_field.column_name if isinstance(model_field, peewee.ForeignKeyField) else name
            default = model_field.default
            needs_db = api in adapted or isinstance(model_field, (peewee.DateField,)) or \
                type(model_field).__name__ in ("UTCDateTimeField", "MoneyField", "CurrencyField")
            self.row_values.append(self._getter(api, default, model_field if needs_db else None))

    @staticmethod
    def _getter(api, default, model_field):
        if model_field is not None:
            sqlite_date = vendor() == "sqlite" and isinstance(model_field, peewee.DateField)

            def get(values):
                value = values.get(api)
                if value is None:
                    value = default() if callable(default) else default
                if value is None:
                    return None
                return value.isoformat() if sqlite_date else model_field.db_value(value)
        elif default is not None:
            def get(values):
                value = values.get(api)
                if value is None:
                    return default() if callable(default) else default
                return value
        else:
            def get(values):
                return values.get(api)
        return get

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

    def _insert(self, rows):
        from crm_core.imports.models import ImportedRow

        ids = self._next_ids(len(rows))
        getters = self.row_values
        tuples = [(record_id_, *[get(row.values) for get in getters]) for record_id_, row in zip(ids, rows)]
        try:
            with database.atomic():
                self._write(tuples)
        except INTEGRITY:
            if not self.partial:
                for row in rows:
                    self.result.add_error(row.line, "", "", "database", {})
                return
            # Find the offending rows one by one; the others go in.
            kept = []
            for row, values in zip(rows, tuples):
                try:
                    with database.atomic():
                        self._write([values])
                    kept.append((row, values))
                except INTEGRITY:
                    self.result.add_error(row.line, "", "", "database", {})
            rows, tuples = [r for r, _ in kept], [v for _, v in kept]
            ids = [v[0] for v in tuples]
        self.result.created += len(rows)
        for row, record_id_ in zip(rows, ids):
            row.id = record_id_
        for callback in self.after_insert:
            callback(rows)
        records_written(object_of(self.model), ids, None, self.actor)  # once per batch, in its transaction
        hashes = [(self.spec.name, row.hash, record_id_) for row, record_id_ in zip(rows, ids) if row.hash]
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

