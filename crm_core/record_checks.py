"""What every business record's service does with its inputs and writes.

Checks: text trimmed (empty is none), required values, choices, country codes, email
addresses, an owner who is an active user, and references to records the actor may read
(one the actor cannot read is refused exactly like a missing one); each adds its message
to a ``Problems``. Writes: saving checked changes (a new owner ends the old one's manual
shares) and deleting into the recycle bin on the version the caller saw."""

from __future__ import annotations

import re

from babel import Locale
from flask_babel import lazy_gettext as _l

from crm_core.permissions import engine
from crm_core.users.models import User

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRIES = frozenset(code for code in Locale("en").territories if re.fullmatch(r"[A-Z]{2}", code))


def text(values, name, problems, required=False):
    """Strip a text input; empty means none. A required one must be given."""
    if name not in values:
        return
    value = values[name]
    if isinstance(value, str):
        value = value.strip() or None
        values[name] = value
    if required and not value:
        problems.add(name, _l("This field is required."))


def choice(values, name, choices, problems):
    if values.get(name) is not None and values[name] not in choices:
        problems.add(name, _l("Choose one of: %(choices)s.", choices=", ".join(choices)))


def owner(values, problems):
    if "owner_id" in values and not User.alive().where(
            (User.id == values["owner_id"]) & (User.active == True)).exists():  # noqa: E712
        problems.add("owner_id", _l("No such user."))


def readable(name, record_id, actor_id, problems, field, message):
    """Does ``record_id`` name a live record of ``name`` the actor may see? (A record the
    actor cannot read is refused exactly like a missing one.)"""
    if record_id is None:
        return None
    model = engine().objects[name].model
    query = (engine().query(actor_id, name) if actor_id is not None else model.alive())
    record = query.where(model.id == record_id).first()
    if record is None:
        problems.add(field, message)
    return record


def common(values, problems):
    for name in ("email",):
        if values.get(name):
            values[name] = values[name].strip().lower()
            if not EMAIL.match(values[name]):
                problems.add(name, _l("“%(email)s” is not an email address.", email=values[name]))


def country(values, problems):
    if values.get("country"):
        values["country"] = values["country"].upper()
        if values["country"] not in COUNTRIES:
            problems.add("country", _l("Choose a country by its two-letter code."))


def columns(model, values):
    """API names to model fields: ``parent_id`` is the column of the foreign key ``parent``."""
    by_column = {field.column_name: name for name, field in model._meta.fields.items()
                 if hasattr(field, "rel_model")}
    return {by_column.get(key, key): value for key, value in values.items()}


def save_changes(record, object_name, changes, actor_id=None, expected_version=None, announce=True):
    """Write checked ``changes`` (API names) on the caller's version; a new owner ends the
    manual shares the old one made. Returns what changed. ``announce`` False: the caller
    announces the change with its batch (``records.records_written``)."""
    from crm_core.db import database
    from crm_core.org.services import owner_changed
    from crm_core.records import update_record

    with database.atomic():
        changed = update_record(record, columns(type(record), changes), actor_id=actor_id,
                                expected_version=expected_version, announce=announce)
        if "owner_id" in changed:
            owner_changed(object_name, record.id)
    return changed


def delete_to_bin(record, actor_id=None, expected_version=None, label=None, children=()):
    """Into the recycle bin (with ``children``, as one deletion) on the caller's version."""
    from crm_core.errors import VersionConflict
    from crm_core.recycle.services import move_to_bin

    if expected_version is not None and int(expected_version) != record.version:
        raise VersionConflict(type(record), record.id, expected_version)
    return move_to_bin(record, children=children, actor_id=actor_id, label=label)
