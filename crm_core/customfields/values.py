"""Custom values in, custom values out.

In: ``validate(object, raw)`` turns what an API client, a form or an import file gives
(JSON values or text) into storage form, with a translated message per field; the
converters are compiled once per object (``compile_validator``) so a bulk import pays
one dict lookup and one function call per value. Out: ``public`` for the API,
``export_values`` for files, ``display`` for pages.

Storage form: text, choice -> str; number, money -> Decimal (a JSON number); date ->
"YYYY-MM-DD"; multi_choice -> sorted list of str; boolean -> bool. No value, no key.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from crm_core.customfields.registry import by_key, definitions

TEXT_MAX = 1000
NUMBER_LIMIT = Decimal(10) ** 15
TRUE = frozenset(["true", "1", "yes", "y", "on"])
FALSE = frozenset(["false", "0", "no", "n", "off"])


class Invalid(ValueError):
    """A value a field cannot hold; ``message`` says why in the user's language."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _text(spec):
    def convert(raw):
        if not isinstance(raw, str):
            raise Invalid(_l("This value is not valid."))
        raw = raw.strip()
        if len(raw) > TEXT_MAX:
            raise Invalid(lazy_ngettext("Enter at most %(num)s character.", "Enter at most %(num)s characters.",
                                        TEXT_MAX))
        return raw or None
    return convert


def _decimal(raw):
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise Invalid(_l("Enter a number such as 1234.50."))
    if isinstance(raw, str):
        raw = raw.strip().replace(" ", "").replace(",", ".")
        if not raw:
            return None
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        raise Invalid(_l("Enter a number such as 1234.50.")) from None
    if not number.is_finite() or abs(number) >= NUMBER_LIMIT:
        raise Invalid(_l("Enter a number such as 1234.50."))
    return number


def _number(spec):
    def convert(raw):
        number = _decimal(raw)
        if number is None:
            return None
        # Six places are what a JSON number keeps exactly at this magnitude.
        return number.quantize(Decimal("0.000001"), ROUND_HALF_UP).normalize() + 0
    return convert


def _money(spec):
    import re

    from babel.numbers import get_currency_precision

    digits = get_currency_precision(spec.currency) if spec.currency else 2
    places = Decimal(1).scaleb(-digits)
    # The common case of a file (plain digits, at most the currency's decimals) skips Decimal.
    plain = re.compile(r"^-?\d{1,13}(\.\d{0,%d})?$" % digits if digits else r"^-?\d{1,13}$")

    def convert(raw):
        if raw.__class__ is str and plain.match(raw):
            return Decimal(raw).quantize(places)
        number = _decimal(raw)
        if number is None:
            return None
        if number != number.quantize(places, ROUND_HALF_UP):
            raise Invalid(_l("Use at most %(places)s decimal places.", places=-places.as_tuple().exponent))
        return number.quantize(places)
    return convert


def _date(spec):
    def convert(raw):
        if isinstance(raw, dt.datetime):
            raw = raw.date()
        if isinstance(raw, dt.date):
            return raw.isoformat()
        if not isinstance(raw, str):
            raise Invalid(_l("Enter a date such as 2026-12-31."))
        raw = raw.strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw[:10] if len(raw) > 10 and raw[10] in "T " else raw).isoformat()
        except ValueError:
            raise Invalid(_l("Enter a date such as 2026-12-31.")) from None
    return convert


def _choice(spec):
    allowed = frozenset(spec.choice_values)
    message = _l("Choose one of: %(choices)s.", choices=", ".join(spec.choice_values))

    def convert(raw):
        if not isinstance(raw, str):
            raise Invalid(message)
        raw = raw.strip()
        if not raw:
            return None
        if raw not in allowed:
            raise Invalid(message)
        return raw
    return convert


def _multi_choice(spec):
    allowed = frozenset(spec.choice_values)
    message = _l("Choose among: %(choices)s.", choices=", ".join(spec.choice_values))

    def convert(raw):
        if isinstance(raw, str):  # a form or a file: "tennis; golf"
            raw = raw.replace(",", ";").split(";")
        if not isinstance(raw, (list, tuple)) or not all(isinstance(v, str) for v in raw):
            raise Invalid(message)
        chosen = sorted({v.strip() for v in raw if v.strip()})
        if set(chosen) - allowed:
            raise Invalid(message)
        return chosen or None
    return convert


def _boolean(spec):
    def convert(raw):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            word = raw.strip().lower()
            if not word:
                return None
            if word in TRUE:
                return True
            if word in FALSE:
                return False
        raise Invalid(_l("Enter yes or no."))
    return convert


CONVERTERS = {"text": _text, "number": _number, "money": _money, "date": _date, "choice": _choice,
              "multi_choice": _multi_choice, "boolean": _boolean}


def converter(spec):
    """raw value -> storage value (None: no value); raises Invalid."""
    return CONVERTERS[spec.type](spec)


