"""FastAPI application factory. `app.main:app` is what uvicorn/gunicorn serve."""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.api.docs import mount_docs
from app.api.errors import register_error_handlers
from app.api.middleware import RateLimitMiddleware, RequestContextMiddleware
from app.api.problems import PROBLEM_SCHEMA, document_problems
from app.api.routes import include_routers
from app.api.strict import BodyLimitMiddleware, strict_request
from app.console.session import caller_identifier
from app.core.config import ConfigurationError, Settings, get_settings
from app.core.logging import configure_logging, get_logger
from app.core.ratelimit import RateLimiter
from app.database import Database

log = get_logger("app.main")

DESCRIPTION = """Loan lifecycle backend: price, originate, disburse, service, collect and close loans, with a
double-entry ledger behind every cent. Money is exchanged as decimal strings in the currency's minor units;
errors are RFC 9457 problem+json. Sign in at `POST /api/v1/auth/token` and use the bearer token."""


def _init_sentry(settings: Settings) -> None:
    if settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.init(
            dsn=settings.sentry_dsn, send_default_pii=False, environment=settings.env, traces_sample_rate=0.0
        )


def _warn_loudly(settings: Settings) -> None:
    for warning in settings.startup_warnings():
        # Straight to stderr as well as the log: it must be seen even with LOG_LEVEL=ERROR.
        print(f"\n*** WARNING: {warning} ***\n", file=sys.stderr, flush=True)
        log.warning("insecure_configuration", problem=warning)


def _document_problems(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_safe_to_start()
    configure_logging(settings.log_level, settings.log_format)
    _warn_loudly(settings)
    _init_sentry(settings)
    db = Database(settings.database_url, settings.database_pool_size)
    read_db = Database(settings.database_read_url, settings.database_pool_size) if settings.database_read_url else db

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        db.dispose()
        if read_db is not db:
            read_db.dispose()

    app = FastAPI(
        title="Loan lifecycle backend",
        version="0.1.0",
        description=DESCRIPTION,
        debug=settings.debug,
        lifespan=lifespan,
        responses={422: PROBLEM_SCHEMA, 401: PROBLEM_SCHEMA},
        dependencies=[Depends(strict_request)],
        openapi_url="/openapi.json" if settings.serve_docs else None,
        docs_url=None,  # served by mount_docs from our own static files, never a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.read_db = read_db
    app.state.limiter = RateLimiter(
        settings.redis_url,
        settings.rate_limit_per_minute,
        settings.login_failures_per_minute,
        settings.user_rate_limit_per_minute,
    )
    register_error_handlers(app)
    include_routers(app)
    _document_problems(app)
    if settings.serve_docs:
        mount_docs(app)
    app.add_middleware(RateLimitMiddleware, limiter=app.state.limiter, identify=caller_identifier(settings))
    app.add_middleware(BodyLimitMiddleware)
    if settings.origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"],
            expose_headers=["Location", "Idempotent-Replayed", "X-Request-ID", "ETag"],
        )
    app.add_middleware(RequestContextMiddleware)
    return app


def _app_or_exit() -> FastAPI:
    try:
        return create_app()
    except ConfigurationError as exc:
        raise SystemExit(f"loan-backend: {exc}") from None


app = _app_or_exit()
