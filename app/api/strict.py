"""Strict request edges (CONTRACT Hardening): bodies above 1 MiB are 413, JSON objects with a duplicate key are
422, query dates and booleans are strict (`as_of=0` is not 1970-01-01), and a caller who may not use an endpoint
learns that (401/403) before anything about their input (422)."""

import json
import re
import types
from datetime import date
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem
from app.core.errors import AuthenticationFailed
from app.identity import service as identity
from app.identity.access import Permission

MAX_BODY_BYTES = 1024 * 1024
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_BOOLEANS = frozenset({"true", "false"})

# Routes whose role requirement does not depend on the object (no branch visibility to check first), so it can
# be enforced before the input is looked at. (method, route template) -> the permission the service requires.
_API = "/api/v1"
ROUTE_PERMISSIONS: dict[tuple[str, str], Permission] = {
    ("POST", f"{_API}/users"): Permission.users_admin,
    ("GET", f"{_API}/users"): Permission.users_admin,
    ("GET", f"{_API}/users/{{user_id}}"): Permission.users_admin,
    ("PATCH", f"{_API}/users/{{user_id}}"): Permission.users_admin,
    ("POST", f"{_API}/branches"): Permission.branches_admin,
    ("POST", f"{_API}/products"): Permission.products_admin,
    ("POST", f"{_API}/borrowers"): Permission.borrowers_write,
    ("PATCH", f"{_API}/borrowers/{{borrower_id}}"): Permission.borrowers_write,
    ("POST", f"{_API}/loans"): Permission.loans_originate,
    ("POST", f"{_API}/loans/{{loan_id}}/approve"): Permission.loans_approve,
    ("POST", f"{_API}/loans/{{loan_id}}/reject"): Permission.loans_approve,
    ("POST", f"{_API}/loans/{{loan_id}}/withdraw"): Permission.loans_originate,
    ("POST", f"{_API}/loans/{{loan_id}}/disburse"): Permission.loans_originate,
    ("POST", f"{_API}/loans/{{loan_id}}/payments"): Permission.payments_write,
    ("POST", f"{_API}/loans/{{loan_id}}/write-off"): Permission.loans_write_off,
    ("POST", f"{_API}/loans/{{loan_id}}/refund"): Permission.refunds_write,
    ("POST", f"{_API}/loans/{{loan_id}}/transactions/{{tx_id}}/reverse"): Permission.loans_reverse,
    ("POST", f"{_API}/loans/{{loan_id}}/charges"): Permission.charges_write,
    ("POST", f"{_API}/loans/{{loan_id}}/waivers"): Permission.waivers_write,
    ("POST", f"{_API}/loans/{{loan_id}}/credits"): Permission.waivers_write,
    ("POST", f"{_API}/loans/{{loan_id}}/chargebacks"): Permission.waivers_write,
    ("POST", f"{_API}/operations/close-of-business"): Permission.close_of_business,
    ("POST", f"{_API}/loans/{{loan_id}}/undo-approval"): Permission.loans_approve,
    ("POST", f"{_API}/loans/{{loan_id}}/undo-disbursal"): Permission.loans_approve,
    ("POST", f"{_API}/loans/{{loan_id}}/modifications"): Permission.loans_originate,
    ("POST", f"{_API}/loans/{{loan_id}}/modifications/{{modification_id}}/approve"): Permission.loans_reschedule,
    ("POST", f"{_API}/loans/{{loan_id}}/modifications/{{modification_id}}/reject"): Permission.loans_reschedule,
}
_PREFIX_PERMISSIONS = ((f"{_API}/reports/", Permission.reports_read), (f"{_API}/ledger/", Permission.ledger_read))


class BodyLimitMiddleware:
    """413 for a body above MAX_BODY_BYTES, by its Content-Length or, when streamed, as it arrives."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            status = 413 if declared.isdigit() else 400
            title = "Payload too large" if status == 413 else "Bad request"
            detail = f"request bodies are limited to {self.limit} bytes" if status == 413 else "bad Content-Length"
            await problem(status, title, detail, title.lower().replace(" ", "-"), scope["path"])(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, f"request bodies are limited to {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _strict_kind(annotation: Any) -> type | None:
    """date or bool when the parameter is one (optionally `| None`), else None."""
    candidates = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    for candidate in candidates:
        if candidate is bool:
            return bool
        if candidate is date:
            return date
    return None


def _walk(dependant: Dependant) -> list[Dependant]:
    found, todo = [], [dependant]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(current.dependencies)
    return found


_STRICT_QUERY: dict[int, list[tuple[str, type]]] = {}


def _strict_query_params(route: APIRoute) -> list[tuple[str, type]]:
    found = _STRICT_QUERY.get(id(route))
    if found is None:
        found = []
        for param in (q for d in _walk(route.dependant) for q in d.query_params):
            kind = _strict_kind(param.field_info.annotation)
            if kind is not None:
                found.append((param.alias, kind))
        _STRICT_QUERY[id(route)] = found
    return found


async def strict_request(request: Request) -> None:
    """App-wide dependency: the checks pydantic's lax mode would let through."""
    errors: list[dict[str, Any]] = []
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        for alias, kind in _strict_query_params(route):
            for raw in request.query_params.getlist(alias):
                if kind is date and not _ISO_DATE.fullmatch(raw):
                    errors.append(_error(("query", alias), "must be a date as YYYY-MM-DD", raw))
                elif kind is bool and raw.lower() not in _BOOLEANS:
                    errors.append(_error(("query", alias), "must be true or false", raw))
    content_type = request.headers.get("content-type", "")
    if "json" in content_type:
        body = await request.body()
        if body:
            try:
                json.loads(body, object_pairs_hook=_unique_keys)
            except _DuplicateKey as exc:
                errors.append(_error(("body",), f"the key {exc.key[:40]!r} appears more than once in an object", ""))
            except ValueError:
                pass  # malformed JSON: FastAPI has already answered it
    if errors:
        raise RequestValidationError(errors)


def _error(loc: tuple[str, ...], message: str, value: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": message, "input": value[:40]}


def required_permission(method: str, path_template: str) -> Permission | None:
    found = ROUTE_PERMISSIONS.get((method, path_template))
    if found is not None:
        return found
    for prefix, permission in _PREFIX_PERMISSIONS:
        if path_template.startswith(prefix):
            return permission
    return None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _uses_bearer_auth(route: APIRoute) -> bool:
    from app.api.deps import current_principal

    return any(d.call is current_principal for d in _walk(route.dependant))


async def authorize_before_validation(request: Request) -> None:
    """Called when the input is invalid: a caller without a valid token gets 401, a role that may not use the
    endpoint gets 403, whatever was wrong with the input (CONTRACT Hardening)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not _uses_bearer_auth(route):
        return
    token = _bearer(request)
    if token is None:
        raise AuthenticationFailed("sign in first: send Authorization: Bearer <token>")
    state = request.app.state
    principal = await run_in_threadpool(identity.principal_for_token, state.db, state.settings, token)
    permission = required_permission(request.method, route.path)
    if permission is not None:
        principal.require(permission)
