"""Schedule preview and interest-explanation requests and responses.

Pydantic checks types and shapes (exact decimals, ISO dates, enum values, integer ranges); the lending rules
(principal and rate limits, minor units, date order, fee below principal, multiples) are the domain's
`ScheduleTerms.validate()`, whose `DomainValidationError.field` is the request field name.
"""

import re
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, StrictInt

from app.core.schemas import MoneyIn, MoneyOut, RateIn, StrictModel
from app.domain.calendar import DayCount, Frequency
from app.domain.explain import InterestExplanation
from app.domain.money import Currency, format_money
from app.domain.schedule import MAX_TERM, Amortization, InterestMethod, Schedule, ScheduledInstallment

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
APR_PATTERN = r"^\d+\.\d{4}$"
EXACT_DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


def _iso_date_text(value: object) -> object:
    """Dates are ISO `YYYY-MM-DD` strings only: no Unix timestamps, no datetimes (pydantic's lax mode takes both)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO date YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
Term = Annotated[StrictInt, Field(ge=1, le=MAX_TERM, description="Number of installments, 1-1200")]


class ScheduleRequest(StrictModel):
    """Loan terms to schedule. Money is a plain decimal string or an integer in the currency's minor units."""

    principal: MoneyIn = Field(description="Amount lent, > 0 and at most 999999999999 (12 integer digits)")
    annual_rate_percent: RateIn = Field(description='Nominal annual rate in percent ("7.5" = 7.5 %), 0-1000')
    term: Term
    frequency: Frequency
    frequency_interval: Annotated[StrictInt, Field(ge=1, le=365)] = Field(
        default=1,
        description="Every N periods of `frequency` (daily + 15 = every 15 days; monthly + 2 = every two months); "
        "one period spans at most a year",
    )
    disbursement_date: IsoDate
    first_payment_date: IsoDate | None = Field(
        default=None,
        description="After the disbursement date and within two periods of it (an odd first period). "
        "Default: one period after the disbursement date.",
    )
    amortization: Amortization = Amortization.equal_installments
    interest_method: InterestMethod = InterestMethod.declining_balance
    day_count: DayCount = DayCount.thirty_360
    grace_principal_periods: Annotated[StrictInt, Field(ge=0, le=MAX_TERM - 1)] = Field(
        default=0, description="Leading interest-only periods; fewer than `term`"
    )
    upfront_fee: MoneyIn = Field(
        default=Decimal(0),
        description="Prepaid finance charge deducted at disbursement (lowers the amount financed for the APR); "
        "at least 0 and below the principal",
    )
    currency: str = Field(
        default="USD", min_length=3, max_length=3, description="ISO 4217 code, e.g. USD, EUR, JPY (0 decimals), KWD (3)"
    )
    installment_multiple_of: MoneyIn | None = Field(
        default=None,
        description='Round the regular installment half-up to a multiple of this (e.g. "1" or "20"); '
        "the last installment absorbs the residual. Only with equal_installments.",
    )


class ExplainRequest(ScheduleRequest):
    installment_number: Annotated[StrictInt, Field(ge=1, le=MAX_TERM)] = Field(
        description="1-based installment whose interest to explain"
    )


class ScheduledInstallmentOut(BaseModel):
    number: int
    due_date: date
    principal: MoneyOut
    interest: MoneyOut
    total: MoneyOut
    balance: MoneyOut = Field(description="Principal outstanding after this installment")

    @classmethod
    def of(cls, row: ScheduledInstallment, cur: Currency) -> "ScheduledInstallmentOut":
        return cls(
            number=row.number,
            due_date=row.due_date,
            principal=_money(row.principal, cur),
            interest=_money(row.interest, cur),
            total=_money(row.total, cur),
            balance=_money(row.balance, cur),
        )


class TotalsOut(BaseModel):
    principal: MoneyOut
    interest: MoneyOut
    total: MoneyOut


class SchedulePreviewOut(BaseModel):
    currency: str
    installment_amount: MoneyOut = Field(
        description="The regular amortizing installment (with grace periods, the annuity over the periods after grace)"
    )
    installments: list[ScheduledInstallmentOut]
    totals: TotalsOut
    apr_percent: Annotated[str, Field(pattern=APR_PATTERN)] = Field(
        description="Regulation Z Appendix J actuarial APR in percent, 4 decimals"
    )
    amount_financed: MoneyOut = Field(description="Principal minus the upfront fee (Reg Z § 1026.18(b))")
    finance_charge: MoneyOut = Field(description="Total interest plus the upfront fee (Reg Z § 1026.4)")
    upfront_fee: MoneyOut
    disbursement_date: date
    first_payment_date: date
    maturity_date: date = Field(description="Due date of the last installment")

    @classmethod
    def of(cls, schedule: Schedule, apr_percent: Decimal) -> "SchedulePreviewOut":
        terms, rows = schedule.terms, schedule.installments
        cur = terms.currency
        fee = Decimal(terms.upfront_fee)
        return cls(
            currency=cur.code,
            installment_amount=_money(schedule.installment_amount, cur),
            installments=[ScheduledInstallmentOut.of(row, cur) for row in rows],
            totals=TotalsOut(
                principal=_money(schedule.total_principal, cur),
                interest=_money(schedule.total_interest, cur),
                total=_money(schedule.total, cur),
            ),
            apr_percent=f"{apr_percent:f}",
            amount_financed=_money(Decimal(terms.principal) - fee, cur),
            finance_charge=_money(schedule.total_interest + fee, cur),
            upfront_fee=_money(fee, cur),
            disbursement_date=terms.disbursement_date,
            first_payment_date=rows[0].due_date,
            maturity_date=rows[-1].due_date,
        )


