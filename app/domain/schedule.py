"""Repayment schedules: equal installments (annuity), equal principal, interest-only; declining or flat interest.

All arithmetic runs on integer minor units with exact rational interest, so there is exactly one rounding
per amount (half-up to the currency's minor unit) and the last installment absorbs every residual.
Rules: CONTRACT.md "Schedules".
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import TypeVar

from app.domain.calendar import (
    DayCount,
    Frequency,
    add_periods,
    day_count,
    due_date,
    max_interval,
    year_fraction_of_period,
)
from app.domain.errors import DomainValidationError
from app.domain.money import Currency, from_minor, to_minor

__all__ = [
    "MAX_PRINCIPAL",
    "MAX_RATE_PERCENT",
    "MAX_TERM",
    "Amortization",
    "InterestMethod",
    "Schedule",
    "ScheduleTerms",
    "ScheduledInstallment",
    "flat_interest_total",
    "generate_schedule",
    "half_up_div",
    "interest_fraction",
    "is_regular_period",
    "period_interest",
    "reamortize",
    "reamortize_keeping_maturity",
]

MAX_PRINCIPAL = Decimal(10) ** 12
MAX_TERM = 1200
MAX_RATE_PERCENT = Decimal(1000)
# Rates are stored as integer micro-percent (ARCHITECTURE "Money in storage").
MAX_RATE_DECIMALS = 6
_HIGH = Context(prec=60)


class Amortization(StrEnum):
    equal_installments = "equal_installments"
    equal_principal = "equal_principal"
    interest_only = "interest_only"


class InterestMethod(StrEnum):
    declining_balance = "declining_balance"
    flat = "flat"


def _fail(field: str, message: str) -> DomainValidationError:
    return DomainValidationError(field, message)


def _check_amount(value: object, cur: Currency, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise _fail(field, "must be a Decimal amount")
    amount = Decimal(value)
    if not amount.is_finite():
        raise _fail(field, "must be a finite amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -cur.minor_units and amount != amount.quantize(cur.exponent):
        raise _fail(field, f"has more than {cur.minor_units} decimal places allowed for {cur.code}")
    return amount


def _check_int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, f"must be an integer from {low} to {high}")
    return value


_E = TypeVar("_E", bound=StrEnum)


def _check_enum(enum: type[_E], value: object, field: str) -> _E:
    allowed = ", ".join(member.value for member in enum)
    if not isinstance(value, str):
        raise _fail(field, f"must be one of {allowed}")
    try:
        return enum(value)
    except ValueError:
        raise _fail(field, f"must be one of {allowed}") from None


@dataclass(frozen=True, slots=True)
class ScheduleTerms:
    """Everything that determines a schedule. Call `validate()` before trusting input from outside."""

    principal: Decimal
    annual_rate_percent: Decimal
    term: int
    frequency: Frequency
    disbursement_date: date
    currency: Currency
    first_payment_date: date | None = None
    amortization: Amortization = Amortization.equal_installments
    interest_method: InterestMethod = InterestMethod.declining_balance
    day_count: DayCount = DayCount.thirty_360
    grace_principal_periods: int = 0
    upfront_fee: Decimal = Decimal(0)
    installment_multiple_of: Decimal | None = None
    frequency_interval: int = 1  # every N periods of `frequency` (daily + 15 = every 15 days)

    def validate(self) -> None:
        """Raise DomainValidationError naming the offending field; return None when the terms are usable."""
        if not isinstance(self.currency, Currency):
            raise _fail("currency", "must be an ISO 4217 currency")
        cur = self.currency
        principal = _check_amount(self.principal, cur, "principal")
        if not 0 < principal <= MAX_PRINCIPAL:
            raise _fail("principal", f"must be greater than 0 and at most {MAX_PRINCIPAL}")
        self._validate_rate()
        term = _check_int(self.term, "term", 1, MAX_TERM)
        frequency = _check_enum(Frequency, self.frequency, "frequency")
        _check_int(self.frequency_interval, "frequency_interval", 1, max_interval(frequency))
        _check_enum(Amortization, self.amortization, "amortization")
        _check_enum(InterestMethod, self.interest_method, "interest_method")
        _check_enum(DayCount, self.day_count, "day_count")
        self._validate_dates(frequency, term)
        _check_int(self.grace_principal_periods, "grace_principal_periods", 0, term - 1)
        fee = _check_amount(self.upfront_fee, cur, "upfront_fee")
        if not 0 <= fee < principal:
            raise _fail("upfront_fee", "must be at least 0 and less than the principal")
        self._validate_multiple(principal)

    def _validate_rate(self) -> None:
        rate = self.annual_rate_percent
        if isinstance(rate, bool) or not isinstance(rate, Decimal | int) or not Decimal(rate).is_finite():
            raise _fail("annual_rate_percent", "must be a finite Decimal")
        if not 0 <= rate <= MAX_RATE_PERCENT:
            raise _fail("annual_rate_percent", f"must be from 0 to {MAX_RATE_PERCENT} percent")
        if Decimal(rate) != Decimal(rate).quantize(Decimal(1).scaleb(-MAX_RATE_DECIMALS)):
            raise _fail("annual_rate_percent", f"must have at most {MAX_RATE_DECIMALS} decimal places")

    def _validate_dates(self, frequency: Frequency, term: int) -> None:
        disbursed = self.disbursement_date
        if not isinstance(disbursed, date) or hasattr(disbursed, "hour"):
            raise _fail("disbursement_date", "must be a date")
        first = self.first_payment_date
        if first is not None:
            if not isinstance(first, date) or hasattr(first, "hour"):
                raise _fail("first_payment_date", "must be a date")
            if first <= disbursed:
                raise _fail("first_payment_date", "must be after the disbursement date")
            try:
                latest = add_periods(disbursed, frequency, 2, self.frequency_interval)
            except (OverflowError, ValueError):
                latest = date.max
            if first > latest:
                raise _fail("first_payment_date", f"must be within two {frequency.value} periods of the disbursement")
        try:
            due_date(disbursed, frequency, term, first, self.frequency_interval)
        except (OverflowError, ValueError):
            raise _fail("term", "the last due date falls after the year 9999") from None

    def _validate_multiple(self, principal: Decimal) -> None:
        multiple = self.installment_multiple_of
        if multiple is None:
            return
        multiple = _check_amount(multiple, self.currency, "installment_multiple_of")
        if not 0 < multiple <= principal:
            raise _fail("installment_multiple_of", "must be greater than 0 and at most the principal")
        if self.amortization != Amortization.equal_installments:
            raise _fail("installment_multiple_of", "only applies to equal_installments amortization")


@dataclass(frozen=True, slots=True)
class ScheduledInstallment:
    number: int
    period_start: date
    due_date: date
    principal: Decimal
    interest: Decimal
    total: Decimal
    balance: Decimal


@dataclass(frozen=True, slots=True)
class Schedule:
    """A generated schedule. `installment_amount` is the regular amortizing installment (after any grace)."""

    terms: ScheduleTerms
    installment_amount: Decimal
    installments: tuple[ScheduledInstallment, ...]

    @property
    def total_principal(self) -> Decimal:
        return sum((i.principal for i in self.installments), self.terms.currency.exponent * 0)

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.installments), self.terms.currency.exponent * 0)

    @property
    def total(self) -> Decimal:
        return sum((i.total for i in self.installments), self.terms.currency.exponent * 0)


def half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (away from zero on .5) for non-negative numerator, denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def _level(total: int, count: int) -> int:
    """Per-period share of `total` over `count` periods, half-up; rounded down when half-up would leave the
    last period (which absorbs the residual) negative."""
    share = half_up_div(total, count)
    if share * (count - 1) > total:
        share = total // count
    return share


def _rate_ratio(terms: ScheduleTerms) -> tuple[int, int]:
    """annual_rate_percent / 100 as an exact integer ratio."""
    numerator, denominator = Decimal(terms.annual_rate_percent).as_integer_ratio()
    return numerator, denominator * 100


def _first_period_regular(terms: ScheduleTerms) -> bool:
    first = terms.first_payment_date
    return first is None or first == add_periods(terms.disbursement_date, terms.frequency, 1, terms.frequency_interval)


def _natural_start(terms: ScheduleTerms, number: int) -> date:
    if number == 1:
        return terms.disbursement_date
    return due_date(
        terms.disbursement_date, terms.frequency, number - 1, terms.first_payment_date, terms.frequency_interval
    )


def is_regular_period(terms: ScheduleTerms, period_start: date, due: date, number: int) -> bool:
    """True when installment `number` runs a full period on the due-date grid (not an odd first period)."""
    if number == 1 and not _first_period_regular(terms):
        return False
    return period_start == _natural_start(terms, number) and due == due_date(
        terms.disbursement_date, terms.frequency, number, terms.first_payment_date, terms.frequency_interval
    )


def interest_fraction(terms: ScheduleTerms, period_start: date, due: date, number: int) -> tuple[int, int]:
    """The exact year fraction (numerator, denominator) used for installment `number`'s interest.

    30/360 regular periods are 1/periods-per-year (30 days per month; rate/52 or rate/26 for weekly and
    biweekly, CONTRACT "Schedules"); odd periods and the actual/* conventions use the day count.
    """
    if terms.day_count == DayCount.thirty_360 and is_regular_period(terms, period_start, due, number):
        return year_fraction_of_period(terms.frequency, terms.frequency_interval)
    return day_count(terms.day_count).fraction(period_start, due)


def period_interest(balance: Decimal, terms: ScheduleTerms, period_start: date, due: date, number: int) -> Decimal:
    """Declining-balance interest for one period, ROUNDED half-up to the currency's minor unit.

    balance × annual_rate_percent/100 × year fraction (see `interest_fraction`), computed exactly on
    integers and rounded once. For flat-method loans see `flat_interest_total`.
    """
    cur = terms.currency
    rate_num, rate_den = _rate_ratio(terms)
    frac_num, frac_den = interest_fraction(terms, period_start, due, number)
    units = half_up_div(to_minor(balance, cur) * rate_num * frac_num, rate_den * frac_den)
    return from_minor(units, cur)


def flat_interest_total(terms: ScheduleTerms) -> Decimal:
    """Flat method: principal × rate × term / periods-per-year, rounded half-up (CONTRACT "Schedules")."""
    return from_minor(_flat_total_minor(terms), terms.currency)


def _flat_total_minor(terms: ScheduleTerms) -> int:
    rate_num, rate_den = _rate_ratio(terms)
    principal = to_minor(terms.principal, terms.currency)
    years_num, years_den = year_fraction_of_period(terms.frequency, terms.frequency_interval)
    return half_up_div(principal * rate_num * terms.term * years_num, rate_den * years_den)


def _annuity_minor(principal: int, terms: ScheduleTerms, periods: int) -> int:
    """Level payment over `periods` at the periodic rate annual/periods-per-year, half-up to the minor unit."""
    rate_num, rate_den = _rate_ratio(terms)
    if rate_num == 0:
        return _level(principal, periods)
    years_num, years_den = year_fraction_of_period(terms.frequency, terms.frequency_interval)
    i = _HIGH.divide(Decimal(rate_num * years_num), Decimal(rate_den * years_den))
    discount = _HIGH.power(_HIGH.add(Decimal(1), i), -periods)
    payment = _HIGH.divide(_HIGH.multiply(Decimal(principal), i), _HIGH.subtract(Decimal(1), discount))
    return int(payment.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class _Plan:
    installment: int
    principal_part: int
    flat_per: int
    flat_total: int


def _plan(terms: ScheduleTerms) -> _Plan:
    cur = terms.currency
    principal = to_minor(terms.principal, cur)
    amortizing = terms.term - terms.grace_principal_periods
    flat_total = flat_per = 0
    if terms.interest_method == InterestMethod.flat:
        flat_total = _flat_total_minor(terms)
        flat_per = _level(flat_total, terms.term)
    principal_part = _level(principal, amortizing)
    if terms.amortization == Amortization.interest_only:
        rate_num, rate_den = _rate_ratio(terms)
        years_num, years_den = year_fraction_of_period(terms.frequency, terms.frequency_interval)
        regular = half_up_div(principal * rate_num * years_num, rate_den * years_den)
        installment = flat_per if terms.interest_method == InterestMethod.flat else regular
        return _Plan(installment, 0, flat_per, flat_total)
    if terms.amortization == Amortization.equal_principal:
        return _Plan(0, principal_part, flat_per, flat_total)
    if terms.interest_method == InterestMethod.flat:
        installment = flat_per + principal_part
    else:
        installment = _annuity_minor(principal, terms, amortizing)
    if terms.installment_multiple_of is not None:
        multiple = to_minor(terms.installment_multiple_of, cur)
        installment = half_up_div(installment, multiple) * multiple
        if installment <= 0:
            raise _fail("installment_multiple_of", "rounds the installment to zero; use a smaller multiple")
    return _Plan(installment, principal_part, flat_per, flat_total)


def _build(
    terms: ScheduleTerms, plan: _Plan, balance: int, from_number: int, period_start: date, flat_remaining: int
) -> tuple[ScheduledInstallment, ...]:
    """Installments from `from_number` until the balance is 0 or the term ends (the last takes what remains)."""
    scale, _decimal = -terms.currency.minor_units, Decimal  # inlined from_minor: this loop is the hot path
    n, grace, f = terms.term, terms.grace_principal_periods, terms.frequency
    rate_num, rate_den = _rate_ratio(terms)
    flat = terms.interest_method == InterestMethod.flat
    thirty = terms.day_count == DayCount.thirty_360
    convention = day_count(terms.day_count)
    period_years = year_fraction_of_period(f, terms.frequency_interval)
    interval = terms.frequency_interval
    anchor, shift = (terms.first_payment_date, -1) if terms.first_payment_date else (terms.disbursement_date, 0)
    amortization = terms.amortization
    regular = is_regular_period(
        terms, period_start, add_periods(anchor, f, from_number + shift, interval), from_number
    )
    rows: list[ScheduledInstallment] = []
    start = period_start
    for k in range(from_number, n + 1):
        due = add_periods(anchor, f, k + shift, interval)
        if flat:
            interest = plan.flat_per
        else:
            frac_num, frac_den = period_years if thirty and regular else convention.fraction(start, due)
            interest = half_up_div(balance * rate_num * frac_num, rate_den * frac_den)
        if k == n:
            principal = balance
        elif amortization == Amortization.interest_only or k <= grace:
            principal = 0
        elif amortization == Amortization.equal_principal:
            principal = min(balance, plan.principal_part)
        else:
            # Interest is never capitalised: a period whose interest exceeds the installment is interest-only.
            principal = min(balance, max(0, plan.installment - interest))
        balance -= principal
        if flat and balance == 0:
            interest = flat_remaining
        flat_remaining -= interest
        rows.append(
            ScheduledInstallment(
                k,
                start,
                due,
                _decimal(principal).scaleb(scale),
                _decimal(interest).scaleb(scale),
                _decimal(principal + interest).scaleb(scale),
                _decimal(balance).scaleb(scale),
            )
        )
        if balance == 0:
            break
        start, regular = due, True
    return tuple(rows)


def generate_schedule(terms: ScheduleTerms) -> Schedule:
    """Validate `terms` and build the full schedule (CONTRACT "Schedules")."""
    terms.validate()
    plan = _plan(terms)
    principal = to_minor(terms.principal, terms.currency)
    rows = _build(terms, plan, principal, 1, terms.disbursement_date, plan.flat_total)
    installment = plan.installment
    if terms.amortization == Amortization.equal_principal:
        first_amortizing = rows[min(terms.grace_principal_periods, len(rows) - 1)]
        installment = to_minor(first_amortizing.total, terms.currency)
    return Schedule(terms, from_minor(installment, terms.currency), rows)


def _rebuild_balance(terms: ScheduleTerms, opening_balance: Decimal, from_number: int) -> int:
    """Validated inputs of a re-amortisation: the opening balance in minor units (never negative)."""
    terms.validate()
    _check_int(from_number, "from_number", 1, terms.term)
    balance = to_minor(_check_amount(opening_balance, terms.currency, "opening_balance"), terms.currency)
    if balance < 0:
        raise _fail("opening_balance", "must not be negative")
    return balance


def reamortize(
    terms: ScheduleTerms, opening_balance: Decimal, from_number: int, period_start: date, installment_amount: Decimal
) -> tuple[ScheduledInstallment, ...]:
    """Rebuild installments `from_number`… from `opening_balance` on the original due-date grid.

    Keeps the installment amount and shortens the term (used after a principal prepayment): equal
    installments keep `installment_amount`; equal principal keeps its regular principal part; interest-only
    keeps the bullet at the original last due date. Interest for `from_number` runs from `period_start` (an
    odd period when that is not the previous due date). Never more installments than the original term;
    the final one takes whatever remains. Flat interest is contractual: the per-period amount is unchanged
    and the last rebuilt installment collects the flat interest still due.
    """
    balance = _rebuild_balance(terms, opening_balance, from_number)
    if balance == 0:
        return ()
    plan = _plan(terms)
    if terms.amortization == Amortization.equal_installments:
        cur = terms.currency
        installment = to_minor(_check_amount(installment_amount, cur, "installment_amount"), cur)
        if installment < 0:
            raise _fail("installment_amount", "must not be negative")
        plan = _Plan(installment, plan.principal_part, plan.flat_per, plan.flat_total)
    flat_remaining = plan.flat_total - plan.flat_per * (from_number - 1)
    return _build(terms, plan, balance, from_number, period_start, max(flat_remaining, 0))


def reamortize_keeping_maturity(
    terms: ScheduleTerms, opening_balance: Decimal, from_number: int, period_start: date
) -> tuple[ScheduledInstallment, ...]:
    """Rebuild installments `from_number`…`term` from `opening_balance` with a new level installment, keeping
    the maturity (product option `prepayment: reduce_installment`): equal installments get the annuity of the
    balance over the periods left, equal principal the balance spread evenly over them; interest-only and
    flat interest are unchanged in shape (bullet at maturity; the contractual flat amount per period)."""
    balance = _rebuild_balance(terms, opening_balance, from_number)
    if balance == 0:
        return ()
    plan = _plan(terms)
    periods_left = terms.term - from_number + 1
    amortizing = max(1, periods_left - max(0, terms.grace_principal_periods - from_number + 1))
    principal_part = _level(balance, amortizing)
    installment = plan.installment
    if terms.amortization == Amortization.equal_installments:
        if terms.interest_method == InterestMethod.flat:
            installment = plan.flat_per + principal_part
        else:
            installment = _annuity_minor(balance, terms, amortizing)
    flat_remaining = plan.flat_total - plan.flat_per * (from_number - 1)
    plan = _Plan(installment, principal_part, plan.flat_per, plan.flat_total)
    return _build(terms, plan, balance, from_number, period_start, max(flat_remaining, 0))
