"""Condition trees: what they may say, checked, and turned into a peewee expression.

A tree is a group ``{"all": [...]}`` / ``{"any": [...]}`` of conditions and groups, or a
condition ``{"field": "country", "op": "in", "value": ["VN", "PL"]}``. Fields are the
record's own (as named in the API) and its custom fields (``custom.<key>``). Each field
has a kind that says which operators apply; values are converted like the field's own
input, with a translated message per condition when they cannot be.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import peewee
from flask_babel import lazy_gettext as _l

from crm_core.customfields.registry import definitions, opted_in
from crm_core.customfields.values import Invalid, converter
from crm_core.db import MoneyField, UTCDateTimeField
from crm_core.errors import UserError
from crm_core.permissions import FIELD_EDIT, FIELD_HIDDEN, engine
from crm_core.segments import sql

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_IN = 200
SKIPPED = frozenset(["deleted_at", "deleted_by_id", "custom", "version"])

OPERATORS = {
    "text": ("eq", "ne", "contains", "in", "empty", "not_empty"),
    "choice": ("eq", "ne", "in", "empty", "not_empty"),
    "multi_choice": ("includes", "empty", "not_empty"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "empty", "not_empty"),
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    "date": ("eq", "gt", "gte", "lt", "lte", "between", "empty", "not_empty"),
    "boolean": ("eq", "empty", "not_empty"),
}
OPERATOR_LABELS = {
    "eq": _l("equals"), "ne": _l("does not equal"), "contains": _l("contains"), "in": _l("is one of"),
    "gt": _l("is greater than"), "gte": _l("is at least"), "lt": _l("is less than"),
    "lte": _l("is at most"), "between": _l("is between"), "empty": _l("is empty"),
    "not_empty": _l("is not empty"), "includes": _l("includes"),
}


class ConditionError(UserError):
    """A tree that cannot run; ``code`` "hidden_field" when it names a field hidden from
    the reader (the API answers 400), "invalid" otherwise (422)."""


@dataclass(frozen=True)
class SegmentField:
    name: str          # "country", "custom.interests"
    kind: str          # a key of OPERATORS
    label: Any
    column: Any = None  # the model field, for the record's own fields
    spec: Any = None    # the CustomFieldSpec, for custom fields

    @property
    def operators(self):
        return OPERATORS[self.kind]


def _kind_of(column):
    if isinstance(column, peewee.BooleanField):
        return "boolean"
    if isinstance(column, (UTCDateTimeField, peewee.DateTimeField, peewee.DateField)):
        return "date"
    if isinstance(column, MoneyField):
        return "money"
    if isinstance(column, (peewee.IntegerField, peewee.FloatField, peewee.DecimalField, peewee.ForeignKeyField)):
        return "number"
    return "text"


def fields(object_name):
    """{name: SegmentField} of every field a condition on ``object_name`` may name."""
    model = engine().objects[object_name].model
    out = {}
    for name, column in model._meta.fields.items():
        if name in SKIPPED:
            continue
        public = column.column_name if isinstance(column, peewee.ForeignKeyField) else name
        out[public] = SegmentField(public, _kind_of(column), public, column=column)
    if opted_in(model):
        for spec in definitions(object_name):
            out[spec.name] = SegmentField(spec.name, spec.type, spec.label(), spec=spec)
    return out


def visible_fields(object_name, user_id):
    """The fields ``user_id`` may filter on (not hidden from them)."""
    levels = engine().field_levels(user_id, object_name)
    return {name: f for name, f in fields(object_name).items() if _level(levels, name) > FIELD_HIDDEN}


def _level(levels, name):
    return levels.get("*", levels.get(name, FIELD_EDIT))


def _standard_value(field, raw):
    kind = field.kind
    if kind == "text":
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
            raise Invalid(_l("This value is not valid."))
        return raw.strip()
    if kind in ("number", "money"):
        if isinstance(raw, bool):
            raise Invalid(_l("Enter a number such as 1234.50."))
        try:
            number = Decimal(str(raw).strip().replace(",", "."))
        except Exception:  # noqa: BLE001 - any unreadable number is the same message
            raise Invalid(_l("Enter a number such as 1234.50.")) from None
        if not number.is_finite() or abs(number) >= Decimal(10) ** 15:
            raise Invalid(_l("Enter a number such as 1234.50."))
        return int(number) if kind == "number" and number == number.to_integral_value() else number
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(raw).strip()[:10])
        except ValueError:
            raise Invalid(_l("Enter a date such as 2026-12-31.")) from None
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() in ("true", "1", "yes"):
            return True
        if str(raw).strip().lower() in ("false", "0", "no"):
            return False
        raise Invalid(_l("Enter yes or no."))
    raise Invalid(_l("This value is not valid."))


def _value(field, raw):
    """One operand converted for ``field`` (Invalid when it cannot be)."""
    if raw is None:
        raise Invalid(_l("This value is not valid."))
    if field.spec is None:
        return _standard_value(field, raw)
    if field.kind == "multi_choice":  # "includes tennis": one of the choices
        value = converter(field.spec)(raw)
        if not value or len(value) != 1:
            raise Invalid(_l("Choose one of: %(choices)s.", choices=", ".join(field.spec.choice_values)))
        return value[0]
    if field.kind == "text":
        return _standard_value(field, raw)
    value = converter(field.spec)(raw)
    if value is None:
        raise Invalid(_l("This value is not valid."))
    return value


class Compiler:
    """Checks a tree for one reader and object, and builds its expression."""

    def __init__(self, object_name, user_id):
        self.object_name = object_name
        self.model = engine().objects[object_name].model
        self.fields = fields(object_name)
        self.levels = engine().field_levels(user_id, object_name)
        self.errors = {}
        self.hidden = set()
        self.count = 0

    def compile(self, tree):
        """The peewee expression of ``tree``; ConditionError when it cannot run."""
        expression = self._node(tree, "conditions", 0)
        if self.hidden:
            raise ConditionError(_l("You cannot filter or sort by this field."), field=sorted(self.hidden)[0],
                                 code="hidden_field",
                                 fields={name: _l("You cannot filter or sort by this field.")
                                         for name in sorted(self.hidden)})
        if self.errors:
            first = next(iter(self.errors))
            raise ConditionError(self.errors[first], field=first, fields=dict(self.errors))
        return expression

    def _fail(self, path, message):
        self.errors.setdefault(path, message)
        return None

    def _node(self, node, path, depth):
        if not isinstance(node, dict):
            return self._fail(path, _l("This value is not valid."))
        if "all" in node or "any" in node:
            if len(node) != 1 or depth >= MAX_DEPTH or not isinstance(next(iter(node.values())), list):
                return self._fail(path, _l("A group holds one list under “all” or “any”, at most %(num)s deep.",
                                           num=MAX_DEPTH))
            combine, children = next(iter(node.items()))
            parts = [self._node(child, f"{path}.{combine}.{i}", depth + 1) for i, child in enumerate(children)]
            parts = [p for p in parts if p is not None]
            if not children:
                # An empty "all" matches everything; an empty "any" nothing.
                return peewee.SQL("1 = 1") if combine == "all" else peewee.SQL("1 = 0")
            if not parts:
                return None  # every child failed: the errors say why
            result = parts[0]
            for part in parts[1:]:
                result = (result & part) if combine == "all" else (result | part)
            return result
        return self._condition(node, path)

    def _condition(self, node, path):
        self.count += 1
        if self.count > MAX_CONDITIONS:
            return self._fail(path, _l("At most %(num)s conditions.", num=MAX_CONDITIONS))
        if set(node) - {"field", "op", "value"}:
            return self._fail(path, _l("A condition has a field, an operator and a value."))
        name, op = node.get("field"), node.get("op")
        field = self.fields.get(name) if isinstance(name, str) else None
        if field is None:
            return self._fail(f"{path}.field", _l("No such field."))
        if _level(self.levels, name) == FIELD_HIDDEN:
            self.hidden.add(name)
            return None
        if op not in field.operators:
            return self._fail(f"{path}.op", _l("Choose one of: %(choices)s.", choices=", ".join(field.operators)))
        raw = node.get("value")
        try:
            if op in ("empty", "not_empty"):
                value = None
            elif op == "in":
                if not isinstance(raw, list) or not 0 < len(raw) <= MAX_IN:
                    raise Invalid(_l("Give a list of 1 to %(num)s values.", num=MAX_IN))
                value = [_value(field, item) for item in raw]
            elif op == "between":
                if not isinstance(raw, list) or len(raw) != 2:
                    raise Invalid(_l("Give two values: the lowest and the highest."))
                value = [_value(field, item) for item in raw]
            else:
                value = _value(field, raw)
        except Invalid as problem:
            return self._fail(f"{path}.value", problem.message)
        return self._expression(field, op, value)

    def _expression(self, field, op, value):
        if field.spec is not None:
            return self._custom(field, op, value)
        column = field.column
        if field.kind == "date" and isinstance(column, UTCDateTimeField):
            return self._moments(column, op, value)
        if op == "eq":
            return column == value
        if op == "ne":
            return (column != value) | column.is_null()
        if op == "contains":
            return sql.contains_text(column, value.lower())
        if op == "in":
            return column.in_(value)
        if op == "empty":
            return column.is_null() | (column == "") if field.kind == "text" else column.is_null()
        if op == "not_empty":
            return column.is_null(False) & (column != "") if field.kind == "text" else column.is_null(False)
        return _range(column, op, value)

    @staticmethod
    def _moments(column, op, value):
        """A date against a point in time: the whole day, in UTC."""
        def start(day):
            return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)

        def end(day):
            return start(day + dt.timedelta(days=1))
        if op in ("empty", "not_empty"):
            return column.is_null(op == "not_empty")
        if op == "eq":
            return (column >= start(value)) & (column < end(value))
        if op == "between":
            return (column >= start(value[0])) & (column < end(value[1]))
        return {"gt": column >= end(value), "gte": column >= start(value),
                "lt": column < start(value), "lte": column < end(value)}[op]

    def _custom(self, field, op, value):
        model, key, kind = self.model, field.spec.key, field.kind
        stored = sql.value_of(model, key, kind)
        if op == "empty":
            return ~sql.has_key(model, key)
        if op == "not_empty":
            return sql.has_key(model, key)
        if op == "includes":
            return sql.includes(model, key, value)
        if op == "eq":
            return sql.equals(model, key, value, kind)
        if op == "ne":
            return ~sql.has_key(model, key) | (stored != sql.param(value, kind))
        if op == "contains":
            return sql.contains_text(stored, value.lower())
        if op == "in":
            return stored.in_([sql.param(v, kind) for v in value])
        if op == "between":
            return (stored >= sql.param(value[0], kind)) & (stored <= sql.param(value[1], kind))
        return _range(stored, op, sql.param(value, kind))


def _range(expression, op, value):
    if op == "between":
        return (expression >= value[0]) & (expression <= value[1])
    return {"gt": expression > value, "gte": expression >= value, "lt": expression < value,
            "lte": expression <= value}[op]


def compile_tree(object_name, user_id, tree):
    """The expression of ``tree`` for ``user_id`` on ``object_name`` (ConditionError)."""
    return Compiler(object_name, user_id).compile(tree)


def fields_named(tree):
    """Every field name a tree mentions."""
    if isinstance(tree, dict):
        if "field" in tree:
            return {tree["field"]} if isinstance(tree["field"], str) else set()
        return set().union(*(fields_named(child) for value in tree.values() if isinstance(value, list)
                             for child in value)) if tree else set()
    return set()
