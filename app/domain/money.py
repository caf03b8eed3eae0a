"""Money: Decimal amounts bound to an ISO 4217 currency and its minor units.

Storage is integer minor units (see ARCHITECTURE "Money in storage"); every rounding names its
mode and place at the call site.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from app.domain.errors import DomainValidationError

__all__ = [
    "CURRENCIES",
    "MAX_MINOR_UNITS",
    "MAX_MONEY_MAJOR_UNITS",
    "Currency",
    "currency",
    "format_money",
    "from_minor",
    "parse_money",
    "quantize",
    "to_minor",
]

# Minor units fit a signed 64-bit column (BIGINT) in storage.
MAX_MINOR_UNITS = 2**63 - 1
# CONTRACT Money: at most 12 integer digits. The cap keeps every sum the ledger and reports take (thousands of
# such amounts) inside BIGINT/SQLite's 64-bit integers.
MAX_MONEY_MAJOR_UNITS = 999_999_999_999
_MAX_INPUT_CHARS = 40
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alphabetic code and number of minor-unit decimals (USD 2, JPY 0, KWD 3)."""

    code: str
    minor_units: int

    def __post_init__(self) -> None:
        if len(self.code) != 3 or not self.code.isascii() or not self.code.isalpha() or not self.code.isupper():
            raise DomainValidationError("currency", f"{self.code!r} is not an ISO 4217 alphabetic code")
        if not 0 <= self.minor_units <= 4:
            raise DomainValidationError("currency", f"minor units must be 0-4, got {self.minor_units}")

    @property
    def exponent(self) -> Decimal:
        """The quantum of one minor unit, e.g. Decimal("0.01") for USD, Decimal("1") for JPY."""
        return _EXPONENTS[self.minor_units]


_EXPONENTS = tuple(Decimal(1).scaleb(-n) for n in range(5))

# ISO 4217 list one (SIX, current edition): code -> minor units.
_ISO_4217: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BRL": 2, "BWP": 2,
    "CAD": 2, "CHF": 2, "CLF": 4, "CLP": 0, "CNY": 2, "COP": 2, "CZK": 2, "DJF": 0, "DKK": 2,
    "EGP": 2, "ETB": 2, "EUR": 2, "GBP": 2, "GHS": 2, "GNF": 0, "HKD": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KES": 2, "KMF": 0, "KRW": 0,
    "KWD": 3, "LKR": 2, "LYD": 3, "MAD": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NGN": 2,
    "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PEN": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0,
    "QAR": 2, "RON": 2, "RWF": 0, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2,
    "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UYW": 4, "VND": 0, "VUV": 0,
    "XAF": 0, "XOF": 0, "XPF": 0, "ZAR": 2, "ZMW": 2,
}  # fmt: skip

CURRENCIES: dict[str, Currency] = {code: Currency(code, units) for code, units in _ISO_4217.items()}


def currency(code: str) -> Currency:
    """The ISO 4217 currency for `code` (case-sensitive, upper case); unknown codes are a validation error."""
    found = CURRENCIES.get(code) if isinstance(code, str) else None
    if found is None:
        raise DomainValidationError("currency", f"unknown or unsupported ISO 4217 currency code {code!r}")
    return found


