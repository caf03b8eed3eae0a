"""Annual percentage rate by the actuarial method of Regulation Z, 12 CFR 1026 Appendix J.

General equation (App. J (b)(8)), single advance A at the start of the term:

    A = Σ P_k / ((1 + f_k·i) · (1 + i)^t_k)

t_k = full unit periods and f_k = fraction of a unit period from the advance to payment k (App. J (b)(5)),
i = the unit-period rate; APR = i × unit periods per year (App. J (b)(1)), rounded half-up to 4 decimals.

The root is bracketed and found by safeguarded Newton (bisection whenever a Newton step leaves the bracket),
with a hard iteration cap; runs of equal payments are summed as geometric series. Floats are used only to
locate the root; when the float answer sits near a rounding boundary of the 4th decimal the side is decided
exactly in Decimal.
"""

import math
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from app.domain.calendar import Frequency, days_in_month, days_per_period, months_per_period, year_fraction_of_period
from app.domain.errors import DomainValidationError
from app.domain.schedule import Schedule

__all__ = ["apr_percent", "schedule_apr", "unit_periods"]

_MAX_ITERATIONS = 200
_MAX_BRACKET_DOUBLINGS = 80
_EXACT = Context(prec=60)
_FOUR_DP = Decimal("0.0001")
# A float root closer than this (in units of the 4th decimal of the percent) to a .5 boundary is re-decided
# exactly; float error on the root is far below it.
_BOUNDARY_GUARD = 1e-4

_Flow = tuple[int, int, int, Decimal]  # (t, fraction numerator, fraction denominator, amount)


def _back_months(payment: date, months: int, anchor_day: int) -> date:
    """`payment` measured back `months` months on a series paid on `anchor_day` (App. J (b)(3)(iv): a series on
    the last day of the month is measured month end to month end; on the 29th/30th, February uses its last day)."""
    year, month0 = divmod(payment.year * 12 + payment.month - 1 - months, 12)
    return date(year, month0 + 1, min(anchor_day, days_in_month(year, month0 + 1)))


def _per_year(frequency: Frequency, interval: int = 1) -> tuple[int, int]:
    """Unit periods per year as a ratio (App. J (b)(5)(iv): 365 / 15 for every 15 days, 52 / 4 for every 4 weeks)."""
    years_num, years_den = year_fraction_of_period(frequency, interval)
    return years_den, years_num


def unit_periods(
    start: date, payment: date, frequency: Frequency, anchor_day: int | None = None, interval: int = 1
) -> tuple[int, int, int]:
    """(t, f_numerator, f_denominator): full unit periods and the fraction from `start` to `payment`.

    App. J (b)(5)(ii) monthly: full months measured back from the later date, remaining days / 30;
    (b)(5)(iii) quarterly: 30 × full months + remaining days, divided by 90; (b)(5)(iv) weekly/biweekly:
    days / 7 or / 14; (b)(5)(v) yearly: full years measured back, then months / 12 or days / 365.
    `anchor_day` is the day of month of the payment series (default: the payment's own day).
    """
    if payment < start:
        raise DomainValidationError("payments", "a payment falls before the disbursement date")
    unit_days = days_per_period(frequency)
    if unit_days is not None:
        unit_days *= interval
        days = (payment - start).days
        return days // unit_days, days % unit_days, unit_days
    day = payment.day
    if anchor_day is not None and min(anchor_day, days_in_month(payment.year, payment.month)) == payment.day:
        day = anchor_day
    months = (payment.year - start.year) * 12 + payment.month - start.month
    while months > 0 and _back_months(payment, months, day) < start:
        months -= 1
    remaining = ((_back_months(payment, months, day) if months else payment) - start).days
    unit_months = (months_per_period(frequency) or 1) * interval
    if unit_months == 1:
        return months, remaining, 30
    if unit_months < 12:
        total = 30 * months + remaining
        return total // (30 * unit_months), total % (30 * unit_months), 30 * unit_months
    years = months // 12
    if remaining == 0:
        return years, months % 12, 12
    year_start = _back_months(payment, 12 * years, day) if years else payment
    return years, (year_start - start).days, 365


_Run = tuple[float, float, int, int]  # (amount, fraction f, first t, count): equal payments at t, t+1, …


def _runs(flows: Sequence[_Flow]) -> list[_Run]:
    """Group consecutive equal payments one unit period apart, so a level schedule costs O(1) per evaluation."""
    runs: list[list[float | int]] = []
    previous: _Flow | None = None
    for flow in flows:
        t, f_num, f_den, amount = flow
        if previous is not None and (f_num, f_den, amount) == previous[1:] and t == previous[0] + 1:
            runs[-1][3] += 1
        else:
            runs.append([float(amount), f_num / f_den, t, 1])
        previous = flow
    return [(float(a), float(f), int(t), int(c)) for a, f, t, c in runs]


def _present_value(runs: Sequence[_Run], i: float) -> float:
    """Σ P/((1+f·i)(1+i)^t) in floats (root location only); a run of c payments sums as a geometric series."""
    if i == 0.0:
        return sum(amount * count for amount, _, _, count in runs)
    log_base = math.log1p(i)
    total = 0.0
    for amount, f, t, count in runs:
        series = 1.0 if count == 1 else -math.expm1(-count * log_base) * (1.0 + i) / i
        total += amount * math.exp(-t * log_base) * series / (1.0 + f * i)
    return total


