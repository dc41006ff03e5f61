"""The ``ext`` part of a record's JSON: what other modules and plugins add to records they
do not own (a pending approval, a territory), through ``crm_record_ext``, one call per
page of records."""

from __future__ import annotations

from flask import current_app, has_request_context
from flask_login import current_user

from crm_core.plugins import RegistryError


def record_ext(object_name, records, actor=None):
    """{record id: {part: value}} for ``records`` of ``object_name`` as ``actor`` (the
    signed-in user by default) may see them. A part named by two implementations is an error."""
    records = [record for record in records if record is not None]
    if not records:
        return {}
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    out = {record.id: {} for record in records}
    seen = set()
    for result in current_app.extensions["crm"].hook.crm_record_ext(
            app=current_app._get_current_object(), actor=actor, object=object_name, records=list(records)):
        for part, values in (result or {}).items():
            if part in seen:
                raise RegistryError(f"the ext part {part!r} of {object_name} is given twice")
            seen.add(part)
            for record_id, value in (values or {}).items():
                if record_id in out:
                    out[record_id][part] = value
    return out
