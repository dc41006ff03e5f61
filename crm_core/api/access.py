"""The access engine applied to API views: every resource under the rules uses these.

- ``readable(name)``: the query of what the caller may see (403 without object permission);
- ``get_readable(name, id)``: one record, a 404 identical to a missing one when unreadable;
- ``require(record, operation)``: a 403 for a readable record the caller may not change;
- field security: ``dump_visible`` strips hidden fields, ``check_writable`` answers 422
  for a field the caller may not edit, ``check_list_arguments`` 400 for filtering or
  sorting by a hidden field.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm_core.api.errors import ApiError
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, FIELD_READ, Level, engine

OPERATION_PERMISSION = {"create": "create", "read": "read", "update": "edit", "delete": "delete"}


def _user_id():
    return current_user.id


def require_object(name, operation="read"):
    """403 for the whole function when the caller's roles lack the object permission."""
    permissions = engine().object_permissions(_user_id(), name)
    if not getattr(permissions, OPERATION_PERMISSION[operation]):
        raise ApiError(403)
    return permissions


def readable(name, *fields, level=Level.READ):
    require_object(name, "read")
    return engine().query(_user_id(), name, *fields, level=level)


def get_readable(name, record_id):
    require_object(name, "read")
    model = engine().objects[name].model
    record = engine().query(_user_id(), name).where(model.id == record_id).first()
    if record is None:
        raise ApiError(404)  # identical to a record that does not exist
    return record


def require(record, operation):
    if not engine().can(_user_id(), record, operation):
        raise ApiError(403)


def field_levels(name):
    return engine().field_levels(_user_id(), name)


def _level_of(levels, field_name):
    return levels.get("*", levels.get(field_name, FIELD_EDIT)) if "*" in levels else \
        levels.get(field_name, FIELD_EDIT)


def dump_visible(name, data):
    """``data`` (a dumped record) without the fields hidden from the caller."""
    levels = field_levels(name)
    out = {key: value for key, value in data.items()
           if key in ("id", "version") or _level_of(levels, key) > FIELD_HIDDEN}
    if isinstance(out.get("custom"), dict):
        # Each custom field is a field of its own for field security: "custom.<key>".
        out["custom"] = {key: value for key, value in out["custom"].items()
                         if _level_of(levels, f"custom.{key}") > FIELD_HIDDEN}
    return out


def check_writable(name, changes):
    levels = field_levels(name)
    names = [key for key in changes if key != "custom" or not isinstance(changes[key], dict)]
    names += [f"custom.{key}" for key in (changes.get("custom") or {}) if isinstance(changes["custom"], dict)]
    refused = sorted(key for key in names if _level_of(levels, key) < FIELD_EDIT)
    if refused:
        raise ApiError(422, "field_not_editable", fields={
            key: [str(_l("You may not change this field."))] for key in refused})


def check_list_arguments(name, args, list_query):
    """Filtering or sorting by a field the caller cannot see is a 400."""
    levels = field_levels(name)
    sort_key = (args.get("sort") or "").lstrip("-")
    used = {key for key in list_query.filters if args.get(key) is not None}
    if sort_key:
        used.add(sort_key)
    hidden = sorted(key for key in used if _level_of(levels, key) == FIELD_HIDDEN)
    if hidden:
        raise ApiError(400, "hidden_field", fields={
            key: [str(_l("You cannot filter or sort by this field."))] for key in hidden})


__all__ = ["readable", "get_readable", "require", "require_object", "dump_visible",
           "check_writable", "check_list_arguments", "field_levels", "FIELD_READ"]