def _present_value_exact(flows: Sequence[_Flow], i: Decimal) -> Decimal:
    ctx = _EXACT
    base = ctx.add(Decimal(1), i)
    total = Decimal(0)
    for t, f_num, f_den, amount in flows:
        odd = ctx.add(Decimal(1), ctx.divide(ctx.multiply(Decimal(f_num), i), Decimal(f_den)))
        total = ctx.add(total, ctx.divide(amount, ctx.multiply(odd, ctx.power(base, t))))
    return total


def _solve(amount_financed: Decimal, flows: Sequence[_Flow], per_year: tuple[int, int]) -> Decimal:
    if amount_financed <= 0:
        raise DomainValidationError("amount_financed", "must be greater than zero")
    if not flows:
        raise DomainValidationError("payments", "at least one payment is required")
    if any(amount < 0 for *_, amount in flows):
        raise DomainValidationError("payments", "payment amounts must not be negative")
    paid = sum((amount for *_, amount in flows), Decimal(0))
    if paid == amount_financed:
        return Decimal("0.0000")
    if paid < amount_financed:
        raise DomainValidationError("payments", "the payments total less than the amount financed (negative APR)")
    target, runs = float(amount_financed), _runs(flows)
    low, high = 0.0, 1.0
    for _ in range(_MAX_BRACKET_DOUBLINGS):
        if _present_value(runs, high) < target:
            break
        low, high = high, high * 2
    else:
        raise DomainValidationError("payments", "the APR is too large to compute")
    rate = low
    for _ in range(_MAX_ITERATIONS):
        value = _present_value(runs, rate) - target
        if value > 0:
            low = rate
        else:
            high = rate
        step = 1e-7 * (1.0 + rate)
        slope = (_present_value(runs, rate + step) - target - value) / step
        candidate = rate - value / slope if slope < 0 else (low + high) / 2
        if not low < candidate < high:
            candidate = (low + high) / 2
        converged = abs(candidate - rate) <= 1e-15 * (1.0 + rate) or high - low <= 1e-15 * (1.0 + high)
        rate = candidate
        if converged:
            break
    return _round_apr(flows, amount_financed, rate, per_year)


def _round_apr(
    flows: Sequence[_Flow], amount_financed: Decimal, rate: float, per_year: tuple[int, int]
) -> Decimal:
    """Round i × per_year × 100 half-up to 4 decimals; decide exactly when the float is near the boundary."""
    per_num, per_den = per_year
    scaled = rate * per_num / per_den * 100 * 10_000
    floor = math.floor(scaled)
    fraction = scaled - floor
    if abs(fraction - 0.5) < _BOUNDARY_GUARD:
        boundary = _EXACT.divide(Decimal((2 * floor + 1) * per_den), Decimal(2 * per_num * 100 * 10_000))
        # PV decreases in i: PV(boundary) >= A means the root is at or beyond the boundary -> round up.
        up = _present_value_exact(flows, boundary) >= amount_financed
        units = floor + 1 if up else floor
    else:
        units = math.floor(scaled + 0.5)
    return Decimal(units).scaleb(-4).quantize(_FOUR_DP, rounding=ROUND_HALF_UP)


def apr_percent(
    amount_financed: Decimal,
    disbursement_date: date,
    payments: Sequence[tuple[date, Decimal]],
    frequency: Frequency,
    *,
    anchor_day: int | None = None,
    interval: int = 1,
) -> Decimal:
    """Reg Z App. J actuarial APR in percent, 4 decimals; unit period = the payment frequency.

    Times are measured from the disbursement to each payment date per App. J (b)(5); `anchor_day` is the
    day of month the payment series is scheduled on (default: the latest day of month among the payments,
    which recovers month-end and 29th/30th series).
    """
    if anchor_day is None and payments:
        anchor_day = max(paid_on.day for paid_on, _ in payments)
    flows = [
        (*unit_periods(disbursement_date, paid_on, frequency, anchor_day, interval), Decimal(amount))
        for paid_on, amount in payments
    ]
    return _solve(Decimal(amount_financed), flows, _per_year(frequency, interval))


def schedule_apr(schedule: Schedule) -> Decimal:
    """APR of a schedule: amount financed = principal − upfront fee (App. J; § 1026.18(b)), payments = totals.

    Without first_payment_date, payment k is exactly k unit periods after disbursement (CONTRACT "Schedules").
    """
    terms = schedule.terms
    financed = Decimal(terms.principal) - Decimal(terms.upfront_fee)
    first = terms.first_payment_date
    if first is None:
        flows: list[_Flow] = [(row.number, 0, 1, row.total) for row in schedule.installments]
    else:
        flows = [
            (
                *unit_periods(
                    terms.disbursement_date, row.due_date, terms.frequency, first.day, terms.frequency_interval
                ),
                row.total,
            )
            for row in schedule.installments
        ]
    return _solve(financed, flows, _per_year(terms.frequency, terms.frequency_interval))


def regular_apr_percent(
    amount_financed: Decimal, amounts: Sequence[Decimal], frequency: Frequency, interval: int = 1
) -> Decimal:
    """APR when payment k falls exactly k unit periods after the disbursement (no first_payment_date)."""
    flows: list[_Flow] = [(k, 0, 1, Decimal(a)) for k, a in enumerate(amounts, 1)]
    return _solve(Decimal(amount_financed), flows, _per_year(frequency, interval))
