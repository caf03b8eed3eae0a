"""The product capability check as data: each rule names the request fields it concerns, a predicate that is
true when the request violates it, and the message. Pure: no I/O, evaluated over a validated ProductCreate.

Every rule is evaluated and every violation reported; a rule over two fields reports both, with the same
message, so a client can highlight the pair.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from app.core.errors import FieldError
from app.domain.calendar import DayCount, periods_per_year
from app.domain.errors import DomainValidationError
from app.domain.money import Currency, currency
from app.domain.schedule import MAX_PRINCIPAL, MAX_RATE_PERCENT, MAX_TERM, Amortization, InterestMethod
from app.domain.servicing import InterestRecalculation
from app.products.schemas import RATE_SCALE, AllocationBucket, ProductCreate

MIN_TERM = 1
MAX_TERM_YEARS = 100
MAX_LATE_FEE_PERCENT = Decimal(100)
MAX_LATE_FEE_GRACE_DAYS = 365


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    fields: tuple[str, ...]
    violated: Callable[[ProductCreate], bool]
    message: str

    def errors(self) -> list[FieldError]:
        return [FieldError(field, self.message) for field in self.fields]


def _currency(p: ProductCreate) -> Currency | None:
    try:
        return currency(p.currency)
    except DomainValidationError:
        return None


def product_currency(p: ProductCreate) -> Currency | None:
    """The product's currency, or None when its code is unknown (a rule of its own reports that)."""
    return _currency(p)


