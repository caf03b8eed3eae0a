"""Reports as JSON or CSV (`Accept: text/csv` or `?format=csv`)."""

from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, ReadDbDep
from app.api.problems import PROBLEM_SCHEMA
from app.core.csvout import csv_text
from app.core.schemas import MoneyOut, money_out
from app.reports import service, tables

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

Currency = Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code of the books to report")]
Format = Annotated[str | None, Query(alias="format", pattern=r"^(json|csv)$", description="json (default) or csv")]
Basis = Annotated[
    str,
    Query(
        pattern=r"^(booking|value)$",
        description="booking (default): what the books said at the end of as_of, unchanged once the day is "
        "closed; value: the history recomputed from the event log as now known (backdated events included)",
    ),
]


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "content": {"text/csv": {"schema": {"type": "string"}}}},
        403: PROBLEM_SCHEMA,
        422: PROBLEM_SCHEMA,
    }


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]], filename: str) -> Response:
    return Response(
        csv_text(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class PortfolioOut(BaseModel):
    as_of: date
    currency: str
    active_loans: int
    principal_outstanding: MoneyOut
    interest_outstanding: MoneyOut
    par_1: str
    par_30: str
    par_90: str
    source: str
    interest_in_suspense: MoneyOut = Field(description="non-accrual interest held in suspense, not income")


class AgingBucket(BaseModel):
    bucket: str
    loans: int
    principal: MoneyOut


class AgingOut(BaseModel):
    as_of: date
    currency: str
    buckets: list[AgingBucket]


class DelinquentLoan(BaseModel):
    loan_id: str
    branch_id: str
    borrower_id: str
    borrower_name: str
    days_past_due: int
    oldest_unpaid_due_date: date | None
    principal_outstanding: MoneyOut
    interest_outstanding: MoneyOut
    penalties_outstanding: MoneyOut


class DelinquentOut(BaseModel):
    as_of: date
    currency: str
    items: list[DelinquentLoan]


class CollectionsDay(BaseModel):
    date: date
    payments: int
    amount: MoneyOut
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut
    overpayment: MoneyOut
    recovery: MoneyOut


class CollectionsOut(BaseModel):
    date_from: date
    date_to: date
    currency: str
    days: list[CollectionsDay]


@router.get(
    "/portfolio",
    response_model=PortfolioOut,
    responses=_responses(PortfolioOut),
    summary="Active loans, outstanding, PAR 1/30/90 (PAR_N = principal of loans with DPD > N / all)",
)
def portfolio(
    db: ReadDbDep,
    principal: CurrentUser,
    request: Request,
    as_of: date | None = None,
    currency: Currency = "USD",
    fmt: Format = None,
    basis: Basis = "booking",
) -> Response:
    p = service.portfolio(db, principal, as_of, currency, basis)
    out = PortfolioOut(
        as_of=p.as_of,
        currency=currency,
        active_loans=p.active_loans,
        principal_outstanding=money_out(p.principal, currency),
        interest_outstanding=money_out(p.interest, currency),
        par_1=p.par_1,
        par_30=p.par_30,
        par_90=p.par_90,
        source=p.source,
        interest_in_suspense=money_out(p.interest_in_suspense, currency),
    )
    if _wants_csv(request, fmt):
        data = out.model_dump(mode="json")
        return _csv(list(data), [list(data.values())], f"portfolio-{p.as_of}.csv")
    return JSONResponse(out.model_dump(mode="json"))


@router.get("/aging", response_model=AgingOut, responses=_responses(AgingOut), summary="Aging buckets by DPD")
def aging(
    db: ReadDbDep,
    principal: CurrentUser,
    request: Request,
    as_of: date | None = None,
    currency: Currency = "USD",
    fmt: Format = None,
    basis: Basis = "booking",
) -> Response:
    on, rows = service.aging(db, principal, as_of, currency, basis)
    table = tables.aging(rows, currency)
    if _wants_csv(request, fmt):
        return _csv(tables.AGING, table, f"aging-{on}.csv")
    out = AgingOut(as_of=on, currency=currency, buckets=[AgingBucket(**i) for i in tables.items(tables.AGING, table)])
    return JSONResponse(out.model_dump(mode="json"))


@router.get(
    "/delinquent-loans",
    response_model=DelinquentOut,
    responses=_responses(DelinquentOut),
    summary="Loans past due, most days past due first",
)
def delinquent_loans(
    db: ReadDbDep,
    principal: CurrentUser,
    request: Request,
    as_of: date | None = None,
    currency: Currency = "USD",
    min_dpd: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    fmt: Format = None,
) -> Response:
    on, rows = service.delinquent(db, principal, as_of, currency, min_dpd, limit)
    table = tables.delinquent(rows, currency)
    if _wants_csv(request, fmt):
        return _csv(tables.DELINQUENT, table, f"delinquent-{on}.csv")
    items = [DelinquentLoan(**i) for i in tables.items(tables.DELINQUENT, table)]
    out = DelinquentOut(as_of=on, currency=currency, items=items)
    return JSONResponse(out.model_dump(mode="json"))


@router.get(
    "/collections",
    response_model=CollectionsOut,
    responses=_responses(CollectionsOut),
    summary="Daily collections (repayments and recoveries, net of reversals)",
)
def collections(
    db: ReadDbDep,
    principal: CurrentUser,
    request: Request,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    currency: Currency = "USD",
    fmt: Format = None,
) -> Response:
    start, end, rows = service.collections(db, principal, date_from, date_to, currency)
    table = tables.collections(rows, currency)
    if _wants_csv(request, fmt):
        return _csv(tables.COLLECTIONS, table, f"collections-{end}.csv")
    days = [CollectionsDay(**i) for i in tables.items(tables.COLLECTIONS, table)]
    out = CollectionsOut(date_from=start, date_to=end, currency=currency, days=days)
    return JSONResponse(out.model_dump(mode="json"))
