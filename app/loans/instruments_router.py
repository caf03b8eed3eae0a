"""HTTP for the servicing instruments: parse, authorise (in the service), answer (CONTRACT "Servicing
instruments": 201 with the transaction item and the loan; 200 for a dry run)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import CurrentUser, DbDep, SettingsDep
from app.core.idempotency import IdempotentRequest
from app.database import Database
from app.identity.access import Principal
from app.loans import instruments
from app.loans.idempotent import MoneyResult
from app.loans.instrument_schemas import ChargebackIn, ChargeIn, CreditIn, InstrumentOut, WaiverIn
from app.loans.router import ERRORS, DryRun, IfMatch, OptionalKey, _idempotent_request, _money_response, _version
from app.loans.schemas import DryRunOut

router = APIRouter(prefix="/api/v1/loans", tags=["loans"])

RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"model": DryRunOut, "description": "Dry run"}}
Body = TypeVar("Body", bound=BaseModel)
Action = Callable[[Database, Principal, str, Body, IdempotentRequest | None, int | None, bool, timedelta], MoneyResult]


def _run(
    action: Action[Body],
    db: Database,
    ttl_hours: int,
    principal: Principal,
    loan_id: str,
    body: Body,
    request: Request,
    key: str | None,
    if_match: str | None,
    dry_run: bool,
) -> JSONResponse:
    req = _idempotent_request(principal, key, request, body.model_dump(mode="json"), dry_run)
    ttl = timedelta(hours=ttl_hours)
    return _money_response(action(db, principal, loan_id, body, req, _version(if_match), dry_run, ttl))


@router.post(
    "/{loan_id}/charges",
    status_code=201,
    response_model=InstrumentOut,
    responses=RESPONSES,
    summary="Charge an ad-hoc fee (officer): owed from its due date, in that installment's fees",
)
def add_charge(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    body: ChargeIn,
    request: Request,
    idempotency_key: OptionalKey = None,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return _run(
        instruments.charge,
        db,
        settings.idempotency_key_ttl_hours,
        principal,
        loan_id,
        body,
        request,
        idempotency_key,
        if_match,
        dry_run,
    )


@router.post(
    "/{loan_id}/waivers",
    status_code=201,
    response_model=InstrumentOut,
    responses=RESPONSES,
    summary="Waive owed penalties, fees or due interest, oldest first (manager); more than owed → 422",
)
def add_waiver(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    body: WaiverIn,
    request: Request,
    idempotency_key: OptionalKey = None,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return _run(
        instruments.waive,
        db,
        settings.idempotency_key_ttl_hours,
        principal,
        loan_id,
        body,
        request,
        idempotency_key,
        if_match,
        dry_run,
    )


@router.post(
    "/{loan_id}/credits",
    status_code=201,
    response_model=InstrumentOut,
    responses=RESPONSES,
    summary="Goodwill credit funded by the lender, applied like a payment (manager)",
)
def add_credit(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    body: CreditIn,
    request: Request,
    idempotency_key: OptionalKey = None,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return _run(
        instruments.credit,
        db,
        settings.idempotency_key_ttl_hours,
        principal,
        loan_id,
        body,
        request,
        idempotency_key,
        if_match,
        dry_run,
    )


@router.post(
    "/{loan_id}/chargebacks",
    status_code=201,
    response_model=InstrumentOut,
    responses=RESPONSES,
    summary="Charge back money of a repayment (manager): owed again as principal; more than the repayment → 422",
)
def add_chargeback(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    body: ChargebackIn,
    request: Request,
    idempotency_key: OptionalKey = None,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return _run(
        instruments.chargeback,
        db,
        settings.idempotency_key_ttl_hours,
        principal,
        loan_id,
        body,
        request,
        idempotency_key,
        if_match,
        dry_run,
    )