def decimal_places(value: Decimal) -> int:
    """Decimal places as written: "1.50" has 2 (the strict reading the money parser uses)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _too_precise_for_currency(amount: Decimal | None, p: ProductCreate) -> bool:
    cur = _currency(p)
    return amount is not None and cur is not None and decimal_places(amount) > cur.minor_units


def _too_precise_rate(rate: Decimal | None) -> bool:
    return rate is not None and decimal_places(rate) > RATE_SCALE


def _rate_out_of_range(rate: Decimal | None) -> bool:
    return rate is not None and not Decimal(0) <= rate <= MAX_RATE_PERCENT


def _term_out_of_range(term: int) -> bool:
    return not MIN_TERM <= term <= MAX_TERM


def _both(a: Decimal | None, b: Decimal | None) -> tuple[Decimal, Decimal] | None:
    return None if a is None or b is None else (a, b)


_DECIMALS = "has more decimal places than the currency allows"
_RATE_RANGE = f"must be from 0 to {MAX_RATE_PERCENT} percent"
_RATE_DECIMALS = f"must have at most {RATE_SCALE} decimal places"
_TERM_RANGE = f"must be from {MIN_TERM} to {MAX_TERM} installments"
_RATE_WINDOW = "the default annual_rate_percent must lie within [min_rate_percent, max_rate_percent]"

RULES: tuple[Rule, ...] = (
    Rule("currency_known", ("currency",), lambda p: _currency(p) is None,
         "is not a supported ISO 4217 currency code"),
    # Principal limits.
    Rule("min_principal_decimals", ("min_principal",),
         lambda p: _too_precise_for_currency(p.min_principal, p), _DECIMALS),
    Rule("max_principal_decimals", ("max_principal",),
         lambda p: _too_precise_for_currency(p.max_principal, p), _DECIMALS),
    Rule("min_principal_positive", ("min_principal",), lambda p: p.min_principal <= 0, "must be greater than 0"),
    Rule("max_principal_cap", ("max_principal",), lambda p: p.max_principal > MAX_PRINCIPAL,
         f"must be at most {MAX_PRINCIPAL}"),
    Rule("principal_range", ("min_principal", "max_principal"), lambda p: p.min_principal > p.max_principal,
         "min_principal must not exceed max_principal"),
    # Terms.
    Rule("min_term_range", ("min_term",), lambda p: _term_out_of_range(p.min_term), _TERM_RANGE),
    Rule("max_term_range", ("max_term",), lambda p: _term_out_of_range(p.max_term), _TERM_RANGE),
    Rule("term_range", ("min_term", "max_term"), lambda p: p.min_term > p.max_term,
         "min_term must not exceed max_term"),
    Rule("interval_span", ("frequency", "frequency_interval"),
         lambda p: not 1 <= p.frequency_interval <= periods_per_year(p.frequency),
         "one period must span at most a year (daily <= 365, weekly <= 52, monthly <= 12, ...)"),
    Rule("term_span", ("max_term", "frequency"),
         lambda p: p.max_term * p.frequency_interval > MAX_TERM_YEARS * periods_per_year(p.frequency),
         f"the longest term must span at most {MAX_TERM_YEARS} years at this frequency"),
    # Rates.
    Rule("annual_rate_range", ("annual_rate_percent",), lambda p: _rate_out_of_range(p.annual_rate_percent),
         _RATE_RANGE),
    Rule("min_rate_range", ("min_rate_percent",), lambda p: _rate_out_of_range(p.min_rate_percent), _RATE_RANGE),
    Rule("max_rate_range", ("max_rate_percent",), lambda p: _rate_out_of_range(p.max_rate_percent), _RATE_RANGE),
    Rule("annual_rate_decimals", ("annual_rate_percent",), lambda p: _too_precise_rate(p.annual_rate_percent),
         _RATE_DECIMALS),
    Rule("min_rate_decimals", ("min_rate_percent",), lambda p: _too_precise_rate(p.min_rate_percent),
         _RATE_DECIMALS),
    Rule("max_rate_decimals", ("max_rate_percent",), lambda p: _too_precise_rate(p.max_rate_percent),
         _RATE_DECIMALS),
    Rule("rate_bounds", ("min_rate_percent", "max_rate_percent"),
         lambda p: (pair := _both(p.min_rate_percent, p.max_rate_percent)) is not None and pair[0] > pair[1],
         "min_rate_percent must not exceed max_rate_percent"),
    Rule("annual_rate_at_least_min", ("annual_rate_percent", "min_rate_percent"),
         lambda p: p.annual_rate_percent < p.effective_min_rate, _RATE_WINDOW),
    Rule("annual_rate_at_most_max", ("annual_rate_percent", "max_rate_percent"),
         lambda p: p.annual_rate_percent > p.effective_max_rate, _RATE_WINDOW),
    # Amortization.
    Rule("grace_not_negative", ("grace_principal_periods",), lambda p: p.grace_principal_periods < 0,
         "must not be negative"),
    Rule("grace_leaves_amortizing_period", ("grace_principal_periods", "min_term"),
         lambda p: p.grace_principal_periods >= p.min_term,
         "principal grace must leave at least one amortizing installment for every allowed term "
         "(grace_principal_periods < min_term)"),
    Rule("flat_needs_equal_installments", ("interest_method", "amortization"),
         lambda p: p.interest_method == InterestMethod.flat and p.amortization != Amortization.equal_installments,
         "flat interest is only supported with equal_installments amortization"),
    # Late fee.
    Rule("late_fee_one_kind", ("late_fee.amount", "late_fee.percent_of_overdue"),
         lambda p: p.late_fee.amount is not None and p.late_fee.percent_of_overdue is not None,
         "give either a fixed late fee amount or a percentage of the overdue amount, not both"),
    Rule("late_fee_amount_decimals", ("late_fee.amount",),
         lambda p: _too_precise_for_currency(p.late_fee.amount, p), _DECIMALS),
    Rule("late_fee_amount_range", ("late_fee.amount",),
         lambda p: p.late_fee.amount is not None and not 0 < p.late_fee.amount <= MAX_PRINCIPAL,
         f"must be greater than 0 and at most {MAX_PRINCIPAL}"),
    Rule("late_fee_percent_range", ("late_fee.percent_of_overdue",),
         lambda p: p.late_fee.percent_of_overdue is not None
         and not 0 < p.late_fee.percent_of_overdue <= MAX_LATE_FEE_PERCENT,
         f"must be greater than 0 and at most {MAX_LATE_FEE_PERCENT} percent"),
    Rule("late_fee_percent_decimals", ("late_fee.percent_of_overdue",),
         lambda p: _too_precise_rate(p.late_fee.percent_of_overdue), _RATE_DECIMALS),
    Rule("late_fee_grace_days_range", ("late_fee.grace_days",),
         lambda p: not 0 <= p.late_fee.grace_days <= MAX_LATE_FEE_GRACE_DAYS,
         f"must be from 0 to {MAX_LATE_FEE_GRACE_DAYS} days"),
    # Payment allocation.
    Rule("allocation_order_permutation", ("allocation_order",),
         lambda p: sorted(p.allocation_order) != sorted(AllocationBucket),
         "must list each of penalties, fees, interest and principal exactly once"),
    # Interest recalculation (simple interest accrues by calendar days on the actual balance).
    Rule("daily_needs_actual_days", ("interest_recalculation", "day_count"),
         lambda p: p.interest_recalculation == InterestRecalculation.daily and p.day_count == DayCount.thirty_360,
         "daily interest recalculation needs an actual/* day count (actual/365, actual/360 or actual/actual), "
         "not 30/360"),
    Rule("daily_needs_declining_balance", ("interest_recalculation", "interest_method"),
         lambda p: p.interest_recalculation == InterestRecalculation.daily
         and p.interest_method != InterestMethod.declining_balance,
         "daily interest recalculation is simple interest on the declining balance, not flat"),
    Rule("daily_needs_equal_installments", ("interest_recalculation", "amortization"),
         lambda p: p.interest_recalculation == InterestRecalculation.daily
         and p.amortization != Amortization.equal_installments,
         "daily interest recalculation services equal installments (a fixed amount due per installment)"),
    Rule("daily_without_principal_grace", ("interest_recalculation", "grace_principal_periods"),
         lambda p: p.interest_recalculation == InterestRecalculation.daily and p.grace_principal_periods > 0,
         "daily interest recalculation has one amount due per installment: no principal grace periods"),
    # Tranches re-amortise a declining-balance schedule (app/domain/modifications.py).
    Rule("multi_disbursement_declining_balance", ("multi_disbursement", "interest_method", "interest_recalculation"),
         lambda p: p.multi_disbursement
         and (p.interest_method != InterestMethod.declining_balance
              or p.interest_recalculation != InterestRecalculation.none),
         "multiple disbursements need declining-balance interest without daily recalculation"),
    # Non-accrual (interest in suspense) follows the fixed schedule's day-by-day recognition.
    Rule("non_accrual_fixed_schedule", ("non_accrual_after_days", "interest_recalculation"),
         lambda p: p.non_accrual_after_days is not None and p.interest_recalculation == InterestRecalculation.daily,
         "non-accrual is available for fixed-schedule interest (interest_recalculation none), not daily"),
)  # fmt: skip


def violations(request: ProductCreate) -> list[Rule]:
    return [rule for rule in RULES if rule.violated(request)]


def field_errors(request: ProductCreate) -> list[FieldError]:
    return [error for rule in violations(request) for error in rule.errors()]
