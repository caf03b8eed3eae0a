"""The one table that maps domain and application errors to HTTP problem responses."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.problems import problem
from app.api.strict import authorize_before_validation
from app.core import errors as app_errors
from app.core.logging import get_logger
from app.domain import errors as domain_errors

log = get_logger("app.http")

# A lost or unobtainable database connection (server restart, pg_terminate_backend, failover, PgBouncer
# dropping a client, a full pool, SQLite's busy timeout) is the server's transient trouble, not the client's:
# 503 with Retry-After, so a client retries instead of reporting a bug. The transaction was rolled back.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)
RETRY_AFTER_SECONDS = 2

STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (app_errors.ValidationFailed, 422),
    (app_errors.NotFound, 404),
    (app_errors.AuthenticationFailed, 401),
    (app_errors.PermissionDenied, 403),
    (app_errors.Conflict, 409),
    (app_errors.PayloadTooLarge, 413),
    (app_errors.RateLimited, 429),
    (app_errors.ServiceUnavailable, 503),
    (domain_errors.InvalidTransition, 409),
    (domain_errors.DomainValidationError, 422),
    (domain_errors.DomainError, 422),
)

_HTTP_TITLES = {404: "Not found", 405: "Method not allowed", 401: "Not authenticated", 413: "Payload too large"}


def status_for(exc: Exception) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def _field_from_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def _clean_message(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(app_errors.AppError)
    async def app_error(request: Request, exc: app_errors.AppError) -> JSONResponse:
        status = status_for(exc)
        headers = {}
        extra: dict[str, Any] = dict(exc.extra)
        if isinstance(exc, app_errors.ValidationFailed):
            extra["errors"] = [{"field": e.field, "message": e.message} for e in exc.errors]
        if isinstance(exc, app_errors.RateLimited):
            headers["Retry-After"] = str(exc.retry_after_seconds)
        if isinstance(exc, app_errors.AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
        return problem(status, exc.title, exc.detail, exc.slug, request.url.path, headers or None, extra=extra)

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(getattr(exc, "orig", None) or exc).__name__)
        return problem(
            503,
            "Service unavailable",
            "the database connection was lost or is unavailable; retry shortly "
            "(a retry with the same Idempotency-Key never posts twice)",
            "database-unavailable",
            request.url.path,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for cls in DATABASE_UNAVAILABLE:
        app.add_exception_handler(cls, database_unavailable)

    @app.exception_handler(domain_errors.DomainError)
    async def domain_error(request: Request, exc: domain_errors.DomainError) -> JSONResponse:
        status = status_for(exc)
        extra: dict[str, Any] = {
            k: v for k, v in vars(exc).items() if k not in {"message", "field"} and not k.startswith("_")
        }
        if isinstance(exc, domain_errors.DomainValidationError):
            extra["errors"] = [{"field": exc.field, "message": exc.message}]
        title = getattr(exc, "title", "Request violates a rule")
        slug = getattr(exc, "slug", "domain-rule")
        return problem(status, title, exc.message, slug, request.url.path, extra=extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        try:
            await authorize_before_validation(request)
        except app_errors.AppError as denied:
            return await app_error(request, denied)
        errors = [
            {
                "field": "body" if e.get("type") == "json_invalid" else _field_from_loc(tuple(e.get("loc", ()))),
                "message": _clean_message(str(e.get("msg"))),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(
            422, "Validation failed", detail, "validation-failed", request.url.path, extra={"errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = _HTTP_TITLES.get(exc.status_code, "Request failed")
        detail = str(exc.detail) if exc.detail else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, title, detail, title.lower().replace(" ", "-"), request.url.path, headers)
