"""Computing and storing the match keys of records, one at a time (services) or in bulk
(the scan, the importer)."""

from __future__ import annotations

from crm_core.db import database
from crm_core.duplicates import normalise as norm
from crm_core.duplicates.rules import spec_of

BULK = 5000
# The keys of the name: the whole normalised name and its fuzzy blocks (several per name).
# A bulk import leaves them to a job that runs after its commit (``store_name_keys``), unless
# a rule matches names exactly: a million-row import then writes a third of the keys.
NAME_KINDS = frozenset({"name", "block"})


def values_of(record):
    """A record's values under their API names (``account_id`` for the foreign key)."""
    out = {}
    for name, fld in record._meta.fields.items():
        out[fld.column_name if hasattr(fld, "rel_model") else name] = record.__data__.get(name)
    return out


def keys_for(object_name, values, country=None, kinds=None):
    """``[(kind, value)]`` of one record's values (API names): its normalised emails,
    phones (with ``country``, else the object's own, for national numbers) and tax id,
    its normalised name and the name's fuzzy blocks; only ``kinds`` when given (the
    importer leaves the name's to a later job). The importer and web-to-lead call it per
    row; nothing here touches the database except a contact's account country when
    ``country`` is not given."""
    spec = spec_of(object_name)
    keys = set()
    for kind, names in spec.fields.items():
        if kinds is not None and kind not in kinds:
            continue
        for name in names:
            raw = values.get(name)
            if not raw:
                continue
            if kind == "email":
                value = norm.normalise_email(raw)
            elif kind == "phone":
                if country is None:
                    country = spec.country_of(values) or ""
                value = norm.normalise_phone(raw, country or None)
            else:
                value = norm.normalise_tax_id(raw)
            if value:
                keys.add((kind, value[:300]))
    if kinds is not None and not kinds & NAME_KINDS:
        return sorted(keys)
    name = spec.name_of(values)
    if name:
        if kinds is None or "name" in kinds:
            keys.add(("name", name[:300]))
        if kinds is None or "block" in kinds:
            scope = spec.scope_of(values)
            keys.update(("block", f"{scope}|{block}"[:300]) for block in norm.name_blocks(name))
    return sorted(keys)


def keys_for_columns(object_name, columns, countries, kinds=None):
    """``keys_for`` of many rows given column by column (the importer): ``columns`` {API
    name: [value of each row]}, ``countries`` the country of each row's national phone
    numbers; one sorted ``[(kind, value)]`` per row. The exact keys are normalised a column
    at a time; the name's keys, when asked for, row by row."""
    spec = spec_of(object_name)
    count = len(countries)
    if kinds is None or kinds & NAME_KINDS:
        names = list(columns)
        return [keys_for(object_name, dict(zip(names, row)), country=country, kinds=kinds)
                for row, country in zip(zip(*columns.values()), countries)] if names else \
            [keys_for(object_name, {}, country=country, kinds=kinds) for country in countries]
    # One group per kind, in the order of kinds: each row's keys are its groups' keys one
    # after the other, already sorted, without sorting a set per row.
    groups = []
    for kind in sorted(kinds & spec.fields.keys()):
        normal = []
        for name in spec.fields[kind]:
            column = columns.get(name)
            if column is None:
                continue
            if kind == "email":
                normal.append([norm.normalise_email(raw) if raw else None for raw in column])
            elif kind == "phone":
                normal.append([norm.normalise_phone(raw, country or None) if raw else None
                               for raw, country in zip(column, countries)])
            else:
                normal.append([norm.normalise_tax_id(raw) if raw else None for raw in column])
        if len(normal) == 1:
            groups.append([((kind, value[:300]),) if value else () for value in normal[0]])
        elif normal:
            groups.append([tuple(sorted({(kind, value[:300]) for value in values if value}))
                           for values in zip(*normal)])
    if not groups:
        return [[] for _ in range(count)]
    if len(groups) == 1:
        return [list(keys) for keys in groups[0]]
    if len(groups) == 2:
        return [[*first, *second] for first, second in zip(*groups)]
    return [[key for keys in row for key in keys] for row in zip(*groups)]


def store_keys(object_name, record_id, values):
    """Replace the stored keys of one record (inside the caller's transaction)."""
    from crm_core.duplicates.models import MatchKey

    with database.atomic():
        MatchKey.delete().where((MatchKey.object == object_name) & (MatchKey.record_id == record_id)).execute()
        rows = [{"object": object_name, "record_id": record_id, "kind": kind, "value": value}
                for kind, value in keys_for(object_name, values)]
        if rows:
            MatchKey.insert_many(rows).execute()


