"""The ``approval`` part of a record's JSON (``ext.approval``): its pending change, with
only the fields the reader may see."""

from __future__ import annotations

from crm_core.api.access import _level_of
from crm_core.approvals import services
from crm_core.approvals.registry import kinds
from crm_core.permissions import FIELD_HIDDEN, engine


def pending_summary(request, reader_id):
    """A pending request as a record's reader sees it: proposed and current values of the
    fields they may see, why it needs approval, who decides next."""
    kind = services.kind_of(request)
    levels = engine().field_levels(reader_id, request.object) if reader_id is not None else {}
    visible = [name for name in services.proposal(request) if _level_of(levels, name) > FIELD_HIDDEN]
    proposed, base = services.proposal(request), services.base_of(request)
    step = services.current_step(request)
    return {"request_id": request.id, "kind": request.kind, "state": request.state,
            "requested_by_id": request.requested_by_id,
            "requested_at": request.requested_at.isoformat() if request.requested_at else None,
            "approver_id": step.approver_id if step else None,
            "proposed": {name: proposed[name] for name in visible},
            "current": {name: base.get(name) for name in visible},
            "reasons": [str(kind.describe_reason(reason)) for reason in services.reasons_of(request)]}


def approval_part(actor, object_name, records):
    """{"approval": {record id: summary}} for the records with a pending request."""
    if not any(kind.object == object_name for _, kind in kinds().items()):
        return {}
    pending = services.pending_by_record(object_name, [record.id for record in records])
    if not pending:
        return {}
    reader_id = getattr(actor, "id", None)
    return {"approval": {record_id: pending_summary(request, reader_id) for record_id, request in pending.items()}}
