"""Deleting into the recycle bin, restoring, purging after the retention period.

A deletion is a group: the record and the children deleted with it, all soft
deleted in one transaction (each on its version, so a stale delete writes nothing).
Restoring brings back exactly the group; records deleted on their own before stay
deleted. A periodic job purges groups older than the retention (15 days by default).
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from crm_core.audit.services import record_changes
from crm_core.db import database, utcnow
from crm_core.records import soft_delete
from crm_core.recycle.models import RecycleGroup, RecycleItem


def _models_by_table():
    host = current_app.extensions["crm"]
    return {table: model for table, model in host.registries["models"].items()}


def _soft_delete(record, now, actor_id):
    soft_delete(record, actor_id, now=now)
    record_changes(type(record), record.id, {"deleted_at": (None, now)}, actor_id)


def move_to_bin(record, children=(), actor_id=None, label=None, owner_field="owner_id"):
    """Soft delete ``record`` and ``children`` (records) as one group; return the group."""
    now = utcnow()
    with database.atomic():
        _soft_delete(record, now, actor_id)
        alive = [child for child in children if child.deleted_at is None]
        for child in alive:
            _soft_delete(child, now, actor_id)
        group = RecycleGroup.create(
            table=type(record)._meta.table_name, record_id=record.id,
            label=(label or str(getattr(record, "name", None) or record.id))[:300],
            owner_id=getattr(record, owner_field, None), deleted_at=now, deleted_by_id=actor_id)
        items = [{"group": group.id, "table": type(c)._meta.table_name, "record_id": c.id,
                  "position": index} for index, c in enumerate(alive)]
        items.append({"group": group.id, "table": group.table, "record_id": record.id,
                      "position": len(alive)})
        RecycleItem.insert_many(items).execute()
    return group


def restore(group, actor_id=None):
    """Bring back the group's records (those still deleted by this very deletion)."""
    models = _models_by_table()
    with database.atomic():
        for item in RecycleItem.select().where(RecycleItem.group == group).order_by(RecycleItem.position.desc()):
            model = models[item.table]
            restored = (model.update({model.deleted_at: None, model.deleted_by_id: None,
                                      model.version: model.version + 1,
                                      model.updated_at: utcnow(), model.updated_by_id: actor_id})
                        .where((model.id == item.record_id) & (model.deleted_at == group.deleted_at))
                        .execute())
            if restored:
                record_changes(model, item.record_id, {"deleted_at": (group.deleted_at, None)}, actor_id)
        RecycleGroup.delete().where(RecycleGroup.id == group.id).execute()


def purge(group):
    """Remove the group's records for good (children first)."""
    models = _models_by_table()
    with database.atomic():
        for item in RecycleItem.select().where(RecycleItem.group == group).order_by(RecycleItem.position):
            model = models[item.table]
            model.delete().where((model.id == item.record_id) & model.deleted_at.is_null(False)).execute()
        RecycleGroup.delete().where(RecycleGroup.id == group.id).execute()


def purge_expired(now=None, retention_days=None):
    """Purge every group older than the retention; return how many."""
    days = retention_days if retention_days is not None else current_app.config["CRM_RECYCLE_RETENTION_DAYS"]
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    expired = list(RecycleGroup.select().where(RecycleGroup.deleted_at < cutoff))
    for group in expired:
        purge(group)
    return len(expired)


def visible_groups(user):
    """The bin as ``user`` may see it: their own deletions and records, their
    subordinates', everything for administrators."""
    from crm_core.permissions import engine

    subject = engine().subject(user)
    query = RecycleGroup.select().order_by(RecycleGroup.deleted_at.desc(), RecycleGroup.id.desc())
    if subject.is_admin:
        return query
    people = sorted(subject.subordinates | {subject.user_id})
    return query.where(RecycleGroup.deleted_by_id.in_(people) | RecycleGroup.owner_id.in_(people))
