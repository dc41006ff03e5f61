"""Computing and storing the match keys of records, one at a time (services) or in bulk
(the scan, the importer)."""

from __future__ import annotations

from crm_core.db import database
from crm_core.duplicates import normalise as norm
from crm_core.duplicates.rules import spec_of

BULK = 5000


def values_of(record):
    """A record's values under their API names (``account_id`` for the foreign key)."""
    out = {}
    for name, fld in record._meta.fields.items():
        out[fld.column_name if hasattr(fld, "rel_model") else name] = record.__data__.get(name)
    return out


def keys_for(object_name, values, country=None):
    """``[(kind, value)]`` of one record's values (API names): its normalised emails,
    phones (with ``country``, else the object's own, for national numbers) and tax id,
    its normalised name and the name's fuzzy blocks. The importer and web-to-lead call it
    per row; nothing here touches the database except a contact's account country when
    ``country`` is not given."""
    spec = spec_of(object_name)
    keys = set()
    for kind, names in spec.fields.items():
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
    name = spec.name_of(values)
    if name:
        keys.add(("name", name[:300]))
        scope = spec.scope_of(values)
        keys.update(("block", f"{scope}|{block}"[:300]) for block in norm.name_blocks(name))
    return sorted(keys)


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
    """Store the keys of many records: ``rows`` is an iterable of ``(record_id, values)``
    or ``(record_id, values, country)``. Replaces their earlier keys (``replace=False``: the
    caller knows there are none, as for rows just inserted)."""
    from crm_core.duplicates.models import MatchKey

    pending, ids = [], []

    def flush():
        for start in range(0, len(ids) if replace else 0, 900):  # the IN list stays under SQLite's variable limit
            MatchKey.delete().where((MatchKey.object == object_name)
                                    & (MatchKey.record_id.in_(ids[start:start + 900]))).execute()
        if pending:
            # executemany, not the ORM: ~4x faster for the scan's hundreds of thousands of keys.
            p = database.param
            cursor = database.cursor()
            cursor.executemany(f'INSERT INTO "match_key" ("object", "record_id", "kind", "value") '
                               f"VALUES ({p}, {p}, {p}, {p})", pending)
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


def rebuild_keys(object_name):
    """Recompute the keys of every live record of an object (the scan starts here, so the
    keys of records written around the services, by a bulk load or before this feature,
    are right too)."""
    from crm_core.duplicates.models import MatchKey
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

    def rows():
        # A plain cursor: the ORM's per-row objects cost more than the keys themselves.
        query = model.alive(model.id, *(by_column[n] for n in names))
        sql, params = query.sql()
        for row in database.execute_sql(sql, params):
            values = dict(zip(names, row[1:]))
            country = (countries.get(values.get("account_id")) if object_name == "contact"
                       else values.get("country"))
            yield row[0], values, country

    with database.atomic():
        MatchKey.delete().where(MatchKey.object == object_name).execute()
        store_keys_bulk(object_name, rows(), replace=False)
