from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import CurrentUser, DbDep
from app.api.problems import PROBLEM_SCHEMA
from app.core.schemas import MoneyOut, StrictModel, money_out
from app.operations import service
from app.operations.cob import DayResult

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


class BusinessDateOut(BaseModel):
    business_date: date


class CloseOfBusinessIn(StrictModel):
    business_date: date | None = None


class DayClosed(BaseModel):
    business_date: date
    loans_processed: int
    interest_accrued: MoneyOut
    late_fees_charged: MoneyOut
    late_fee_count: int
    duration_ms: int
    already_closed: bool


class CloseOfBusinessOut(DayClosed):
    """The last day closed (the contract's figures), the new business date, and every day closed."""

    new_business_date: date
    days: list[DayClosed]


def _day(r: DayResult, currency: str) -> DayClosed:
    # Totals across products, shown in the books' currency; per-currency figures are in the journal.
    return DayClosed(
        business_date=r.business_date,
        loans_processed=r.loans_processed,
        interest_accrued=money_out(r.interest_accrued, currency),
        late_fees_charged=money_out(r.late_fees_charged, currency),
        late_fee_count=r.late_fee_count,
        duration_ms=r.duration_ms,
        already_closed=r.already_closed,
    )


@router.get("/business-date", response_model=BusinessDateOut, summary="The lender's current business date")
def get_business_date(db: DbDep, principal: CurrentUser) -> BusinessDateOut:
    return BusinessDateOut(business_date=service.get_business_date(db, principal))


@router.post(
    "/close-of-business",
    response_model=CloseOfBusinessOut,
    responses={403: PROBLEM_SCHEMA, 409: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA},
    summary="Close every day from the business date through business_date (manager)",
)
def close_of_business(db: DbDep, principal: CurrentUser, body: CloseOfBusinessIn | None = None) -> CloseOfBusinessOut:
    results = service.close_of_business(db, principal, body.business_date if body else None)
    currency = service.books_currency(db)
    last = _day(results[-1], currency)
    return CloseOfBusinessOut(
        **last.model_dump(), new_business_date=service.business_date(db), days=[_day(r, currency) for r in results]
    )
