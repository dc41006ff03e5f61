"""Which custom fields each object has: the administrators' (stored) and the plugins'
(registered at start with ``crm_register_custom_fields``), as ``Definition`` objects."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_app_context

from crm_core.customfields.models import TYPES, CustomField, CustomValuesField
from crm_core.errors import RegistryError

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# A choice value is matched inside the stored JSON text by segments: no quotes,
# backslashes or list separators.
CHOICE_VALUE = re.compile(r"^[\w][\w .\-/+&]{0,59}$")


@dataclass(frozen=True)
class CustomFieldSpec:
    """A custom field: ``object`` (an access object whose model has a ``custom`` column),
    ``key`` (snake_case, the name under ``custom`` in the API), ``type`` (one of TYPES),
    ``labels`` ({language: label}), ``choices`` (((value, {language: label}), ...)),
    ``required``, ``position`` (order on forms), ``currency`` (money fields).

    Plugins return these from ``crm_register_custom_fields``; administrators' fields are
    stored and come back as the same objects with ``id`` and ``version`` set."""

    object: str
    key: str
    type: str
    labels: Any = field(default_factory=dict)
    choices: tuple = ()
    required: bool = False
    position: int = 0
    currency: str | None = None
    id: int | None = None
    version: int = 0
    retired: bool = False
    owner: str = "admin"

    @property
    def name(self):
        """The field's name in field security, history, filters and exports."""
        return f"custom.{self.key}"

    @property
    def choice_values(self):
        return tuple(value for value, _labels in self.choices)

    def label(self, locale=None):
        from crm_core.i18n import current_locale

        labels = dict(self.labels or {})
        locale = locale or current_locale()
        return (labels.get(locale) or labels.get(locale.split("_")[0]) or labels.get("en")
                or next(iter(labels.values()), None) or self.key)

    def choice_label(self, value, locale=None):
        from crm_core.i18n import current_locale

        locale = locale or current_locale()
        for known, labels in self.choices:
            if known == value:
                labels = labels or {}
                return labels.get(locale) or labels.get("en") or value
        return value


def opted_in(model):
    """Does the model hold custom values (a ``custom`` column)?"""
    return isinstance(model._meta.fields.get("custom"), CustomValuesField)


def objects():
    """Names of the access objects whose records can have custom fields."""
    from crm_core.permissions import engine

    return [name for name, obj in engine().objects.items() if opted_in(obj.model)]


def check_spec(spec, owner):
    """A plugin's spec as the registry accepts it (RegistryError otherwise)."""
    if not isinstance(spec, CustomFieldSpec):
        raise RegistryError(f"{owner}: {spec!r} is not a crm_core.customfields.CustomFieldSpec")
    if not KEY.match(spec.key or "") or spec.type not in TYPES:
        raise RegistryError(f"{owner}: custom field {spec.key!r} needs a snake_case key and a type "
                            f"among {', '.join(TYPES)}")
    if spec.type in ("choice", "multi_choice") and (
            not spec.choices or not all(CHOICE_VALUE.match(v) for v, _ in spec.choices)):
        raise RegistryError(f"{owner}: custom field {spec.key!r} needs choices (letters, digits, "
                            f"spaces and . - / + &)")


def collect(app, host):
    """Called by create_app: the plugins' fields, checked; a key twice on an object is an
    error. Whether the object opts in is checked when the field is first used."""
    from crm_core.plugins import Registry

    registry = Registry("custom field")
    for owner, result in host.call_per_owner("crm_register_custom_fields", app=app):
        for spec in result or ():
            check_spec(spec, owner)
            registry.add(f"{spec.object}.{spec.key}", spec, owner)
    app.extensions["crm_custom_fields"] = [
        CustomFieldSpec(**{**spec.__dict__, "owner": registry.owner(name), "id": None, "version": 0})
        for name, spec in registry.items()]


def plugin_fields(object_name=None):
    specs = current_app.extensions.get("crm_custom_fields", []) if has_app_context() else []
    return [s for s in specs if object_name is None or s.object == object_name]


def from_row(row):
    return CustomFieldSpec(
        object=row.object, key=row.key, type=row.type, labels=json.loads(row.labels or "{}"),
        choices=tuple((c["value"], c.get("labels") or {}) for c in json.loads(row.choices or "[]")),
        required=row.required, position=row.position, currency=row.currency, id=row.id,
        version=row.version, retired=row.retired_at is not None)


def _cache():
    if has_app_context():
        if "_crm_custom_fields" not in g:
            g._crm_custom_fields = {}
        return g._crm_custom_fields
    return {}


def clear_cache():
    if has_app_context():
        g.pop("_crm_custom_fields", None)


def definitions(object_name, include_retired=False):
    """The object's custom fields in form order (retired ones only on request: their
    values stay stored but are neither shown nor accepted)."""
    cache = _cache()
    if object_name not in cache:
        stored = [from_row(row) for row in CustomField.select().where(CustomField.object == object_name)]
        cache[object_name] = sorted(stored + plugin_fields(object_name),
                                    key=lambda spec: (spec.position, spec.key))
    return [spec for spec in cache[object_name] if include_retired or not spec.retired]


def by_key(object_name, include_retired=False):
    return {spec.key: spec for spec in definitions(object_name, include_retired)}
