"""Pure ASGI middleware (no BaseHTTPMiddleware, so contextvars and streaming behave):
request id + access log + metrics + a last-resort 500 guard, and the per-client rate limit."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem
from app.core.errors import RateLimited
from app.core.logging import get_logger
from app.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from app.core.ratelimit import RateLimiter
from app.core.request_context import set_request_id

log = get_logger("app.http")

REQUEST_ID_HEADER = b"x-request-id"
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})
UNLIMITED_PREFIXES = ("/console/static/", "/docs/static/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


STATIC_MOUNTS = ("/console/static", "/docs/static")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for mount in STATIC_MOUNTS:  # mounted static files set no route: one label per mount, not per file
        if scope["path"].startswith(mount + "/"):
            return mount + "/{path}"
    return "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = incoming if incoming and len(incoming) <= 128 and incoming.isprintable() else uuid.uuid4().hex
        set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode("latin-1"))]
            await send(message)

        try:
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"").lower():
                # No identifier or filter can contain NUL, and PostgreSQL refuses it in text parameters.
                await problem(400, "Bad request", "the request URL contains a NUL byte", "bad-request", scope["path"])(
                    scope, receive, send_with_id
                )
                return
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            if not status_holder["started"]:
                response = problem(
                    500,
                    "Internal server error",
                    "an unexpected error occurred; quote the request id when reporting it",
                    "internal-error",
                    scope["path"],
                )
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            status = int(status_holder["status"])
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], route).observe(elapsed)
            if scope["path"] not in UNLIMITED_PATHS:
                log.info(
                    "request", method=scope["method"], route=route, status=status, duration_ms=round(elapsed * 1000, 2)
                )
            structlog.contextvars.unbind_contextvars("request_id")


Identify = Callable[[Scope], str | None]


class RateLimitMiddleware:
    """Per signed-in user (`identify` reads the bearer token or console session without touching the database;
    a forged or expired one counts as anonymous), else per client address. Sign-in keeps its own strict limit
    on failures per username and address."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, identify: Identify | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS or scope["path"].startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        client: Any = scope.get("client")
        try:
            user_id = self.identify(scope) if self.identify is not None else None
            await self.limiter.hit_request_async(client[0] if client else "unknown", user_id)
        except RateLimited as exc:
            response = problem(
                429, exc.title, exc.detail, exc.slug, scope["path"], {"Retry-After": str(exc.retry_after_seconds)}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
