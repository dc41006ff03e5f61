"""marshmallow fields the API uses for the framework's own types."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from crm_core import money


class Amount(ma.fields.Decimal):
    """An exact amount as a JSON string ("1234.505"); numbers are accepted on input.

    At most four decimal places (what storage keeps); NaN and infinity are refused.
    """

    default_error_messages = {
        "invalid": _l("Enter a number such as 1234.50."),
        "special": _l("Enter a number such as 1234.50."),
        "places": _l("Use at most %(places)s decimal places.", places=money.SCALE),
        "range": _l("This amount is too large."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("as_string", True)
        super().__init__(allow_nan=False, **kwargs)

    def _validated(self, value):
        number = super()._validated(value)
        if number is None:
            return number
        if number.as_tuple().exponent < -money.SCALE and number != number.quantize(
                Decimal(1).scaleb(-money.SCALE)):
            raise self.make_error("places")
        try:
            money.to_units(number)
        except ValueError:
            raise self.make_error("range") from None
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        # Trailing zeros of storage are not part of the amount: 9.9000 -> "9.9", 5 -> "5".
        return format(Decimal(value).normalize(), "f")


class Currency(ma.fields.String):
    """An ISO 4217 code; lower case is accepted and returned upper case."""

    default_error_messages = {"invalid_currency": _l("Use a three-letter ISO 4217 currency code.")}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return money.check_currency(text)
        except ValueError:
            raise self.make_error("invalid_currency") from None


def register_fields(api):
    """Tell the OpenAPI document how these fields look on the wire."""
    api.register_field(Amount, "string", "decimal")
    api.register_field(Currency, "string", None)
