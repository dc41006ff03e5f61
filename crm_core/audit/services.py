"""Writing and reading the field history and the security log."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from flask import g, has_request_context, request

from crm_core.audit.models import FieldHistory, SecurityEvent


def request_id():
    """The id of the current request (also sent back as X-Request-ID), or None."""
    if not has_request_context():
        return None
    if "_crm_request_id" not in g:
        g._crm_request_id = uuid.uuid4().hex
    return g._crm_request_id


def _text(value):
    """A value as history shows it: text as is, amounts without storage's trailing zeros,
    times in ISO 8601, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False)


def record_changes(model, record_id, changed, actor_id):
    """History rows for ``{field: (old, new)}`` (call inside the change's transaction)."""
    if not changed:
        return
    rid = request_id()
    FieldHistory.insert_many([{
        "table": model._meta.table_name, "record_id": record_id, "field": name,
        "old_value": _text(old), "new_value": _text(new), "changed_by_id": actor_id,
        "request_id": rid,
    } for name, (old, new) in changed.items()]).execute()


def history_of(model, record_id, readable_fields=None):
    """The record's history, newest first; only fields in ``readable_fields`` when given
    (field-level security applies to history as to the record itself)."""
    query = (FieldHistory.select()
             .where((FieldHistory.table == model._meta.table_name) & (FieldHistory.record_id == record_id))
             .order_by(FieldHistory.changed_at.desc(), FieldHistory.id.desc()))
    rows = list(query)
    if readable_fields is not None:
        rows = [row for row in rows if row.field in readable_fields]
    return rows


def log_security(kind, actor_id=None, subject=None, **detail):
    """Append an event to the security log (never updated, never deleted by the app)."""
    address = request.remote_addr if has_request_context() else None
    SecurityEvent.insert(kind=kind, actor_id=actor_id, subject=(subject or None),
                         address=address, request_id=request_id(),
                         detail=json.dumps(detail, default=str, ensure_ascii=False) if detail else None
                         ).execute()
