"""Territory criteria: which accounts and leads belong to a territory.

Criteria are a JSON object; every key given must match (and), any value of a key may (or):

    {"country": ["VN"], "region": ["Hà Nội", "Hải Phòng"], "postal_code": [["70000", "79999"]],
     "industry": ["Retail"], "employees": {"min": 10, "max": 500},
     "custom.interests": ["tennis"]}

- ``country``: ISO 3166 codes (compared upper-case);
- ``region``, ``industry`` and text custom fields: compared without case or surrounding space;
- ``postal_code``: ranges ``[from, to]`` (inclusive) or single codes, compared as text
  after removing spaces (postal codes of one country have one length);
- ``employees`` and number or money custom fields: ``{"min": .., "max": ..}``, either end open;
- multi-choice custom fields match when they hold any of the values.

A key the object does not have (leads have no postal code or head count) is not tested
for that object. Empty criteria match everything (a "World" root).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

TEXT_KEYS = ("country", "region", "industry")
OBJECT_FIELDS = {
    "account": {"country", "region", "industry", "postal_code", "employees"},
    "lead": {"country", "region", "industry"},
}
CUSTOM_PREFIX = "custom."
MAX_VALUES = 1000


class CriteriaError(ValueError):
    """Bad criteria: ``problems`` maps a criteria key to a message in the user's language."""

    def __init__(self, problems):
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def _fold(value):
    return str(value).strip().casefold()


def _postal(value):
    return str(value).replace(" ", "").upper()


def _number(value):
    if isinstance(value, bool):
        raise InvalidOperation
    return Decimal(str(value))


def _custom_definitions():
    """{key: type} of the custom fields of accounts and leads (a key on either counts)."""
    from crm_core.customfields.registry import definitions

    found = {}
    for object_name in OBJECT_FIELDS:
        for spec in definitions(object_name):
            found.setdefault(spec.key, spec.type)
    return found


def _range(raw, key, problems):
    if not isinstance(raw, dict) or not set(raw) <= {"min", "max"} or not raw:
        problems[key] = _l('Give a range as {"min": .., "max": ..} (either end may be left out).')
        return None
    out = {}
    for end in ("min", "max"):
        if raw.get(end) is None:
            continue
        try:
            out[end] = _number(raw[end])
        except (InvalidOperation, ValueError, TypeError):
            problems[key] = _l("The ends of a range must be numbers.")
            return None
    if "min" in out and "max" in out and out["min"] > out["max"]:
        problems[key] = _l("The lower end of the range is above the upper end.")
        return None
    return {end: float(v) if v != v.to_integral_value() else int(v) for end, v in out.items()}


def _values(raw, key, problems):
    if not isinstance(raw, list) or not raw:
        problems[key] = _l("Give a non-empty list of values.")
        return None
    if len(raw) > MAX_VALUES:
        problems[key] = _l("At most %(count)s values.", count=MAX_VALUES)
        return None
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip() for v in raw):
        problems[key] = _l("Every value must be a non-empty text.")
        return None
    return [str(v).strip() for v in raw]


def validate(raw):
    """Clean criteria (a dict or its JSON text) or raise ``CriteriaError``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            raise CriteriaError({"criteria": _l("The criteria are not valid JSON.")})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CriteriaError({"criteria": _l("The criteria must be an object of field: values.")})
    problems, clean = {}, {}
    custom = None
    for key, value in raw.items():
        if key in TEXT_KEYS:
            values = _values(value, key, problems)
            if values is not None:
                clean[key] = sorted({v.upper() for v in values}) if key == "country" else values
        elif key == "postal_code":
            clean_ranges = []
            if not isinstance(value, list) or not value:
                problems[key] = _l("Give a list of postal codes or [from, to] ranges.")
                continue
            for item in value:
                if isinstance(item, (str, int)) and not isinstance(item, bool) and str(item).strip():
                    clean_ranges.append([_postal(item), _postal(item)])
                elif (isinstance(item, list) and len(item) == 2
                      and all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()
                              for v in item)):
                    low, high = _postal(item[0]), _postal(item[1])
                    if low > high:
                        problems[key] = _l("The lower end of the range is above the upper end.")
                        break
                    clean_ranges.append([low, high])
                else:
                    problems[key] = _l("Give a list of postal codes or [from, to] ranges.")
                    break
            else:
                clean[key] = clean_ranges
        elif key == "employees":
            bounds = _range(value, key, problems)
            if bounds is not None:
                clean[key] = bounds
        elif key.startswith(CUSTOM_PREFIX):
            if custom is None:
                custom = _custom_definitions()
            field_type = custom.get(key[len(CUSTOM_PREFIX):])
            if field_type is None:
                problems[key] = _l("No custom field of accounts or leads has this key.")
            elif field_type in ("number", "money"):
                bounds = _range(value, key, problems)
                if bounds is not None:
                    clean[key] = bounds
            elif field_type in ("text", "choice", "multi_choice", "boolean"):
                values = _values(value, key, problems)
                if values is not None:
                    clean[key] = values
            else:
                problems[key] = _l("Territories cannot be decided by a field of this type.")
        else:
            problems[key] = _l("Unknown criterion: use country, region, postal_code, industry, "
                               "employees or custom.<key>.")
    if problems:
        raise CriteriaError(problems)
    return clean


# -- matching ------------------------------------------------------------------------------------

def _text_test(values, transform):
    wanted = frozenset(transform(v) for v in values)
    return lambda value: value is not None and transform(value) in wanted


def _range_test(bounds):
    # The ends are converted once: the test runs per record while realigning.
    low, high = (None if bounds.get(end) is None else _number(bounds[end]) for end in ("min", "max"))

    def test(value):
        if value is None or isinstance(value, bool):
            return False
        try:
            number = _number(value)
        except (InvalidOperation, ValueError, TypeError):
            return False
        return (low is None or number >= low) and (high is None or number <= high)
    return test


def _postal_test(ranges):
    def test(value):
        if value is None or not str(value).strip():
            return False
        code = _postal(value)
        return any(low <= code <= high for low, high in ranges)
    return test


def _custom_test(values):
    wanted = frozenset(_fold(v) for v in values)

    def test(value):
        if value is None:
            return False
        if isinstance(value, (list, tuple, set)):
            return any(_fold(v) in wanted for v in value)
        if isinstance(value, bool):
            return ("true" if value else "false") in wanted
        return _fold(value) in wanted
    return test


def compile_criteria(criteria, object_name):
    """``match(values) -> bool`` for records of ``object_name`` whose field values (API names;
    custom values under ``custom`` as a dict) are given. ``criteria`` must be clean."""
    available = OBJECT_FIELDS[object_name]
    tests = []
    for key, value in criteria.items():
        if key.startswith(CUSTOM_PREFIX):
            custom_key = key[len(CUSTOM_PREFIX):]
            test = _range_test(value) if isinstance(value, dict) else _custom_test(value)
            tests.append(lambda values, t=test, k=custom_key: t((values.get("custom") or {}).get(k)))
            continue
        if key not in available:
            continue  # a key the object does not have is not tested for it
        if key == "country":
            test = _text_test(value, lambda v: str(v).strip().upper())
        elif key in ("region", "industry"):
            test = _text_test(value, _fold)
        elif key == "postal_code":
            test = _postal_test(value)
        else:
            test = _range_test(value)
        tests.append(lambda values, t=test, k=key: t(values.get(k)))
    if not tests:
        return lambda values: True
    return lambda values: all(test(values) for test in tests)


def fields_of(criteria):
    """The record fields the criteria read (``custom.<key>`` for custom fields): a change
    to any other field cannot move a record."""
    return set(criteria)
