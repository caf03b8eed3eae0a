"""Schedule preview and interest explanation: pure calculation, no database.

One use case = one function: build `ScheduleTerms` from the request (money parsed exactly in the request's
currency), let the domain validate and generate, and hand domain objects back to the router.
"""

from dataclasses import dataclass
from decimal import Decimal

from app.core.errors import ValidationFailed
from app.domain.apr import schedule_apr
from app.domain.explain import InterestExplanation, explain_interest
from app.domain.money import currency, parse_money
from app.domain.schedule import Schedule, ScheduleTerms, generate_schedule
from app.schedules.schemas import ExplainRequest, ScheduleRequest

__all__ = ["SchedulePreview", "explain", "preview", "terms_from"]


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    schedule: Schedule
    apr_percent: Decimal


def terms_from(request: ScheduleRequest) -> ScheduleTerms:
    """The request as domain terms. Money is re-read in the request's currency, so "100.5" JPY or "1.001" USD
    is refused naming its field; every other rule is `ScheduleTerms.validate()` (raised by the domain)."""
    cur = currency(request.currency)
    multiple = request.installment_multiple_of
    return ScheduleTerms(
        principal=parse_money(request.principal, cur, "principal", positive=True),
        annual_rate_percent=request.annual_rate_percent,
        term=request.term,
        frequency=request.frequency,
        frequency_interval=request.frequency_interval,
        disbursement_date=request.disbursement_date,
        currency=cur,
        first_payment_date=request.first_payment_date,
        amortization=request.amortization,
        interest_method=request.interest_method,
        day_count=request.day_count,
        grace_principal_periods=request.grace_principal_periods,
        upfront_fee=parse_money(request.upfront_fee, cur, "upfront_fee"),
        installment_multiple_of=None
        if multiple is None
        else parse_money(multiple, cur, "installment_multiple_of", positive=True),
    )


def preview(request: ScheduleRequest) -> SchedulePreview:
    """The full schedule and its Reg Z App. J APR (amount financed = principal − upfront fee)."""
    schedule = generate_schedule(terms_from(request))
    return SchedulePreview(schedule, schedule_apr(schedule))


def explain(request: ExplainRequest) -> tuple[Schedule, InterestExplanation]:
    """Why installment `installment_number`'s interest is what it is, on the schedule the same terms produce."""
    schedule = generate_schedule(terms_from(request))
    rows = len(schedule.installments)
    if request.installment_number > rows:
        # The schedule can be shorter than `term` when installment_multiple_of rounds the installment up.
        raise ValidationFailed.single("installment_number", f"must be from 1 to {rows}: the schedule has {rows} rows")
    return schedule, explain_interest(schedule, request.installment_number)
