"""Payoff quotes (`/loans/{id}/payoff-quotes`) and CSV payment batches (`/payment-batches`)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, DbDep, Limit
from app.api.problems import PROBLEM_SCHEMA
from app.core.errors import PayloadTooLarge
from app.core.schemas import Page, money_out
from app.payments import batches, quotes
from app.payments.models import PaymentBatch, PaymentBatchRow, PayoffQuoteRecord
from app.payments.schemas import BatchAccepted, BatchOut, BatchRowResult, PayoffQuoteIn, PayoffQuoteOut

ERRORS: dict[int | str, dict[str, Any]] = {403: PROBLEM_SCHEMA, 404: PROBLEM_SCHEMA, 409: PROBLEM_SCHEMA,
                                           422: PROBLEM_SCHEMA}
router = APIRouter(prefix="/api/v1", responses=ERRORS)


def quote_out(q: PayoffQuoteRecord) -> PayoffQuoteOut:
    c = q.currency
    return PayoffQuoteOut(
        id=q.id,
        loan_id=q.loan_id,
        currency=c,
        date=q.date,
        valid_until=q.valid_until,
        total=money_out(q.total, c),
        principal=money_out(q.principal, c),
        interest=money_out(q.interest, c),
        fees=money_out(q.fees, c),
        penalties=money_out(q.penalties, c),
        per_diem=money_out(q.per_diem, c),
        created_at=q.created_at,
    )


@router.post(
    "/loans/{loan_id}/payoff-quotes",
    status_code=201,
    response_model=PayoffQuoteOut,
    tags=["loans"],
    summary="Persist a payoff quote for a date (officer, own branch)",
    description="The payoff for `date` (default: the business date), stored. A payment with "
    '`{"payoff_quote_id": id}` of at least `total`, dated on or before `valid_until` (= `date`), closes the '
    "loan; paid before `date`, the unaccrued interest in the total is left as a refundable credit (`overpaid`).",
)
def create_payoff_quote(
    db: DbDep, principal: CurrentUser, loan_id: str, body: PayoffQuoteIn, response: Response
) -> PayoffQuoteOut:
    record = quotes.create(db, principal, loan_id, body.date)
    response.headers["Location"] = f"/api/v1/loans/{loan_id}/payoff-quotes/{record.id}"
    return quote_out(record)


@router.get(
    "/loans/{loan_id}/payoff-quotes/{quote_id}", response_model=PayoffQuoteOut, tags=["loans"],
    summary="A stored payoff quote",
)
def get_payoff_quote(db: DbDep, principal: CurrentUser, loan_id: str, quote_id: str) -> PayoffQuoteOut:
    return quote_out(quotes.get(db, principal, loan_id, quote_id))


CSV_EXAMPLE = "loan_id,amount,date,external_id\n7f9c…,125.00,2026-12-01,BANK-20261201-0001\n"
RowStatus = Annotated[Literal["pending", "succeeded", "duplicate", "failed"] | None, Query()]


@router.post(
    "/payment-batches",
    status_code=202,
    response_model=BatchAccepted,
    tags=["payments"],
    summary="Upload a CSV of payments (officer: own branch's loans)",
    description="Columns `loan_id` (or `account_no`), `amount`, `date` (optional, default the business date), "
    "`external_id` (required: each row is one idempotent payment keyed by it). Answers 202 with the batch id; "
    "the events worker (`loanctl deliver-events`) posts the rows in chunks. A bad row fails alone with its "
    "reason; a row whose external_id was already posted on that loan is a `duplicate` and posts nothing.",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}}}},
)
def upload_batch(
    db: DbDep,
    principal: CurrentUser,
    response: Response,
    body: Annotated[bytes, Body(media_type="text/csv")] = b"",
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> BatchAccepted:
    # Oversized bodies are refused before they are read (the 1 MiB request limit, CONTRACT Hardening).
    if len(body) > batches.MAX_BYTES:
        raise PayloadTooLarge(f"a batch file may have at most {batches.MAX_BYTES // (1024 * 1024)} MiB")
    batch = batches.upload(db, principal, body if isinstance(body, bytes) else str(body).encode(), filename)
    response.headers["Location"] = f"/api/v1/payment-batches/{batch.id}"
    return BatchAccepted(id=batch.id, status=batch.status, rows=batch.rows)


def _row_out(r: PaymentBatchRow) -> BatchRowResult:
    return BatchRowResult(
        row=r.row_no, status=r.status, external_id=r.external_id, transaction_id=r.transaction_id, error=r.error
    )


def _batch_out(batch: PaymentBatch, pending: int, rows: list[BatchRowResult], more: str | None) -> BatchOut:
    return BatchOut(
        id=batch.id,
        status=batch.status,
        rows=batch.rows,
        succeeded=batch.succeeded,
        failed=batch.failed,
        pending=pending,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        results=rows,
        next_cursor=more,
    )


@router.get(
    "/payment-batches", response_model=Page[BatchAccepted], tags=["payments"], summary="Recent batches, newest first"
)
def list_batches(db: DbDep, principal: CurrentUser, limit: Limit = DEFAULT_PAGE_SIZE) -> Page[BatchAccepted]:
    items = [BatchAccepted(id=b.id, status=b.status, rows=b.rows) for b in batches.list_batches(db, principal, limit)]
    return Page[BatchAccepted](items=items, next_cursor=None)


@router.get(
    "/payment-batches/{batch_id}",
    response_model=BatchOut,
    tags=["payments"],
    summary="Progress and per-row results",
    description="`results` in row order, `limit` rows (default and max 10,000) after `cursor` (a row number); "
    "`?status=failed` lists only the failed rows with their reasons.",
)
def get_batch(
    db: DbDep,
    principal: CurrentUser,
    batch_id: str,
    status: RowStatus = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    cursor: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
) -> BatchOut:
    batch, pending, rows = batches.get(db, principal, batch_id, status, cursor or 0, limit)
    more = str(rows[-1].row_no) if len(rows) == limit else None
    return _batch_out(batch, pending, [_row_out(r) for r in rows], more)


@router.get(
    "/payment-batches/{batch_id}/results.csv",
    tags=["payments"],
    summary="Per-row results as CSV (row, loan, amount, date, external_id, status, transaction_id, error)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def batch_results_csv(db: DbDep, principal: CurrentUser, batch_id: str) -> Response:
    body, filename = batches.results_csv(db, principal, batch_id)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
