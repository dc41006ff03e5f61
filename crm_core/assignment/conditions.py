"""Conditions of assignment rules, compiled once into plain Python predicates.

A condition is ``{"field", "op", "value"}``; all conditions of a rule must hold. Values
compare as trimmed, case-folded text, so "vn", "VN" and " Vn " are one country and a
campaign id 7 equals "7". A field is read by a getter: ``values.get(name)`` unless the
object declares its own (``FIELD_GETTERS``), which is where computed or custom fields
plug in without changing how rules are evaluated.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

OPERATORS = ("equals", "not_equals", "in", "contains", "starts_with", "empty", "not_empty")

# Fields every object's rules may use beyond its model's own columns, by object:
# {object: {field: getter(values) -> value}}. Custom fields add their getters here.
FIELD_GETTERS: dict[str, dict] = {}


def norm(value):
    if value is None:
        return None
    if type(value) is str:  # the common case first: this runs for every field of every row
        return value.strip().casefold() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().casefold()
    return text or None


def getter(object_name, field):
    special = FIELD_GETTERS.get(object_name, {}).get(field)
    if special is not None:
        return special
    return lambda values: values.get(field)


def _as_list(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return [norm(v) for v in value if norm(v) is not None]
    return [part for part in (norm(v) for v in str(value or "").split(",")) if part is not None]


def predicate(op, value):
    """A function of a normalised value, for ``op`` and the rule's ``value``."""
    if op == "empty":
        return lambda v: v is None
    if op == "not_empty":
        return lambda v: v is not None
    if op == "in":
        choices = frozenset(_as_list(value))
        return lambda v: v in choices
    wanted = norm(value)
    if op == "equals":
        return lambda v: v == wanted
    if op == "not_equals":
        return lambda v: v != wanted
    if op == "contains":
        return lambda v: v is not None and wanted in v
    if op == "starts_with":
        return lambda v: v is not None and v.startswith(wanted)
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
    known = set(fields) | set(FIELD_GETTERS.get(object_name, {}))
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
