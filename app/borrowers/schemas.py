"""Borrower requests and responses. Inputs are normalised here (trimmed names, compact national IDs and phone
numbers); rules that need the database or the business date (uniqueness, age) live in the service."""

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from app.core.schemas import StrictModel

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID_SEPARATORS = re.compile(r"[\s\-./]")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()]")
_NATIONAL_ID = re.compile(r"^[A-Z0-9]{4,32}$")
_PHONE = re.compile(r"^\+?[0-9]{7,15}$")
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


def compact_national_id(value: str) -> str:
    """The canonical form stored and compared: upper case, separators (space - . /) removed."""
    return _ID_SEPARATORS.sub("", value).upper()


def _national_id(value: str) -> str:
    compact = compact_national_id(value)
    if not _NATIONAL_ID.fullmatch(compact):
        raise ValueError("must be 4-32 letters and digits (spaces, '-', '.' and '/' are ignored)")
    return compact


def _phone(value: str) -> str:
    compact = _PHONE_SEPARATORS.sub("", value)
    if not _PHONE.fullmatch(compact):
        raise ValueError(
            "must be a phone number: an optional '+' and 7-15 digits (spaces, '-', '.', '(' and ')' are ignored)"
        )
    return compact


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _iso_date(value: object) -> object:
    """Dates are ISO YYYY-MM-DD strings (CONTRACT), not timestamps or datetimes."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date in the form YYYY-MM-DD")


Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_printable)
]
NationalId = Annotated[
    str,
    StringConstraints(max_length=64),
    AfterValidator(_national_id),
    Field(description="Stored upper case without separators; unique across all borrowers"),
]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(_phone), Field(examples=["+254 712 345678"])]
Email = Annotated[EmailStr, BeforeValidator(_strip)]
ExternalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_printable),
    Field(description="Your system's id for this borrower; unique across all borrowers"),
]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
BranchId = Annotated[str, Field(min_length=1, max_length=36, pattern=NO_CONTROL_CHARACTERS)]


class BorrowerCreate(StrictModel):
    branch_id: BranchId
    first_name: Name
    last_name: Name
    date_of_birth: IsoDate | None = Field(
        default=None, description="Not after the business date; the borrower must have reached the minimum age"
    )
    national_id: NationalId | None = None
    email: Email | None = None
    phone: Phone | None = None
    external_id: ExternalId | None = None


class BorrowerUpdate(StrictModel):
    """Only the fields sent change; `null` clears an optional field. Moving to another branch (`branch_id`) is
    for managers and administrators."""

    branch_id: BranchId | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: IsoDate | None = None
    national_id: NationalId | None = None
    email: Email | None = None
    phone: Phone | None = None
    external_id: ExternalId | None = None

    @field_validator("branch_id", "first_name", "last_name")
    @classmethod
    def _required_not_null(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("may not be null")
        return value


class BorrowerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    branch_id: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    national_id: str | None
    email: str | None
    phone: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime
