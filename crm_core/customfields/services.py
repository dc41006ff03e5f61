"""Administrators define, change and retire custom fields.

A field's key and object never change (values and field rules are stored under them).
A type change when records hold values converts every stored value with the new type's
converter in one transaction, or is refused (nothing written) when any value cannot be
converted; removing a choice that records still hold is refused the same way.
"""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l

from crm_core.audit.services import log_security
from crm_core.customfields.models import TYPES, CustomField, dumps
from crm_core.customfields.registry import (CHOICE_VALUE, KEY, clear_cache, definitions, from_row, objects,
                                            plugin_fields)
from crm_core.customfields.values import Invalid, converter
from crm_core.db import database, utcnow
from crm_core.errors import UserError, VersionConflict
from crm_core.org.services import Problems
from crm_core.permissions import engine

LANGUAGES = ("en", "vi", "pl", "zh", "zh_TW", "ru")
MAX_CHOICES = 200


def _labels(values, problems):
    labels = values.get("labels")
    if labels is None:
        return
    if not isinstance(labels, dict) or set(labels) - set(LANGUAGES) or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= 100 for v in labels.values()):
        problems.add("labels", _l("Give a label of at most 100 characters per language (%(languages)s).",
                                  languages=", ".join(LANGUAGES)))
        return
    values["labels"] = {k: v.strip() for k, v in labels.items()}
    if not values["labels"].get("en"):
        problems.add("labels", _l("The English label is required."))


def _choices(values, field_type, problems):
    choices = values.get("choices")
    if field_type not in ("choice", "multi_choice"):
        if choices:
            problems.add("choices", _l("Only choice fields have choices."))
        values["choices"] = []
        return
    if choices is None:
        return
    seen = set()
    clean = []
    for item in choices if isinstance(choices, list) else [None]:
        if isinstance(item, str):
            item = {"value": item}
        value = item.get("value", "").strip() if isinstance(item, dict) and isinstance(item.get("value"), str) else ""
        labels = item.get("labels") or {} if isinstance(item, dict) else {}
        if (not CHOICE_VALUE.match(value) or value in seen or not isinstance(labels, dict)
                or set(labels) - set(LANGUAGES)
                or not all(isinstance(v, str) and len(v) <= 100 for v in labels.values())):
            problems.add("choices", _l("Each choice needs its own value (letters, digits, spaces and "
                                       ". - / + &, at most 60) and labels per language."))
            return
        seen.add(value)
        clean.append({"value": value, "labels": {k: v.strip() for k, v in labels.items() if v.strip()}})
    if not clean or len(clean) > MAX_CHOICES:
        problems.add("choices", _l("Give between 1 and %(num)s choices.", num=MAX_CHOICES))
        return
    values["choices"] = clean


def _check(values, problems, field=None):
    if field is None:
        if values.get("object") not in objects():
            problems.add("object", _l("Choose one of: %(choices)s.", choices=", ".join(objects())))
        key = values.get("key")
        if not isinstance(key, str) or not KEY.match(key):
            problems.add("key", _l("Use lower-case letters, digits and _ (at most 40), starting with a letter."))
        elif "object" not in problems and (
                CustomField.select().where((CustomField.object == values["object"])
                                           & (CustomField.key == key)).exists()
                or any(spec.key == key for spec in plugin_fields(values["object"]))):
            problems.add("key", _l("This name is already in use."))
    field_type = values.get("type", field.type if field else None)
    if field_type not in TYPES:
        problems.add("type", _l("Choose one of: %(choices)s.", choices=", ".join(TYPES)))
    _labels(values, problems)
    if field is None and "labels" not in values:
        problems.add("labels", _l("The English label is required."))
    _choices(values, field_type, problems)
    if field is None and field_type in ("choice", "multi_choice") and not values.get("choices"):
        problems.add("choices", _l("Give between 1 and %(num)s choices.", num=MAX_CHOICES))
    currency = values.get("currency", field.currency if field else None)
    if field_type == "money":
        from crm_core.errors import FieldValueError
        from crm_core.money import check_currency

        try:
            values["currency"] = check_currency(currency) if currency else None
        except FieldValueError as problem:
            problems.add("currency", problem.message)
    elif values.get("currency"):
        problems.add("currency", _l("Only money fields have a currency."))
    position = values.get("position")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or not 0 <= position <= 10_000):
        problems.add("position", _l("This value is not valid."))


def _row_values(values):
    out = dict(values)
    if "labels" in out:
        out["labels"] = json.dumps(out["labels"], ensure_ascii=False, sort_keys=True)
    if "choices" in out:
        out["choices"] = json.dumps(out["choices"], ensure_ascii=False)
    return out


