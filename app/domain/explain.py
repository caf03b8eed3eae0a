"""Why an installment's interest is what it is: balance × rate × day-count fraction, and the rounding applied."""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from app.domain.calendar import DayCount, Thirty360US, periods_per_year
from app.domain.errors import DomainValidationError
from app.domain.schedule import (
    Amortization,
    InterestMethod,
    Schedule,
    flat_interest_total,
    interest_fraction,
    is_regular_period,
)

__all__ = ["InterestExplanation", "explain_interest"]

_EXACT = Context(prec=50)


@dataclass(frozen=True, slots=True)
class InterestExplanation:
    """How installment `number`'s interest was computed.

    `unrounded_interest` = opening_balance × annual_rate_percent / 100 × year_fraction_numerator /
    year_fraction_denominator (exact ratio; shown to 50 significant digits); `rounded_interest` is that
    value rounded `rounding_mode` to `rounding_place` and equals the schedule's interest. For the flat method
    the base is the original principal over the whole term and the per-installment share is explained instead.
    `residual_to_last` is, on the last installment only, how much its total differs from the regular installment.
    """

    number: int
    interest_method: InterestMethod
    opening_balance: Decimal
    annual_rate_percent: Decimal
    day_count: DayCount
    period_start: date
    period_end: date
    regular_period: bool
    day_numbers: tuple[int, int, int, int, int, int] | None
    days: int
    year_fraction_numerator: int
    year_fraction_denominator: int
    year_fraction: Decimal
    unrounded_interest: Decimal
    rounding_mode: str
    rounding_place: Decimal
    rounded_interest: Decimal
    scheduled_interest: Decimal
    residual_to_last: Decimal | None
    formula: str


def _days(
    schedule: Schedule, start: date, end: date, regular: bool
) -> tuple[int, tuple[int, int, int, int, int, int] | None]:
    terms = schedule.terms
    if terms.day_count != DayCount.thirty_360:
        return (end - start).days, None
    if regular and terms.frequency in {"monthly", "quarterly", "yearly"}:
        # 30/360: 30 days per month
        return 360 * terms.frequency_interval // periods_per_year(terms.frequency), None
    convention = Thirty360US()
    if regular:
        return (end - start).days, None  # weekly/biweekly: rate / periods-per-year (CONTRACT "Schedules")
    return convention.days(start, end), convention.adjusted(start, end)


def explain_interest(schedule: Schedule, number: int) -> InterestExplanation:
    """Structured explanation of installment `number`'s interest (1-based)."""
    rows = schedule.installments
    if not 1 <= number <= len(rows):
        raise DomainValidationError("number", f"must be from 1 to {len(rows)}")
    terms = schedule.terms
    row = rows[number - 1]
    cur = terms.currency
    rate = Decimal(terms.annual_rate_percent)
    is_last = number == len(rows)
    residual = None
    if is_last:
        regular_total = schedule.installment_amount
        if terms.amortization == Amortization.interest_only:
            regular_total = regular_total + row.principal
        residual = row.total - regular_total
    if terms.interest_method == InterestMethod.flat:
        return _explain_flat(schedule, number, residual)
    opening = row.balance + row.principal
    regular = is_regular_period(terms, row.period_start, row.due_date, number)
    num, den = interest_fraction(terms, row.period_start, row.due_date, number)
    days, day_numbers = _days(schedule, row.period_start, row.due_date, regular)
    exact = _EXACT.divide(opening * rate * num, Decimal(100 * den))
    rounded = exact.quantize(cur.exponent, rounding=ROUND_HALF_UP)
    basis = f"{num}/{den}" + (" (regular period: 1/periods-per-year)" if regular and num == 1 else "")
    formula = (
        f"{opening} × {rate}% × {basis} = {exact.normalize():f} → {rounded} "
        f"(half-up to {cur.exponent}; {terms.day_count.value}, {days} days from {row.period_start} to {row.due_date})"
    )
    return InterestExplanation(
        number=number,
        interest_method=terms.interest_method,
        opening_balance=opening,
        annual_rate_percent=rate,
        day_count=terms.day_count,
        period_start=row.period_start,
        period_end=row.due_date,
        regular_period=regular,
        day_numbers=day_numbers,
        days=days,
        year_fraction_numerator=num,
        year_fraction_denominator=den,
        year_fraction=_EXACT.divide(Decimal(num), Decimal(den)),
        unrounded_interest=exact,
        rounding_mode=ROUND_HALF_UP,
        rounding_place=cur.exponent,
        rounded_interest=rounded,
        scheduled_interest=row.interest,
        residual_to_last=residual,
        formula=formula,
    )


def _explain_flat(schedule: Schedule, number: int, residual: Decimal | None) -> InterestExplanation:
    terms = schedule.terms
    cur = terms.currency
    row = schedule.installments[number - 1]
    rate = Decimal(terms.annual_rate_percent)
    # terms.term periods of `interval` / periods-per-year years each (CONTRACT "Schedules", frequency_interval)
    ppy = periods_per_year(terms.frequency)
    years = terms.term * terms.frequency_interval
    total = flat_interest_total(terms)
    exact = _EXACT.divide(total, Decimal(terms.term))
    rounded = exact.quantize(cur.exponent, rounding=ROUND_HALF_UP)
    formula = (
        f"flat: {terms.principal} × {rate}% × {years}/{ppy} = {total}; ÷ {terms.term} installments = "
        f"{exact.normalize():f} → {rounded} per installment (half-up to {cur.exponent})"
        + (f"; the last installment takes the flat-interest residual: {row.interest}" if residual is not None else "")
    )
    return InterestExplanation(
        number=number,
        interest_method=terms.interest_method,
        opening_balance=Decimal(terms.principal),
        annual_rate_percent=rate,
        day_count=terms.day_count,
        period_start=row.period_start,
        period_end=row.due_date,
        regular_period=True,
        day_numbers=None,
        days=(row.due_date - row.period_start).days,
        year_fraction_numerator=years,
        year_fraction_denominator=ppy,
        year_fraction=_EXACT.divide(Decimal(years), Decimal(ppy)),
        unrounded_interest=exact,
        rounding_mode=ROUND_HALF_UP,
        rounding_place=cur.exponent,
        rounded_interest=rounded,
        scheduled_interest=row.interest,
        residual_to_last=residual,
        formula=formula,
    )
