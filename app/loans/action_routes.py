"""Loan actions over HTTP, from tables. Every action on a loan reads the same things from a request — the
body, If-Match, `?dry_run`, and for money-moving actions the Idempotency-Key — and answers what its use case
returns; one endpoint factory per kind does that, and each action is a row: path, body model, use case and
its OpenAPI text. Routers only declare their rows (CONTRACT "Loans", "Servicing instruments")."""

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import CurrentUser, DbDep, SettingsDep
from app.api.problems import PROBLEM_SCHEMA
from app.core.errors import ValidationFailed
from app.database import Database
from app.idempotency.keys import IdempotentRequest, check_key, fingerprint
from app.identity.access import Principal
from app.loans import presenters
from app.loans.engine import Outcome
from app.loans.idempotent import MoneyResult
from app.loans.schemas import DryRunOut, LoanOut

DryRun = Annotated[bool, Query(description="Validate and show what would happen; write nothing")]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="Expected loan version (optimistic lock)")]
OptionalKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: PROBLEM_SCHEMA,
    409: PROBLEM_SCHEMA,
    403: PROBLEM_SCHEMA,
    422: PROBLEM_SCHEMA,
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"model": LoanOut | DryRunOut}}
CREATED_RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"model": DryRunOut, "description": "Dry run"}}


def version_of(if_match: str | None) -> int | None:
    """If-Match as the loan version it names (CONTRACT Concurrency), e.g. `"7"` or `W/"7"`."""
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ValidationFailed.single("If-Match", 'must be the loan\'s version number, e.g. "7"')
    return int(text)


def idempotent_request(
    principal: Principal, key: str | None, request: Request, body: Any, dry_run: bool
) -> IdempotentRequest | None:
    if key is None or dry_run:
        return None
    return IdempotentRequest(principal.user_id, check_key(key), fingerprint("POST", request.url.path, body))


def money_response(result: MoneyResult) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(result.body, status_code=result.status, headers=headers)


def loan_response(outcome: Outcome, dry_run: bool, response: Response) -> LoanOut | DryRunOut:
    if dry_run:
        return presenters.dry_run_out(outcome.loan, outcome.business_date, outcome.state, outcome.entries)
    response.headers["ETag"] = f'"{outcome.loan.version}"'
    return presenters.loan_out(outcome.loan, outcome.business_date)


# A use case's arguments: database, principal, loan id, body, idempotent request, expected version, dry run, key TTL.
MoneyUseCase = Callable[
    [Database, Principal, str, Any, IdempotentRequest | None, int | None, bool, timedelta], MoneyResult
]
# database, principal, loan id, body, expected version, dry run
LifecycleUseCase = Callable[[Database, Principal, str, Any, int | None, bool], Outcome]


@dataclass(frozen=True)
class MoneyAction:
    """A money-moving action: idempotent by key, answered with what the use case stored under it. `created`:
    201 with a transaction item (the servicing instruments); otherwise 200 with the loan."""

    name: str
    path: str
    body: type[BaseModel]
    run: MoneyUseCase
    summary: str
    created_model: type[BaseModel] | None = None


@dataclass(frozen=True)
class LifecycleAction:
    """A status change without money (approve, reject, withdraw): 200 with the loan and its ETag."""

    name: str
    path: str
    body: type[BaseModel] | None  # None: the action takes no body (the undo actions)
    run: LifecycleUseCase
    summary: str
    tags: tuple[str, ...] = ()


def add_money_actions(router: APIRouter, actions: Sequence[MoneyAction]) -> None:
    for action in actions:
        created = action.created_model is not None
        router.add_api_route(
            "/{loan_id}/" + action.path,
            _with_body(_money_endpoint(action), action.body),
            methods=["POST"],
            name=action.name,
            summary=action.summary,
            status_code=201 if created else 200,
            response_model=action.created_model if created else LoanOut | DryRunOut,
            responses=CREATED_RESPONSES if created else ACTION_RESPONSES,
        )


def add_lifecycle_actions(router: APIRouter, actions: Sequence[LifecycleAction]) -> None:
    for action in actions:
        router.add_api_route(
            "/{loan_id}/" + action.path,
            _with_body(_lifecycle_endpoint(action), action.body),
            methods=["POST"],
            name=action.name,
            summary=action.summary,
            response_model=LoanOut | DryRunOut,
            responses=ACTION_RESPONSES,
            tags=list(action.tags) or None,
        )


def _money_endpoint(action: MoneyAction) -> Callable[..., JSONResponse]:
    def endpoint(
        db: DbDep,
        settings: SettingsDep,
        principal: CurrentUser,
        loan_id: str,
        body: BaseModel,
        request: Request,
        idempotency_key: OptionalKey = None,
        if_match: IfMatch = None,
        dry_run: DryRun = False,
    ) -> JSONResponse:
        req = idempotent_request(principal, idempotency_key, request, body.model_dump(mode="json"), dry_run)
        ttl = timedelta(hours=settings.idempotency_key_ttl_hours)
        return money_response(action.run(db, principal, loan_id, body, req, version_of(if_match), dry_run, ttl))

    return endpoint


def _lifecycle_endpoint(action: LifecycleAction) -> Callable[..., LoanOut | DryRunOut]:
    def endpoint(
        db: DbDep,
        principal: CurrentUser,
        loan_id: str,
        response: Response,
        body: BaseModel | None = None,
        if_match: IfMatch = None,
        dry_run: DryRun = False,
    ) -> LoanOut | DryRunOut:
        outcome = action.run(db, principal, loan_id, body, version_of(if_match), dry_run)
        return loan_response(outcome, dry_run, response)

    return endpoint


F = TypeVar("F", bound=Callable[..., Any])


def _with_body(endpoint: F, model: type[BaseModel] | None) -> F:
    """FastAPI reads the body's model from the signature: give the shared endpoint this action's model (a
    required body), or none at all."""
    signature = inspect.signature(endpoint)
    parameters = [
        p.replace(annotation=model, default=inspect.Parameter.empty) if p.name == "body" else p
        for p in signature.parameters.values()
        if p.name != "body" or model is not None
    ]
    endpoint.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return endpoint
