"""marshmallow's own validation messages, in the caller's language.

marshmallow formats its English messages before we see them; each known
template becomes a pattern, and a match is replaced by our translated message
with the same values. Anything unknown is left as it is.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

def _nl(singular, plural, count_name):
    """A plural message whose form follows the number captured as ``count_name``."""
    return (singular, plural, count_name)


# (marshmallow's template with {placeholders}, our translatable message with %(placeholders)s)
TEMPLATES = [
    ("Missing data for required field.", _l("This field is required.")),
    ("Field may not be null.", _l("This field cannot be empty.")),
    ("Unknown field.", _l("Unknown field.")),
    ("Invalid input type.", _l("Send a JSON object with named fields.")),
    ("Invalid value.", _l("This value is not valid.")),
    ("Invalid input.", _l("This value is not valid.")),
    ("Invalid type.", _l("This value has the wrong type.")),
    ("Not a valid string.", _l("Enter text.")),
    ("Not a valid utf-8 string.", _l("Enter text.")),
    ("Not a valid integer.", _l("Enter a whole number.")),
    ("Not a valid number.", _l("Enter a number.")),
    ("Number too large.", _l("This number is too large.")),
    ("Special numeric values (nan or infinity) are not permitted.", _l("Enter a number.")),
    ("Not a valid boolean.", _l("Send true or false.")),
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
    ("Not a valid mapping type.", _l("Send a JSON object with named fields.")),
    ("String does not match expected pattern.", _l("This value is not in the expected format.")),
    ("Must be greater than or equal to {min}.", _l("Enter %(min)s or more.")),
    ("Must be greater than {min}.", _l("Enter more than %(min)s.")),
    ("Must be less than or equal to {max}.", _l("Enter %(max)s or less.")),
    ("Must be less than {max}.", _l("Enter less than %(max)s.")),
    ("Must be greater than or equal to {min} and less than or equal to {max}.",
     _l("Enter a value from %(min)s to %(max)s.")),
    ("Shorter than minimum length {num}.",
     _nl("Enter at least %(num)s character.", "Enter at least %(num)s characters.", "num")),
    ("Longer than maximum length {num}.",
     _nl("Enter at most %(num)s character.", "Enter at most %(num)s characters.", "num")),
    ("Length must be between {min} and {num}.",
     _nl("Enter from %(min)s to %(num)s character.", "Enter from %(min)s to %(num)s characters.", "num")),
    ("Length must be {num}.",
     _nl("Enter exactly %(num)s character.", "Enter exactly %(num)s characters.", "num")),
    ("Must be one of: {choices}.", _l("Choose one of: %(choices)s.")),
    ("Must be equal to {other}.", _l("This value must be %(other)s.")),
]


def _pattern(template):
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(re.escape(part) if index % 2 == 0 else f"(?P<{part}>.+?)"
                    for index, part in enumerate(parts))
    return re.compile(f"^{regex}$")


# Longest first: "Must be ... {min} and ... {max}." before "Must be ... {min}.".
_COMPILED = [(_pattern(template), message)
             for template, message in sorted(TEMPLATES, key=lambda item: -len(item[0]))]


def _render(message, values):
    if isinstance(message, tuple):
        singular, plural, count_name = message
        count = int(values[count_name]) if values[count_name].lstrip("-").isdigit() else 2
        others = {key: value for key, value in values.items() if key != "num"}
        return ngettext(singular, plural, count, **others)  # ngettext fills %(num)s itself
    return str(message) % values if values else str(message)


def translate_message(text):
    if not isinstance(text, str):
        return str(text)
    for pattern, message in _COMPILED:
        match = pattern.match(text)
        if match:
            return _render(message, match.groupdict())
    return text


def translate_fields(fields):
    """Translate every message in a (nested) marshmallow error dict."""
    if isinstance(fields, dict):
        return {key: translate_fields(value) for key, value in fields.items()}
    if isinstance(fields, (list, tuple)):
        return [translate_fields(value) for value in fields]
    return translate_message(fields)