def compile_validator(object_name, partial=False):
    """A fast ``validate`` for many rows of one object (an import): the definitions are
    read and the converters built once. The returned function takes ``raw`` ({key: value})
    and returns ``(values, errors)`` like ``validate``."""
    specs = by_key(object_name)
    converters = {key: converter(spec) for key, spec in specs.items()}
    required = [key for key, spec in specs.items() if spec.required]
    unknown = _l("No such field.")
    missing = _l("This field is required.")

    def validate_row(raw):
        values, errors = {}, {}
        for key, value in (raw or {}).items():
            convert = converters.get(key)
            if convert is None:
                errors[f"custom.{key}"] = unknown
                continue
            if value is None:
                values[key] = None
                continue
            try:
                values[key] = convert(value)
            except Invalid as problem:
                errors[f"custom.{key}"] = problem.message
        for key in required:
            if values.get(key) is None and (not partial or key in values):
                errors.setdefault(f"custom.{key}", missing)
        return values, errors
    return validate_row


def compile_columns(object_name, keys, partial=False):
    """``compile_validator`` for a batch of rows given column by column (an import): returns
    ``check(columns, count)`` -> ``(values, errors)``, ``columns`` {key: [raw value or None]}
    for the ``keys`` a file has, ``values`` {key: [storage value or None]} and ``errors``
    {row index: ("custom.<key>", message)}: each row's first problem, in ``validate``'s order."""
    specs = by_key(object_name)
    converters = {key: converter(specs[key]) for key in keys}
    required = [key for key, spec in specs.items() if spec.required]
    missing = _l("This field is required.")

    def check(columns, count):
        values, errors = {}, {}
        for key, column in columns.items():
            convert = converters[key]
            try:
                values[key] = [None if value is None else convert(value) for value in column]
                continue
            except Invalid:
                pass
            converted = []
            for index, value in enumerate(column):
                try:
                    converted.append(None if value is None else convert(value))
                except Invalid as problem:
                    converted.append(None)
                    errors.setdefault(index, (f"custom.{key}", problem.message))
            values[key] = converted
        for key in required:
            column = values.get(key)
            if column is None:
                if not partial:
                    for index in range(count):
                        errors.setdefault(index, (f"custom.{key}", missing))
                continue
            for index, value in enumerate(column):
                if value is None:
                    errors.setdefault(index, (f"custom.{key}", missing))
        return values, errors
    return check


def validate(object_name, raw, partial=False):
    """``(values, errors)``: ``values`` {key: storage value or None (to clear)} for the
    keys given; ``errors`` {"custom.<key>": translated message}. ``partial`` (a change):
    required fields only need a value when given; otherwise every required field must
    have one."""
    return compile_validator(object_name, partial)(raw)


def merged(stored, values):
    """The record's custom values after applying ``values`` (None removes a key)."""
    out = dict(stored or {})
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def check(object_name, values, problems, record=None):
    """For services: validate ``values["custom"]`` (if given) into the record's full
    storage dict, each error added to ``problems`` under "custom.<key>". On a new record
    (``record`` None) required fields must be given."""
    raw = values.get("custom")
    if raw is None and record is not None:
        values.pop("custom", None)
        return
    if raw is not None and not isinstance(raw, dict):
        problems.add("custom", _l("This value is not valid."))
        return
    checked, errors = validate(object_name, raw or {}, partial=record is not None)
    for field, message in errors.items():
        problems.add(field, message)
    values["custom"] = merged(record.custom if record is not None else {}, checked)


# -- out ---------------------------------------------------------------------------------------------

def _public_value(spec, value):
    if value is None:
        return None
    if spec.type == "money":
        return _money_text(spec, value)
    if spec.type == "number":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def _money_text(spec, value):
    from babel.numbers import get_currency_precision

    places = get_currency_precision(spec.currency) if spec.currency else 2
    return format(Decimal(value).quantize(Decimal(1).scaleb(-places)), "f")


def public(object_name, stored, visible=None):
    """The API's ``custom`` object: every live field (null when empty), money as a string
    decimal; only the keys in ``visible`` when given (field security)."""
    stored = stored or {}
    return {spec.key: _public_value(spec, stored.get(spec.key)) for spec in definitions(object_name)
            if visible is None or spec.key in visible}


def export_value(spec, value):
    """A stored value as an export cell holds it (multi-choice joined by "; ")."""
    if value is None:
        return None
    if spec.type == "multi_choice":
        return "; ".join(value)
    if spec.type == "money":
        return Decimal(_money_text(spec, value))
    if spec.type == "date":
        return dt.date.fromisoformat(value)
    return value


def export_values(object_name, stored, keys):
    """[cell values] of ``keys`` for one record's stored custom values (exports)."""
    specs = by_key(object_name)
    stored = stored or {}
    return [export_value(specs[key], stored.get(key)) for key in keys]


def display(spec, value):
    """A stored value as a page shows it, in the reader's language."""
    from flask_babel import gettext as _

    from crm_core.formatting import money as format_money

    if value is None or value == [] or value == "":
        return ""
    if spec.type == "boolean":
        return _("Yes") if value else _("No")
    if spec.type == "choice":
        return spec.choice_label(value)
    if spec.type == "multi_choice":
        return ", ".join(spec.choice_label(v) for v in value)
    if spec.type == "money":
        return format_money(Decimal(value), spec.currency) if spec.currency else _money_text(spec, value)
    return str(value)


def form_text(spec, value):
    """A stored value as a form input shows it."""
    if value is None:
        return ""
    if spec.type == "boolean":
        return "1" if value else ""
    if spec.type == "multi_choice":
        return list(value)
    if spec.type == "money":
        return _money_text(spec, value)
    return str(value)
