"""Merging two records of the same kind: the survivor takes the values chosen from the
other, everything attached to the other moves to the survivor (the core's own links here,
later objects' through ``crm_records_merged``), the other goes to the recycle bin, and
both histories say so; one transaction, on the versions the person saw."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from crm_core.audit.services import log_security, record_changes
from crm_core.db import database, utcnow
from crm_core.duplicates.check import unchecked
from crm_core.duplicates.keys import drop_keys, store_record_keys, values_of
from crm_core.duplicates.rules import spec_of
from crm_core.errors import UserError, VersionConflict
from crm_core.permissions import Level, engine
from crm_core.records import object_of, records_written

def _children():
    """``{object: [(model, foreign key field name)]}``: the core's records that point at a
    record of each object and move to the survivor."""
    from crm_core.accounts.models import Account, Contact
    from crm_core.leads.models import Lead
    from crm_core.opportunities.models import Opportunity

    # An opportunity keeps its account when its contact merges into one of another account:
    # the person it was sold to is the survivor; its account is the customer it was sold to.
    return {"account": [(Contact, "account"), (Account, "parent"), (Lead, "converted_account"),
                        (Opportunity, "account")],
            "contact": [(Contact, "reports_to"), (Lead, "converted_contact"), (Opportunity, "contact")],
            "lead": [(Opportunity, "lead")]}


def _update_service(object_name):
    from crm_core.accounts import services as accounts
    from crm_core.leads import services as leads

    return {"account": accounts.update_account, "contact": accounts.update_contact,
            "lead": leads.update_lead}[object_name]


def reparent(model, field_name, from_id, to_id, actor_id, skip=()):
    """Point every record of ``model`` whose ``field_name`` is ``from_id`` at ``to_id``
    (those in the recycle bin too, so a restore brings them back where they belong): a new
    version and a history row each, so a form opened before the merge gets a conflict."""
    fld = model._meta.fields[field_name]
    ids = [row_id for (row_id,) in model.select(model.id).where(fld == from_id).tuples()
           if row_id not in skip]
    if not ids:
        return 0
    model.update({fld: to_id, model.version: model.version + 1, model.updated_at: utcnow(),
                  model.updated_by_id: actor_id}).where(model.id.in_(ids)).execute()
    for row_id in ids:
        record_changes(model, row_id, {field_name: (from_id, to_id)}, actor_id)
    records_written(object_of(model), ids, {fld.column_name}, actor_id)
    return len(ids)


def may_merge(actor_id, survivor, other):
    """EDIT on the survivor and DELETE on the other (with the object's edit and delete
    permissions)."""
    access = engine()
    return access.can(actor_id, survivor, "update") and access.can(actor_id, other, "delete")


def custom_names(object_name):
    """The ``custom.<key>`` names of the object's live custom fields: a merge may take
    them from the other record like its own fields."""
    from crm_core.customfields.registry import definitions

    return [spec.name for spec in definitions(object_name)]


def check_merge(object_name, survivor, other, take):
    spec = spec_of(object_name)
    if survivor.id == other.id:
        raise UserError(_l("Choose another record to merge with."), field="other_id")
    unknown = sorted(set(take) - set(spec.mergeable) - set(custom_names(object_name)))
    if unknown:
        raise UserError(_l("These fields cannot be taken from the other record: %(fields)s.",
                           fields=", ".join(unknown)), field="take")
    link = {"account": "parent", "contact": "reports_to"}.get(object_name)
    if link is not None and _above(survivor, other, link):
        # Its records in between would end up under the survivor, which is under them.
        raise UserError(_l("This record is higher up in the same tree: merge the other way round."),
                        field="other_id")
    if object_name == "lead" and "converted" in (survivor.status, other.status):
        raise UserError(_l("A converted lead cannot be merged: merge its account and contact instead."),
                        field="other_id", code="converted")


def _above(survivor, other, link):
    """Is ``other`` an ancestor of ``survivor`` further up than its direct parent?"""
    from crm_core.records import chain_reaches

    model = type(survivor)
    parent_id = getattr(survivor, f"{link}_id")
    if parent_id is None or parent_id == other.id:
        return False
    parent = model.get_or_none(model.id == parent_id)
    grandparent_id = getattr(parent, f"{link}_id") if parent is not None else None
    grandparent = model.get_or_none(model.id == grandparent_id) if grandparent_id else None
    return grandparent is not None and chain_reaches(model, grandparent, other.id, link)


def merge(object_name, survivor, other, actor_id=None, survivor_version=None, other_version=None,
          take=()):
    """Merge ``other`` into ``survivor``; ``take`` names the fields (API names, custom
    fields as ``custom.<key>``) whose value comes from ``other``. The caller checked ``may_merge``. Returns what changed on the
    survivor. A stale version of either record is a ``VersionConflict`` with nothing written."""
    from crm_core.duplicates.models import DuplicatePair
    from crm_core.org.models import RecordShare
    from crm_core.recycle.services import move_to_bin

    take = list(dict.fromkeys(take))
    check_merge(object_name, survivor, other, take)
    if other_version is not None and int(other_version) != other.version:
        raise VersionConflict(type(other), other.id, other_version, other.version)
    spec = spec_of(object_name)
    model = type(survivor)
    other_values = values_of(other)
    changes = {name: other_values[name] for name in take if not name.startswith("custom.")}
    custom = {name.removeprefix("custom."): (other.custom or {}).get(name.removeprefix("custom."))
              for name in take if name.startswith("custom.")}
    if custom:  # through the service: converted, checked, written with history per field
        changes["custom"] = custom
    with database.atomic(), unchecked():
        if object_name == "account" and survivor.parent_id == other.id and "parent_id" not in take:
            # The survivor was in the other's group: it takes the other's place in it.
            changes["parent_id"] = other.parent_id
        if object_name == "contact" and survivor.reports_to_id == other.id and "reports_to_id" not in take:
            changes["reports_to_id"] = other.reports_to_id
        if changes.get("parent_id") == survivor.id or (object_name == "account" and changes.get("parent_id") == other.id):
            changes["parent_id"] = None
        if object_name == "contact" and changes.get("reports_to_id") in (survivor.id, other.id):
            changes["reports_to_id"] = None
        moved = 0
        for child_model, field_name in _children()[object_name]:
            skip = {survivor.id} if child_model is model else ()
            moved += reparent(child_model, field_name, other.id, survivor.id, actor_id, skip=skip)
        changed = _update_service(object_name)(survivor, changes, actor_id=actor_id,
                                               expected_version=survivor_version)
        record_changes(model, survivor.id, {"merged_from": (None, other.id)}, actor_id)
        record_changes(model, other.id, {"merged_into": (None, survivor.id)}, actor_id)
        if engine().level(actor_id, survivor) >= Level.ALL:
            # Sharing needs ALL: only then do the other's manual shares carry over.
            held = {(s.target_type, s.target_id) for s in RecordShare.select().where(
                (RecordShare.object == object_name) & (RecordShare.record_id == survivor.id))}
            for share in RecordShare.select().where((RecordShare.object == object_name)
                                                    & (RecordShare.record_id == other.id)):
                if (share.target_type, share.target_id) not in held:
                    RecordShare.update(record_id=survivor.id).where(RecordShare.id == share.id).execute()
        current_app.extensions["crm"].hook.crm_records_merged(
            app=current_app._get_current_object(), object=object_name, survivor=survivor, merged=other,
            actor_id=actor_id)
        move_to_bin(other, actor_id=actor_id,
                    label=str(_l("%(name)s (merged into %(survivor)s)", name=spec.label_of(other),
                                 survivor=spec.label_of(survivor)))[:300])
        drop_keys(object_name, other.id)
        store_record_keys(object_name, survivor)
        DuplicatePair.delete().where((DuplicatePair.object == object_name) & (
            (DuplicatePair.low_id == other.id) | (DuplicatePair.high_id == other.id))).execute()
        log_security("records_merged", actor_id=actor_id, subject=f"{object_name} {survivor.id}",
                     merged=other.id, taken=take, moved=moved)
    return changed
