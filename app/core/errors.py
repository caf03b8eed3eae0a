"""Application errors raised by services. They carry meaning, not HTTP codes: app/api/errors.py is the one
table that maps each class to a problem+json status."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class AppError(Exception):
    title = "Request failed"
    slug = "error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(AppError):
    title = "Not found"
    slug = "not-found"


class AuthenticationFailed(AppError):
    title = "Not authenticated"
    slug = "unauthenticated"


class PermissionDenied(AppError):
    title = "Forbidden"
    slug = "forbidden"


class ValidationFailed(AppError):
    title = "Validation failed"
    slug = "validation-failed"

    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)

    @classmethod
    def single(cls, field: str, message: str) -> "ValidationFailed":
        return cls([FieldError(field, message)])


class Conflict(AppError):
    title = "Conflict"
    slug = "conflict"


class DuplicateValue(Conflict):
    """A unique value (code, username, national ID, external ID) already exists. `existing_id` is named only when
    the caller may see that object (None otherwise): a 409 must not reveal another branch's ids."""

    title = "Duplicate value"
    slug = "duplicate"

    def __init__(self, field: str, existing_id: str | None, what: str) -> None:
        super().__init__(f"a {what} with this {field} already exists", field=field, existing_id=existing_id or None)


class VersionMismatch(Conflict):
    title = "Version mismatch"
    slug = "version-mismatch"


class RequestInFlight(Conflict):
    title = "Request in flight"
    slug = "idempotency-in-flight"


class PayloadTooLarge(AppError):
    title = "Payload too large"
    slug = "payload-too-large"


class RateLimited(AppError):
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class ServiceUnavailable(AppError):
    title = "Service unavailable"
    slug = "unavailable"
