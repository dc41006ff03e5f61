"""Mass transfer of ownership: records chosen by ids or by their current owner go to
another user; only those the actor may transfer, after a preview of how many; manual
shares end (save_changes does it), history is written, the transfer is logged."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from crm_core.db import database
from crm_core.errors import UserError
from crm_core.org.services import Problems
from crm_core.permissions import Level, engine
from crm_core.record_checks import owner, save_changes

TRANSFERABLE = ("account", "contact", "lead")
SAMPLE = 50
MAX_IDS = 10_000


def transfer_query(actor_id, object_name, to_owner_id, ids=None, from_owner_id=None):
    """The records a transfer would move: those chosen (``ids`` and/or ``from_owner_id``)
    that ``actor_id`` may transfer and that ``to_owner_id`` does not own yet (a converted
    lead stays as it was converted)."""
    model = engine().objects[object_name].model
    query = engine().query(actor_id, object_name, level=Level.TRANSFER).where(model.owner_id != to_owner_id)
    if ids is not None:
        query = query.where(model.id.in_(list(ids)))
    if from_owner_id is not None:
        query = query.where(model.owner_id == from_owner_id)
    if object_name == "lead":
        query = query.where(model.status != "converted")
    return query


def check_transfer(object_name, to_owner_id, ids, from_owner_id):
    problems = Problems()
    if object_name not in TRANSFERABLE:
        problems.add("object", _l("Choose one of: %(choices)s.", choices=", ".join(TRANSFERABLE)))
    if ids is None and from_owner_id is None:
        problems.add("ids", _l("Choose the records: by their ids or by their owner."))
    if ids is not None and len(ids) > MAX_IDS:
        problems.add("ids", _l("At most %(count)s records at once.", count=MAX_IDS))
    owner({"owner_id": to_owner_id}, problems)
    if problems.fields.get("owner_id"):
        problems.fields["to_owner_id"] = problems.fields.pop("owner_id")
    problems.check()


def preview(actor_id, object_name, to_owner_id, ids=None, from_owner_id=None):
    """(how many, the first few) a transfer would move; nothing written."""
    check_transfer(object_name, to_owner_id, ids, from_owner_id)
    query = transfer_query(actor_id, object_name, to_owner_id, ids, from_owner_id)
    model = engine().objects[object_name].model
    return query.count(), list(query.order_by(model.id).limit(SAMPLE))


def transfer(actor_id, object_name, to_owner_id, expected_count, ids=None, from_owner_id=None):
    """Give the previewed records to ``to_owner_id``, one change each (history, a new
    version, the old owner's manual shares ended), in one transaction. ``expected_count``
    is what the preview showed: when the set changed since, nothing moves (409)."""
    from crm_core.audit.services import log_security

    check_transfer(object_name, to_owner_id, ids, from_owner_id)
    model = engine().objects[object_name].model
    with database.atomic():
        records = list(transfer_query(actor_id, object_name, to_owner_id, ids, from_owner_id)
                       .order_by(model.id))
        if len(records) != expected_count:
            raise UserError(_l("The records to transfer changed since the preview: preview again."),
                            field="expected_count", code="changed")
        for record in records:
            save_changes(record, object_name, {"owner_id": to_owner_id}, actor_id)
        if records:
            log_security("records_transferred", actor_id=actor_id, subject=object_name,
                         count=len(records), to_owner_id=to_owner_id, from_owner_id=from_owner_id,
                         ids=[r.id for r in records[:1000]])
    return len(records)
