"""Money: an exact Decimal amount that always travels with its ISO 4217 currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies
from flask_babel import lazy_gettext as _l

from crm_core.errors import FieldValueError

SCALE = 4  # digits kept after the decimal point in storage
_FACTOR = Decimal(10) ** SCALE
_LIMIT = 2**63 - 1
_CURRENCIES = frozenset(list_currencies())


def check_currency(code, name="currency"):
    """Return the upper-case code, or raise FieldValueError for anything not in ISO 4217."""
    if not isinstance(code, str) or code.upper() not in _CURRENCIES:
        raise FieldValueError(name, _l("Use a three-letter ISO 4217 currency code."))
    return code.upper()


def to_decimal(value, name="amount"):
    if isinstance(value, float):
        # A float has already lost the exact value the user typed: a programming error.
        raise TypeError(f"{name}: pass a Decimal or a string, not a float")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise FieldValueError(name, _l("Enter a number such as 1234.50.")) from None
    if not number.is_finite():
        raise FieldValueError(name, _l("Enter a number such as 1234.50."))
    return number


def to_units(value, name="amount"):
    """Decimal -> stored integer; refuses values that would be rounded or overflow."""
    number = to_decimal(value, name)
    scaled = number * _FACTOR
    if scaled != scaled.to_integral_value():
        raise FieldValueError(name, _l("Use at most %(places)s decimal places.", places=SCALE))
    units = int(scaled)
    if abs(units) > _LIMIT:
        raise FieldValueError(name, _l("This amount is too large."))
    return units


def from_units(units):
    return Decimal(units).scaleb(-SCALE) if not isinstance(units, Decimal) else units.scaleb(-SCALE)


def minor_digits(currency):
    """Digits after the decimal point in everyday use: 2 for EUR, 0 for VND and JPY."""
    return get_currency_precision(check_currency(currency))


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self):
        object.__setattr__(self, "amount", to_decimal(self.amount))
        object.__setattr__(self, "currency", check_currency(self.currency))

    def rounded(self):
        """The amount rounded half-up to the currency's minor unit."""
        step = Decimal(1).scaleb(-minor_digits(self.currency))
        return Money(self.amount.quantize(step, rounding=ROUND_HALF_UP), self.currency)

    def __add__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")  # a programming error
        return Money(self.amount + other.amount, self.currency)

    def __str__(self):
        return f"{self.amount} {self.currency}"
