"""Conditions of assignment rules, compiled once into plain Python predicates.

A condition is ``{"field", "op", "value"}``; all conditions of a rule must hold. Values
compare as trimmed, case-folded text, so "vn", "VN" and " Vn " are one country and a
campaign id 7 equals "7". A field is read by a getter: ``values.get(name)`` unless the
object declares its own (``FIELD_GETTERS``), which is where computed or custom fields
plug in without changing how rules are evaluated.
"""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l

OPERATORS = ("equals", "not_equals", "in", "contains", "starts_with", "empty", "not_empty")

# Fields every object's rules may use beyond its model's own columns, by object:
# {object: {field: getter(values) -> value}}. Custom fields add their getters here.
FIELD_GETTERS: dict[str, dict] = {}


CUSTOM = "custom."  # a custom field's condition names "custom.<key>" (crm_core.customfields)


def norm(value):
    if value is None:
        return None
    if type(value) is str:  # the common case first: this runs for every field of every row
        return value.strip().casefold() or None
    if isinstance(value, (list, tuple)):  # a multi-choice custom field: its chosen values
        return tuple(sorted({v for v in (norm(item) for item in value) if v is not None})) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):  # a custom number: 5000, 5000.0 and 5E+3 are "5000"
        return format(value.normalize(), "f")
    text = str(value).strip().casefold()
    return text or None


def getter(object_name, field):
    special = FIELD_GETTERS.get(object_name, {}).get(field)
    if special is not None:
        return special
    if field.startswith(CUSTOM):
        return custom_getter(field[len(CUSTOM):])
    return lambda values: values.get(field)


def custom_getter(key):
    """A custom field's value from a record's values (``custom`` is the record's dict of
    custom values, as the model, the services and the importer give it)."""
    def get(values):
        return (values.get("custom") or {}).get(key)
    return get


def is_special(object_name, field):
    """True when ``field`` is read by a getter rather than by ``values.get(field)``."""
    return field in FIELD_GETTERS.get(object_name, {}) or field.startswith(CUSTOM)


def custom_fields(object_name):
    """The ``custom.<key>`` names of ``object_name``'s live custom fields, for rules."""
    from crm_core.customfields import definitions

    return [spec.name for spec in definitions(object_name)]


def _as_list(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return [norm(v) for v in value if norm(v) is not None]
    return [part for part in (norm(v) for v in str(value or "").split(",")) if part is not None]


def predicate(op, value):
    """A function of a normalised value, for ``op`` and the rule's ``value``.

    A multi-choice value is a tuple of its chosen values: "contains" holds when one of
    them is the rule's value, "in" when one of them is among the rule's values,
    "equals" when it is the only one, "starts_with" when one of them starts so."""
    if op == "empty":
        return lambda v: v is None
    if op == "not_empty":
        return lambda v: v is not None
    if op == "in":
        choices = frozenset(_as_list(value))
        return lambda v: (not choices.isdisjoint(v)) if type(v) is tuple else v in choices
    wanted = norm(value)
    if op == "equals":
        alone = (wanted,)
        return lambda v: v == alone if type(v) is tuple else v == wanted
    if op == "not_equals":
        alone = (wanted,)
        return lambda v: v != alone if type(v) is tuple else v != wanted
    if op == "contains":
        return lambda v: v is not None and wanted in v  # a substring, or one of the choices
    if op == "starts_with":
        return lambda v: (v is not None and (any(item.startswith(wanted) for item in v)
                                             if type(v) is tuple else v.startswith(wanted)))
    raise ValueError(f"unknown operator {op!r}")


def compile_parts(object_name, conditions):
    """[(field, getter, test)] of a rule's conditions, for evaluators that share the
    normalised value of a field between rules (the proposer reads each field once a row)."""
    return [(c["field"], getter(object_name, c["field"]), predicate(c["op"], c.get("value")))
            for c in conditions]


def compile_conditions(object_name, conditions):
    """One function ``values -> bool`` for a rule's conditions (no conditions: always)."""
    tests = [(getter(object_name, c["field"]), predicate(c["op"], c.get("value")))
             for c in conditions]
    if not tests:
        return lambda values: True
    if len(tests) == 1:
        (get, test), = tests
        return lambda values: test(norm(get(values)))
    return lambda values: all(test(norm(get(values))) for get, test in tests)


def check_conditions(object_name, fields, conditions, problems):
    """Refuse conditions on unknown fields, unknown operators, or without a value."""
    if not isinstance(conditions, list):
        problems.add("conditions", _l("Give a list of conditions."))
        return
    known = set(fields) | set(FIELD_GETTERS.get(object_name, {})) | set(custom_fields(object_name))
    for condition in conditions:
        if not isinstance(condition, dict) or set(condition) - {"field", "op", "value"}:
            problems.add("conditions", _l("Each condition has a field, an operator and a value."))
            return
        if condition.get("field") not in known:
            problems.add("conditions", _l("“%(field)s” is not a field of this object.",
                                          field=str(condition.get("field"))))
        if condition.get("op") not in OPERATORS:
            problems.add("conditions", _l("Choose one of: %(choices)s.", choices=", ".join(OPERATORS)))
        elif condition["op"] not in ("empty", "not_empty") and not _as_list(condition.get("value")):
            problems.add("conditions", _l("This condition needs a value."))