class DayNumbersOut(BaseModel):
    """30/360 US day and month numbers after the end-of-month adjustments (odd 30/360 periods only)."""

    d1: int
    m1: int
    y1: int
    d2: int
    m2: int
    y2: int

    @classmethod
    def of(cls, numbers: tuple[int, int, int, int, int, int]) -> "DayNumbersOut":
        d1, m1, y1, d2, m2, y2 = numbers
        return cls(d1=d1, m1=m1, y1=y1, d2=d2, m2=m2, y2=y2)


ExactDecimal = Annotated[str, Field(pattern=EXACT_DECIMAL_PATTERN)]


class InterestExplanationOut(BaseModel):
    installment_number: int
    installment: ScheduledInstallmentOut
    currency: str
    interest_method: InterestMethod
    opening_balance: MoneyOut = Field(description="Balance the interest accrues on (flat: the original principal)")
    annual_rate_percent: ExactDecimal
    day_count: DayCount
    period_start: date
    period_end: date
    regular_period: bool = Field(description="A full period on the due-date grid (not an odd first period)")
    day_numbers: DayNumbersOut | None = Field(description="30/360 US adjusted dates, for odd 30/360 periods")
    days: int
    year_fraction_numerator: int
    year_fraction_denominator: int
    year_fraction: ExactDecimal = Field(description="numerator / denominator to 50 significant digits")
    unrounded_interest: ExactDecimal = Field(description="Exact interest before rounding (50 significant digits)")
    rounding_mode: str = Field(description='Always "half_up"')
    rounding_place: ExactDecimal = Field(description='The minor unit rounded to, e.g. "0.01"')
    rounded_interest: MoneyOut
    scheduled_interest: MoneyOut = Field(description="The interest in the schedule row (differs only on a residual)")
    residual_to_last: MoneyOut | None = Field(
        description="On the last installment only: its total minus the regular installment (the absorbed residual)"
    )
    formula: str

    @classmethod
    def of(cls, schedule: Schedule, why: InterestExplanation) -> "InterestExplanationOut":
        cur = schedule.terms.currency
        numbers = why.day_numbers
        return cls(
            installment_number=why.number,
            installment=ScheduledInstallmentOut.of(schedule.installments[why.number - 1], cur),
            currency=cur.code,
            interest_method=why.interest_method,
            opening_balance=_money(why.opening_balance, cur),
            annual_rate_percent=_plain(why.annual_rate_percent),
            day_count=why.day_count,
            period_start=why.period_start,
            period_end=why.period_end,
            regular_period=why.regular_period,
            day_numbers=None if numbers is None else DayNumbersOut.of(numbers),
            days=why.days,
            year_fraction_numerator=why.year_fraction_numerator,
            year_fraction_denominator=why.year_fraction_denominator,
            year_fraction=_plain(why.year_fraction),
            unrounded_interest=_plain(why.unrounded_interest),
            rounding_mode=why.rounding_mode.removeprefix("ROUND_").lower(),
            rounding_place=_plain(why.rounding_place),
            rounded_interest=_money(why.rounded_interest, cur),
            scheduled_interest=_money(why.scheduled_interest, cur),
            residual_to_last=None if why.residual_to_last is None else _money(why.residual_to_last, cur),
            formula=why.formula,
        )


def _money(amount: Decimal, cur: Currency) -> str:
    """`format_money`, with a fast path for the engine's amounts, which already carry exactly the currency's
    minor units (a 360-row schedule formats 1,440 amounts; this halves the cost). Anything else, including
    negatives and amounts with other exponents, goes through `format_money` and its exactness check."""
    if not amount.is_signed() and amount.as_tuple().exponent == -cur.minor_units:
        return f"{amount:f}"
    return format_money(amount, cur)


def _plain(value: Decimal) -> str:
    """A Decimal as a plain string without exponent, trailing zeros kept as computed ("0.01", "75.00")."""
    return f"{value:f}"
