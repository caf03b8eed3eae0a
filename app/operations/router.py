from datetime import date

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, DbDep
from app.api.problems import PROBLEM_SCHEMA
from app.business_calendar import service as calendar_service
from app.core.schemas import MoneyOut, StrictModel, money_out
from app.operations import service
from app.operations.cob import DayResult, add_amounts

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


class BusinessDateOut(BaseModel):
    business_date: date


class CloseOfBusinessIn(StrictModel):
    business_date: date | None = None


Amounts = dict[str, MoneyOut]


class DayClosed(BaseModel):
    business_date: date
    loans_processed: int
    interest_accrued: Amounts = Field(description="per currency: {currency: amount}, e.g. {'USD': '6.39'}")
    late_fees_charged: Amounts = Field(description="per currency: {currency: amount}")
    late_fee_count: int
    duration_ms: int
    already_closed: bool


class CloseOfBusinessOut(BaseModel):
    """Totals over every day the request closed (per currency: amounts of different currencies never add up),
    the last day closed, the new business date, and each day closed."""

    business_date: date
    loans_processed: int
    interest_accrued: Amounts = Field(description="per currency, totalled over all the days closed")
    late_fees_charged: Amounts = Field(description="per currency, totalled over all the days closed")
    late_fee_count: int
    duration_ms: int
    already_closed: bool
    new_business_date: date
    days: list[DayClosed]


def amounts_out(amounts: dict[str, int]) -> dict[str, str]:
    return {code: money_out(amount, code) for code, amount in amounts.items()}


def _day(r: DayResult) -> DayClosed:
    return DayClosed(
        business_date=r.business_date,
        loans_processed=r.loans_processed,
        interest_accrued=amounts_out(r.interest_by_currency),
        late_fees_charged=amounts_out(r.late_fees_by_currency),
        late_fee_count=r.late_fee_count,
        duration_ms=r.duration_ms,
        already_closed=r.already_closed,
    )


@router.get("/business-date", response_model=BusinessDateOut, summary="The lender's current business date")
def get_business_date(db: DbDep, principal: CurrentUser) -> BusinessDateOut:
    return BusinessDateOut(business_date=calendar_service.get_business_date(db, principal))


@router.post(
    "/close-of-business",
    response_model=CloseOfBusinessOut,
    responses={403: PROBLEM_SCHEMA, 409: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA},
    summary="Close every day from the business date through business_date (manager)",
)
def close_of_business(db: DbDep, principal: CurrentUser, body: CloseOfBusinessIn | None = None) -> CloseOfBusinessOut:
    results = service.close_of_business(db, principal, body.business_date if body else None)
    last = results[-1]
    return CloseOfBusinessOut(
        business_date=last.business_date,
        loans_processed=last.loans_processed,
        interest_accrued=amounts_out(add_amounts(*(r.interest_by_currency for r in results))),
        late_fees_charged=amounts_out(add_amounts(*(r.late_fees_by_currency for r in results))),
        late_fee_count=sum(r.late_fee_count for r in results),
        duration_ms=sum(r.duration_ms for r in results),
        already_closed=all(r.already_closed for r in results),
        new_business_date=calendar_service.business_date(db),
        days=[_day(r) for r in results],
    )
