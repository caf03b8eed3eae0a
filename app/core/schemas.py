"""Pydantic building blocks shared by every feature's schemas: money and rate inputs, list envelopes."""

import base64
import binascii
import re
import uuid
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, WithJsonSchema, field_validator

from app.core.errors import ValidationFailed
from app.domain.money import MAX_MONEY_MAJOR_UNITS, currency, format_minor

DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"
# ASCII digits only: Python's \d also matches full-width and Arabic-Indic digits, which Decimal() accepts.
_DECIMAL_RE = re.compile(DECIMAL_PATTERN, re.ASCII)
MAX_DECIMAL_DIGITS = 30
MONEY_LIMIT = Decimal(MAX_MONEY_MAJOR_UNITS + 1)


def parse_money_input(value: object) -> Decimal:
    """Money: exact decimal input (see parse_decimal_input) of at most 12 integer digits (CONTRACT Money), checked
    before anything else runs, so a dry run and the console refuse it as the API does."""
    amount = parse_decimal_input(value)
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError(f"at most 12 integer digits (below {MONEY_LIMIT:,})")
    return amount


def parse_decimal_input(value: object) -> Decimal:
    """Exact decimal input: a plain decimal string or a JSON integer. JSON numbers with a fraction are
    refused because a float has already lost exactness before we see it."""
    if isinstance(value, bool):
        raise ValueError('expected a decimal string such as "1234.50" or an integer, got a boolean')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError('send amounts as decimal strings such as "1234.50", not JSON numbers with a fraction')
    if isinstance(value, Decimal) and value.is_finite():
        return value
    if isinstance(value, str):
        if len(value) <= MAX_DECIMAL_DIGITS + 2 and _DECIMAL_RE.fullmatch(value):
            return Decimal(value)
        raise ValueError(f"{value[:40]!r} is not a plain decimal string (digits, optional '.', no exponent)")
    raise ValueError('expected a decimal string such as "1234.50" or an integer')


_DECIMAL_SCHEMA = {"anyOf": [{"type": "string", "pattern": DECIMAL_PATTERN}, {"type": "integer"}]}
_MONEY_SCHEMA = {
    **_DECIMAL_SCHEMA,
    "description": "Decimal string or integer; at most 12 integer digits and the currency's minor units",
}

def _decimal_text(value: Decimal) -> str:
    return f"{value:f}"


_AS_TEXT = PlainSerializer(_decimal_text, return_type=str, when_used="json")

MoneyIn = Annotated[Decimal, PlainValidator(parse_money_input), _AS_TEXT, WithJsonSchema(_MONEY_SCHEMA)]
"""Money in a request: exact decimal; the currency's minor units are checked by the service."""

RateIn = Annotated[Decimal, PlainValidator(parse_decimal_input), _AS_TEXT, WithJsonSchema(_DECIMAL_SCHEMA)]
"""A nominal annual rate in percent ("7.5" = 7.5 %)."""

MoneyOut = Annotated[str, WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN})]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped; no text may carry a NUL byte
    (PostgreSQL refuses it in text, so it would otherwise surface as a server error)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL byte")
        return value


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        return str(uuid.UUID(raw))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed.single("cursor", "not a cursor returned by this API") from exc


def money_out(minor_units: int, currency_code: str) -> str:
    """Minor units as the decimal string the API speaks ("1234.50" for USD, "1235" for JPY)."""
    return format_minor(minor_units, currency(currency_code))