def store_record_keys(object_name, record):
    store_keys(object_name, record.id, values_of(record))


def drop_keys(object_name, record_id):
    from crm_core.duplicates.models import MatchKey

    MatchKey.delete().where((MatchKey.object == object_name) & (MatchKey.record_id == record_id)).execute()


def store_keys_bulk(object_name, rows, country=None, replace=True):
    """Store the keys of many records: ``rows`` is an iterable of ``(record_id, values)`` or
    ``(record_id, values, country)``. Replaces their earlier keys (``replace=False``: the
    caller knows there are none, as for rows just inserted)."""
    from crm_core.duplicates.models import MatchKey

    pending, ids = [], []

    def flush():
        for start in range(0, len(ids) if replace else 0, 900):  # the IN list stays under SQLite's variable limit
            MatchKey.delete().where((MatchKey.object == object_name)
                                    & (MatchKey.record_id.in_(ids[start:start + 900]))).execute()
        _insert_keys(pending)
        pending.clear()
        ids.clear()

    with database.atomic():
        for row in rows:
            record_id, values = row[0], row[1]
            row_country = row[2] if len(row) > 2 else country
            ids.append(record_id)
            pending.extend((object_name, record_id, kind, value)
                           for kind, value in keys_for(object_name, values, country=row_country or ""))
            if len(ids) >= BULK:
                flush()
        flush()


def store_new_keys(object_name, ids, keys):
    """Store the keys already computed of records just inserted (``ids`` beside ``keys``,
    one list per record), which have none yet: one executemany."""
    _insert_keys([(object_name, record_id, kind, value) for record_id, found in zip(ids, keys)
                  for kind, value in found])


def _insert_keys(pending):
    """Insert ``(object, record_id, kind, value)`` rows of match keys: executemany, not the
    ORM (~4x faster for the scan's hundreds of thousands of keys)."""
    if pending:
        p = database.param
        database.cursor().executemany(f'INSERT INTO "match_key" ("object", "record_id", "kind", "value") '
                                      f"VALUES ({p}, {p}, {p}, {p})", pending)


def _stored_rows(object_name, where=None):
    """(record_id, values, country) of the live records (``where`` narrows them), read with a
    plain cursor: the ORM's per-row objects cost more than the keys themselves."""
    from crm_core.permissions import engine

    model = engine().objects[object_name].model
    spec = spec_of(object_name)
    by_column = {f.column_name: f for f in model._meta.fields.values()}
    names = sorted({n for fields in spec.fields.values() for n in fields}
                   | {"name", "first_name", "last_name", "country", "account_id"})
    names = [n for n in names if n in by_column]
    countries = {}
    if object_name == "contact":
        # A contact's phone belongs to its account's country: read once, not once per row.
        from crm_core.accounts.models import Account

        countries = dict(Account.select(Account.id, Account.country).tuples())
    query = model.alive(model.id, *(by_column[n] for n in names))
    if where is not None:
        query = query.where(where)
    sql, params = query.sql()
    for row in database.execute_sql(sql, params):
        values = dict(zip(names, row[1:]))
        country = (countries.get(values.get("account_id")) if object_name == "contact"
                   else values.get("country"))
        yield row[0], values, country


def store_name_keys(object_name, first_id, last_id, kinds=NAME_KINDS):
    """Store the name keys (``kinds`` of them) of the records with ids from ``first_id`` to
    ``last_id`` (what a bulk import left for after its commit), replacing any they have:
    idempotent, in chunks of their own transactions, so a rerun after a crash finishes."""
    kinds = frozenset(kinds) & NAME_KINDS
    from crm_core.duplicates.models import MatchKey
    from crm_core.permissions import engine

    model = engine().objects[object_name].model
    start = first_id
    while start <= last_id:
        end = min(start + BULK - 1, last_id)
        with database.atomic():
            MatchKey.delete().where((MatchKey.object == object_name) & MatchKey.kind.in_(sorted(kinds))
                                    & MatchKey.record_id.between(start, end)).execute()
            _insert_keys([(object_name, record_id, kind, value)
                          for record_id, values, country in _stored_rows(object_name, model.id.between(start, end))
                          for kind, value in keys_for(object_name, values, country=country or "", kinds=kinds)])
        start = end + 1


def rebuild_keys(object_name):
    """Recompute the keys of every live record of an object (the scan starts here, so the
    keys of records written around the services, by a bulk load or before this feature,
    are right too)."""
    from crm_core.duplicates.models import MatchKey

    with database.atomic():
        MatchKey.delete().where(MatchKey.object == object_name).execute()
        store_keys_bulk(object_name, _stored_rows(object_name), replace=False)