def create_field(values, actor_id=None):
    """A new custom field: ``{object, key, type, labels, choices?, required?, position?,
    currency?}``. Returns its CustomFieldSpec."""
    values = dict(values)
    problems = Problems()
    _check(values, problems)
    problems.check()
    values.setdefault("position", (max((s.position for s in definitions(values["object"], True)),
                                       default=0) + 10))
    with database.atomic():
        row = CustomField.create(**_row_values(values))
        log_security("custom_field_created", actor_id=actor_id, subject=f"{row.object}.{row.key}",
                     type=row.type)
    clear_cache()
    return from_row(row)


def _stored_values(field):
    """(model, [(record id, custom dict)]) of the records (bin included) holding the field."""
    model = engine().objects[field.object].model
    column = model._meta.fields["custom"]
    from crm_core.segments.sql import has_key

    rows = model.select(model.id, column).where(has_key(model, field.key)).tuples()
    return model, [(rid, column.python_value(custom)) for rid, custom in rows]


def update_field(field, changes, actor_id=None, expected_version=None):
    """Change labels, choices, required, position, currency or the type (converting the
    stored values, or refusing when one does not convert). Returns the new spec."""
    changes = dict(changes)
    row = CustomField.get_by_id(field.id)
    for fixed in ("object", "key"):
        if fixed in changes and changes[fixed] != getattr(row, fixed):
            raise UserError(_l("The name and object of a field cannot change."), field=fixed)
        changes.pop(fixed, None)
    problems = Problems()
    _check(changes, problems, field)
    problems.check()
    new = from_row(CustomField(**{**row.__data__, **_row_values(changes)}))
    expected = row.version if expected_version is None else int(expected_version)
    with database.atomic():
        rewrites = _conversions(field, new)
        count = (CustomField.update({**_row_values(changes), CustomField.version: CustomField.version + 1,
                                     CustomField.updated_at: utcnow()})
                 .where((CustomField.id == field.id) & (CustomField.version == expected)).execute())
        if count != 1:
            raise VersionConflict(CustomField, field.id, expected, row.version)
        model = engine().objects[field.object].model
        for record_id, custom in rewrites:
            model.update({model._meta.fields["custom"]: dumps(custom)}).where(model.id == record_id).execute()
        log_security("custom_field_changed", actor_id=actor_id, subject=f"{row.object}.{row.key}",
                     changes=sorted(changes), converted=len(rewrites))
    clear_cache()
    return from_row(CustomField.get_by_id(field.id))


def _conversions(old, new):
    """[(record id, new custom dict)] the change needs written; UserError when a stored
    value does not fit the new definition (a removed choice, a type it cannot become)."""
    if (old.type, old.choice_values, old.currency) == (new.type, new.choice_values, new.currency):
        return []
    convert = converter(new)
    _model, stored = _stored_values(old)
    out, failed = [], 0
    for record_id, custom in stored:
        value = custom.get(old.key)
        if old.type == "multi_choice" and new.type != "multi_choice":
            value = "; ".join(value) if new.type == "text" else (value[0] if len(value) == 1 else value)
        elif old.type in ("number", "money") and new.type == "text":
            value = format(value, "f")
        elif old.type == "boolean" and new.type == "text":
            value = "yes" if value else "no"
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and new.type != "boolean":
            value = str(value)
        try:
            converted = convert(value)
        except Invalid:
            failed += 1
            continue
        if converted != custom.get(old.key):
            out.append((record_id, {**custom, old.key: converted}))
    if failed:
        raise UserError(_l("%(count)s records hold values this field could no longer hold; change "
                           "or clear them first.", count=failed), field="type", code="values_exist")
    return out


def retire_field(field, actor_id=None):
    """Retire a field: hidden everywhere, values kept (bringing it back shows them again)."""
    CustomField.update(retired_at=utcnow(), version=CustomField.version + 1).where(
        CustomField.id == field.id).execute()
    log_security("custom_field_retired", actor_id=actor_id, subject=f"{field.object}.{field.key}")
    clear_cache()


def restore_field(field, actor_id=None):
    CustomField.update(retired_at=None, version=CustomField.version + 1).where(
        CustomField.id == field.id).execute()
    log_security("custom_field_restored", actor_id=actor_id, subject=f"{field.object}.{field.key}")
    clear_cache()


def stored_field(field_id):
    row = CustomField.get_or_none(CustomField.id == field_id)
    return from_row(row) if row else None
