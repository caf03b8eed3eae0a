"""Payoff quotes (`/loans/{id}/payoff-quotes`) and CSV payment batches (`/payment-batches`)."""

from typing import Any

from fastapi import APIRouter, Response

from app.api.deps import CurrentUser, DbDep
from app.api.problems import PROBLEM_SCHEMA
from app.core.schemas import money_out
from app.payments import quotes
from app.payments.models import PayoffQuoteRecord
from app.payments.schemas import PayoffQuoteIn, PayoffQuoteOut

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
