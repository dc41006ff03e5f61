"""marshmallow's own validation messages, in the caller's language.

marshmallow formats its English messages before we see them; each known
template becomes a pattern, and a match is replaced by our translated message
with the same values. Anything unknown is left as it is.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

# (marshmallow's template with {placeholders}, our translatable message with %(placeholders)s)
TEMPLATES = [
    ("Missing data for required field.", _l("This field is required.")),
    ("Field may not be null.", _l("This field cannot be empty.")),
    ("Unknown field.", _l("Unknown field.")),
    ("Invalid input type.", _l("Send an object with named fields.")),
    ("Invalid value.", _l("This value is not valid.")),
    ("Invalid input.", _l("This value is not valid.")),
    ("Invalid type.", _l("This value has the wrong type.")),
    ("Not a valid string.", _l("Enter text.")),
    ("Not a valid utf-8 string.", _l("Enter text.")),
    ("Not a valid integer.", _l("Enter a whole number.")),
    ("Not a valid number.", _l("Enter a number.")),
    ("Number too large.", _l("This number is too large.")),
    ("Special numeric values (nan or infinity) are not permitted.", _l("Enter a number.")),
    ("Not a valid boolean.", _l("Enter true or false.")),
    ("Not a valid datetime.", _l("Enter a date and time such as 2026-11-22T09:30:00+07:00.")),
    ("Not a valid aware datetime.", _l("Enter a date and time with its offset from UTC, "
                                       "such as 2026-11-22T09:30:00+07:00.")),
    ("Not a valid naive datetime.", _l("Enter a date and time without an offset from UTC.")),
    ("Not a valid date.", _l("Enter a date such as 2026-11-22.")),
    ("Not a valid time.", _l("Enter a time such as 09:30.")),
    ("Not a valid period of time.", _l("Enter a duration.")),
    ("Not a valid email address.", _l("Enter an email address.")),
    ("Not a valid URL.", _l("Enter a web address.")),
    ("Not a valid UUID.", _l("This identifier is not valid.")),
    ("Not a valid list.", _l("Send a list.")),
    ("Not a valid tuple.", _l("Send a list.")),
    ("Not a valid mapping type.", _l("Send an object with named fields.")),
    ("String does not match expected pattern.", _l("This value does not have the expected form.")),
    ("Must be greater than or equal to {min}.", _l("Enter %(min)s or more.")),
    ("Must be greater than {min}.", _l("Enter more than %(min)s.")),
    ("Must be less than or equal to {max}.", _l("Enter %(max)s or less.")),
    ("Must be less than {max}.", _l("Enter less than %(max)s.")),
    ("Must be greater than or equal to {min} and less than or equal to {max}.",
     _l("Enter a value from %(min)s to %(max)s.")),
    ("Shorter than minimum length {min}.", _l("Enter at least %(min)s characters.")),
    ("Longer than maximum length {max}.", _l("Enter at most %(max)s characters.")),
    ("Length must be between {min} and {max}.", _l("Enter from %(min)s to %(max)s characters.")),
    ("Length must be {equal}.", _l("Enter exactly %(equal)s characters.")),
    ("Must be one of: {choices}.", _l("Choose one of: %(choices)s.")),
    ("Must be equal to {other}.", _l("Enter %(other)s.")),
]


def _pattern(template):
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
                    for index, part in enumerate(parts))
    return re.compile(f"^{regex}$")


# Longest first: "Must be ... {min} and ... {max}." before "Must be ... {min}.".
_COMPILED = [(_pattern(template), message)
             for template, message in sorted(TEMPLATES, key=lambda item: -len(item[0]))]


def translate_message(text):
    if not isinstance(text, str):
        return str(text)
    for pattern, message in _COMPILED:
        match = pattern.match(text)
        if match:
            return str(message) % match.groupdict() if match.groupdict() else str(message)
    return text


def translate_fields(fields):
    """Translate every message in a (nested) marshmallow error dict."""
    if isinstance(fields, dict):
        return {key: translate_fields(value) for key, value in fields.items()}
    if isinstance(fields, (list, tuple)):
        return [translate_fields(value) for value in fields]
    return translate_message(fields)
