"""The base of every business record: version, who/when columns, soft delete.

``RecordModel`` holds the columns; ``create_record`` and ``update_record`` are
the write path every service uses, so the version check, the timestamps and
(later) field history happen in one place.
"""

from __future__ import annotations

import peewee

from crm_core.audit.services import record_changes
from crm_core.db import BaseModel, UTCDateTimeField, check_money_pairs, database, utcnow
from crm_core.errors import VersionConflict


class RecordModel(BaseModel):
    """Abstract base of mutable business records.

    ``*_by_id`` hold user ids without a foreign key: users are deactivated, never
    deleted, and plugins' tables need no constraint on a core table.
    """

    version = peewee.IntegerField(default=1)
    created_at = UTCDateTimeField(default=utcnow, index=True)
    created_by_id = peewee.IntegerField(null=True)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by_id = peewee.IntegerField(null=True)
    deleted_at = UTCDateTimeField(null=True, index=True)
    deleted_by_id = peewee.IntegerField(null=True)

    @classmethod
    def alive(cls, *fields):
        """Records not in the recycle bin."""
        return cls.select(*fields).where(cls.deleted_at.is_null())

    def save(self, *args, **kwargs):
        check_money_pairs(self)
        return super().save(*args, **kwargs)


BOOKKEEPING = frozenset(
    ["id", "version", "created_at", "created_by_id", "updated_at", "updated_by_id",
     "deleted_at", "deleted_by_id"])


def object_of(model):
    """The access object name of ``model`` ("account"...), None for other tables (stages,
    users...) and outside an application (no plugin to tell)."""
    from flask import current_app, has_app_context

    if not has_app_context() or "crm_access" not in current_app.extensions:
        return None
    try:
        return current_app.extensions["crm_access"].object(model).name
    except KeyError:
        return None


def api_names(model, changed):
    """The API names of the changed fields: a foreign key by its column (``account_id``),
    custom values as ``custom.<key>``."""
    fields = model._meta.fields
    return {fields[name].column_name if name in fields and isinstance(fields[name], peewee.ForeignKeyField)
            else name for name in history_of_changes(changed)}


def records_written(object_name, ids, fields=None, actor_id=None):
    """``crm_records_written`` for records of an access object, inside the caller's
    transaction (an exception rolls the write back). ``fields`` None: created. Nothing
    written, nothing called."""
    from flask import current_app

    ids = list(ids)
    if object_name is None or not ids or (fields is not None and not fields):
        return
    current_app.extensions["crm"].hook.crm_records_written(
        app=current_app._get_current_object(), actor_id=actor_id, object=object_name, ids=ids,
        fields=None if fields is None else set(fields))


def create_record(model, actor_id=None, **values):
    """Insert a record with its version and who/when columns set; a record of an access
    object is announced (``crm_records_written``) in the same transaction."""
    now = utcnow()
    instance = model(**values, version=1, created_at=now, updated_at=now,
                     created_by_id=actor_id, updated_by_id=actor_id)
    with database.atomic():
        instance.save(force_insert=True)
        records_written(object_of(model), [instance.get_id()], None, actor_id)
    # Read back what was stored (upper-cased currency, scaled amount...): callers
    # answer with the record as every later read will show it.
    return model.get_by_id(instance.get_id())


def diff(instance, changes):
    """``{field: (old, new)}`` for the values that really change (foreign keys by id)."""
    out = {}
    for name, new in changes.items():
        if name in BOOKKEEPING or name not in instance._meta.fields:
            raise ValueError(f"{type(instance).__name__} has no writable field {name!r}")
        if isinstance(new, peewee.Model):
            new = new.get_id()
        field = instance._meta.fields[name]
        if new is not None:
            # Compare as stored: "eur" is EUR, "5" is 5.0000; invalid values fail here,
            # before anything is written.
            new = field.python_value(field.db_value(new))
        old = instance.__data__.get(name)
        if old != new:
            out[name] = (old, new)
    return out


def history_of_changes(changed):
    """One history entry per field, custom values included: ``custom`` (a dict of values)
    becomes ``custom.<key>`` for each value that changed."""
    if "custom" not in changed:
        return changed
    out = {name: values for name, values in changed.items() if name != "custom"}
    old, new = (value or {} for value in changed["custom"])
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out[f"custom.{key}"] = (old.get(key), new.get(key))
    return out


def update_record(instance, changes, actor_id=None, expected_version=None, announce=True):
    """Apply ``changes`` if the stored version is still ``expected_version``.

    Returns the ``{field: (old, new)}`` that changed; an empty dict means nothing
    was written and the version did not move. A stale version raises
    VersionConflict and writes nothing (a conditional UPDATE, so two writers can
    never both win). A change of a record of an access object is announced
    (``crm_records_written``) in its transaction, unless ``announce`` is False: a batch
    (a mass transfer) announces its records once, itself.
    """
    model = type(instance)
    expected = instance.version if expected_version is None else int(expected_version)
    changed = diff(instance, changes)
    if not changed:
        if expected != instance.version:
            raise VersionConflict(model, instance.id, expected, instance.version)
        return {}
    now = utcnow()
    values = {model._meta.fields[name]: new for name, (_, new) in changed.items()}
    check_money_pairs(model(**{**instance.__data__, **{n: new for n, (_, new) in changed.items()}}))
    values.update({model.version: model.version + 1, model.updated_at: now,
                   model.updated_by_id: actor_id})
    with database.atomic():
        count = (model.update(values)
                 .where((model.id == instance.id) & (model.version == expected)
                        & model.deleted_at.is_null())
                 .execute())
        if count != 1:
            current = model.select(model.version).where(model.id == instance.id).scalar()
            raise VersionConflict(model, instance.id, expected, current)
        record_changes(model, instance.id, history_of_changes(changed), actor_id)
        if announce:
            records_written(object_of(model), [instance.id], api_names(model, changed), actor_id)
    instance.__data__.update(model.get_by_id(instance.get_id()).__data__)
    instance._dirty.clear()
    return changed


def soft_delete(instance, actor_id=None, now=None):
    """Soft delete a record (a conditional update on its version)."""
    model = type(instance)
    now = now or utcnow()
    count = (model.update({model.deleted_at: now, model.deleted_by_id: actor_id,
                           model.version: model.version + 1})
             .where((model.id == instance.id) & (model.version == instance.version)
                    & model.deleted_at.is_null())
             .execute())
    if count != 1:
        raise VersionConflict(model, instance.id, instance.version)
    instance.deleted_at, instance.deleted_by_id = now, actor_id
    instance.version += 1


def chain_reaches(model, start, target_id, link):
    """Does following ``link`` (``parent``, ``reports_to``...) up from ``start`` reach the
    record ``target_id``? (``start`` itself counts.) Stops on a loop already stored."""
    node, seen = start, set()
    while node is not None and node.id not in seen:
        if node.id == target_id:
            return True
        seen.add(node.id)
        next_id = getattr(node, f"{link}_id")
        node = model.get_or_none(model.id == next_id) if next_id else None
    return False