def quantize(amount: Decimal, cur: Currency, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round `amount` to the currency's minor unit with the named rounding mode."""
    return amount.quantize(cur.exponent, rounding=rounding)


def to_minor(amount: Decimal, cur: Currency) -> int:
    """Exact conversion to integer minor units; raises if `amount` has more decimals than the currency allows."""
    if not amount.is_finite():
        raise DomainValidationError("amount", f"{amount} is not a finite amount")
    scaled = amount.scaleb(cur.minor_units)
    units = int(scaled)
    if scaled != units:
        raise DomainValidationError(
            "amount", f"{amount} has more than {cur.minor_units} decimal places allowed for {cur.code}"
        )
    return units


def from_minor(units: int, cur: Currency) -> Decimal:
    """Integer minor units to a Decimal with exactly `minor_units` decimals (1234 -> Decimal("12.34") in USD)."""
    return Decimal(units).scaleb(-cur.minor_units)


def format_money(amount: Decimal, cur: Currency) -> str:
    """Plain decimal string with exactly the currency's minor units ("1234.50", "1235" for JPY); never rounds."""
    units = to_minor(amount, cur)
    return f"{from_minor(units, cur):f}"


def format_minor(units: int, cur: Currency) -> str:
    """Integer minor units straight to the API's decimal string (the hot path of every response: a 520-row
    schedule formats 6,760 amounts, most of them recurring — zeros, the installment amount — hence the cache)."""
    return _format_minor(units, cur.minor_units)


@lru_cache(maxsize=8192)
def _format_minor(units: int, minor_units: int) -> str:
    if minor_units == 0:
        return str(units)
    digits = str(-units if units < 0 else units).rjust(minor_units + 1, "0")
    return f"{'-' if units < 0 else ''}{digits[:-minor_units]}.{digits[-minor_units:]}"


def _invalid(field: str, message: str) -> DomainValidationError:
    return DomainValidationError(field, message)


def parse_money(
    value: object,
    cur: Currency,
    field: str,
    *,
    allow_negative: bool = False,
    positive: bool = False,
) -> Decimal:
    """Parse an input amount: an int or a plain decimal string (`^-?\\d+(\\.\\d+)?$`), never a float.

    Rejected with DomainValidationError(field=...): floats, bools, exponents, NaN/Infinity, non-numeric
    strings, more decimal places than the currency allows (textually: "1.500" is refused for USD),
    negatives unless `allow_negative`, zero when `positive`, and amounts that do not fit BIGINT minor units.
    Returns the amount with exactly the currency's minor units.
    """
    amount = _to_decimal(value, cur, field)
    if amount.is_signed() and amount != 0 and not allow_negative:
        raise _invalid(field, "must not be negative")
    if positive and amount <= 0:
        raise _invalid(field, "must be greater than zero")
    if abs(amount) > MAX_MONEY_MAJOR_UNITS + 1 - cur.exponent:
        raise _invalid(field, f"at most 12 integer digits (below {MAX_MONEY_MAJOR_UNITS + 1:,})")
    result = quantize(amount, cur)
    return result.copy_abs() if result == 0 else result


def _to_decimal(value: object, cur: Currency, field: str) -> Decimal:
    if isinstance(value, bool):
        raise _invalid(field, "must be a decimal string or an integer, not a boolean")
    if isinstance(value, int):
        if abs(value) > MAX_MINOR_UNITS:
            raise _invalid(field, "is too large")
        return Decimal(value)
    if isinstance(value, float):
        raise _invalid(field, 'must be a decimal string such as "1234.50" or an integer, not a floating-point number')
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _invalid(field, "must be a finite amount (NaN and Infinity are not money)")
        text = f"{value:f}"
    elif isinstance(value, str):
        text = value
    else:
        raise _invalid(field, f"must be a decimal string or an integer, not {type(value).__name__}")
    return _parse_text(text, cur, field)


def _parse_text(text: str, cur: Currency, field: str) -> Decimal:
    if len(text) > _MAX_INPUT_CHARS:
        raise _invalid(field, "is too long to be an amount")
    lowered = text.strip().lower()
    if lowered.lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
        raise _invalid(field, "must be a finite amount (NaN and Infinity are not money)")
    if "e" in lowered:
        raise _invalid(field, 'must be a plain decimal string, exponent notation such as "1e5" is not accepted')
    body = text[1:] if text.startswith("-") else text
    whole, dot, fraction = body.partition(".")
    if not whole or not set(whole) <= _DIGITS or (dot and (not fraction or not set(fraction) <= _DIGITS)):
        raise _invalid(field, f'{text!r} is not a decimal amount (expected e.g. "1234.50")')
    if len(fraction) > cur.minor_units:
        raise _invalid(field, f"has {len(fraction)} decimal places; {cur.code} allows at most {cur.minor_units}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # unreachable after the checks above, kept as a guard
        raise _invalid(field, f"{text!r} is not a decimal amount") from exc
