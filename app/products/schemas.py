"""Product requests and responses. Pydantic checks types and shapes only; every limit and every impossible
combination is a rule in app/products/rules.py, so the whole capability check reads as one table."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from app.core.schemas import MoneyIn, MoneyOut, RateIn, StrictModel
from app.domain.calendar import DayCount, Frequency
from app.domain.instruments import ChargeCollection, ChargeKind, ProductCharge
from app.domain.money import currency, format_money, from_minor
from app.domain.schedule import Amortization, InterestMethod
from app.domain.servicing import InterestRecalculation, Prepayment
from app.products.models import Product

RATE_SCALE = 6  # rates are stored as integer micro-percent


class AllocationBucket(StrEnum):
    penalties = "penalties"
    fees = "fees"
    interest = "interest"
    principal = "principal"


DEFAULT_ALLOCATION_ORDER = (
    AllocationBucket.penalties,
    AllocationBucket.fees,
    AllocationBucket.interest,
    AllocationBucket.principal,
)


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


ProductName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_printable)
]


class LateFeeIn(StrictModel):
    """At most one of `amount` (a fixed fee per overdue installment) and `percent_of_overdue`; neither means the
    product charges no late fee. Charged once per installment when its days past due exceed `grace_days`."""

    amount: MoneyIn | None = None
    percent_of_overdue: RateIn | None = None
    grace_days: int = 0


class ProductChargeIn(StrictModel):
    """One of `amount` (flat) or `percent` (of the principal for disbursement fees, of the installment's
    principal + interest for installment fees, of the returned repayment for NSF fees). `collection` only for
    disbursement fees: deducted (default; the borrower receives principal - fee) or capitalized."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: ProductName
    kind: ChargeKind
    amount: MoneyIn | None = None
    percent: RateIn | None = None
    collection: ChargeCollection | None = None


class ProductChargeOut(BaseModel):
    code: str
    name: str
    kind: ChargeKind
    amount: MoneyOut | None
    percent: str | None
    collection: ChargeCollection | None


class ProductCreate(StrictModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: ProductName
    currency: str = Field(min_length=1, max_length=3, description="ISO 4217 code, e.g. USD, JPY, KWD")
    min_principal: MoneyIn
    max_principal: MoneyIn
    min_term: int = Field(description="Installments, 1-1200")
    max_term: int = Field(description="Installments, 1-1200")
    annual_rate_percent: RateIn = Field(description="Default nominal annual rate in percent")
    min_rate_percent: RateIn | None = Field(default=None, description="Default: annual_rate_percent")
    max_rate_percent: RateIn | None = Field(default=None, description="Default: annual_rate_percent")
    frequency: Frequency
    frequency_interval: int = Field(
        default=1, description="Every N periods of `frequency` (daily + 15 = every 15 days; monthly + 2 = bimonthly)"
    )
    amortization: Amortization
    interest_method: InterestMethod
    day_count: DayCount
    grace_principal_periods: int = 0
    late_fee: LateFeeIn = Field(default_factory=LateFeeIn)
    allocation_order: list[AllocationBucket] = Field(
        default_factory=lambda: list(DEFAULT_ALLOCATION_ORDER),
        description="A permutation of penalties, fees, interest, principal",
    )
    prepayment: Prepayment = Field(
        default=Prepayment.reduce_term,
        description="Money beyond the current installment: reduce_term (prepay principal, installment kept), "
        "reduce_installment (prepay principal, maturity kept) or pay_ahead (next installments in order)",
    )
    interest_recalculation: InterestRecalculation = Field(
        default=InterestRecalculation.none,
        description="daily: simple interest on the principal actually outstanding (actual/* day counts only)",
    )
    charges: list[ProductChargeIn] = Field(
        default_factory=list, max_length=20, description="Disbursement, installment and NSF fees"
    )
    multi_disbursement: bool = Field(
        default=False, description="further /disburse calls while active, up to the approved principal (tranches)"
    )
    non_accrual_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="While a loan's days past due exceed this, its accrual goes to interest in suspense (2120) "
        "instead of income, moved to income when collected",
    )

    @property
    def effective_min_rate(self) -> Decimal:
        return self.annual_rate_percent if self.min_rate_percent is None else self.min_rate_percent

    @property
    def effective_max_rate(self) -> Decimal:
        return self.annual_rate_percent if self.max_rate_percent is None else self.max_rate_percent


def rate_to_e6(rate: Decimal) -> int:
    return int(rate.scaleb(RATE_SCALE))


def rate_from_e6(value: int) -> Decimal:
    return Decimal(value).scaleb(-RATE_SCALE)


def format_rate(value: int) -> str:
    """Micro-percent to a normalised decimal string: 12_000_000 -> "12", 7_500_000 -> "7.5"."""
    return f"{rate_from_e6(value).normalize():f}"


class LateFeeOut(BaseModel):
    amount: MoneyOut | None
    percent_of_overdue: str | None
    grace_days: int


class ProductOut(BaseModel):
    id: str
    code: str
    name: str
    currency: str
    min_principal: MoneyOut
    max_principal: MoneyOut
    min_term: int
    max_term: int
    annual_rate_percent: str
    min_rate_percent: str
    max_rate_percent: str
    frequency: Frequency
    frequency_interval: int
    amortization: Amortization
    interest_method: InterestMethod
    day_count: DayCount
    grace_principal_periods: int
    late_fee: LateFeeOut
    allocation_order: list[AllocationBucket]
    prepayment: Prepayment
    interest_recalculation: InterestRecalculation
    charges: list[ProductChargeOut]
    multi_disbursement: bool
    non_accrual_after_days: int | None
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, product: Product) -> "ProductOut":
        cur = currency(product.currency)

        def money(units: int) -> str:
            return format_money(from_minor(units, cur), cur)

        fee_amount, fee_percent = product.late_fee_amount_minor, product.late_fee_percent_e6
        return cls(
            id=product.id,
            code=product.code,
            name=product.name,
            currency=product.currency,
            min_principal=money(product.min_principal_minor),
            max_principal=money(product.max_principal_minor),
            min_term=product.min_term,
            max_term=product.max_term,
            annual_rate_percent=format_rate(product.annual_rate_e6),
            min_rate_percent=format_rate(product.min_rate_e6),
            max_rate_percent=format_rate(product.max_rate_e6),
            frequency=Frequency(product.frequency),
            frequency_interval=product.frequency_interval,
            amortization=Amortization(product.amortization),
            interest_method=InterestMethod(product.interest_method),
            day_count=DayCount(product.day_count),
            grace_principal_periods=product.grace_principal_periods,
            late_fee=LateFeeOut(
                amount=None if fee_amount is None else money(fee_amount),
                percent_of_overdue=None if fee_percent is None else format_rate(fee_percent),
                grace_days=product.late_fee_grace_days,
            ),
            allocation_order=[AllocationBucket(b) for b in product.allocation_order],
            prepayment=Prepayment(product.prepayment),
            interest_recalculation=InterestRecalculation(product.interest_recalculation),
            charges=[charge_out(ProductCharge.from_json(c), money) for c in product.charges or []],
            multi_disbursement=product.multi_disbursement,
            non_accrual_after_days=product.non_accrual_after_days,
            is_active=product.is_active,
            created_at=product.created_at,
        )


def charge_out(charge: ProductCharge, money: Callable[[int], str]) -> ProductChargeOut:
    rule = charge.rule
    return ProductChargeOut(
        code=charge.code,
        name=charge.name,
        kind=charge.kind,
        amount=None if rule.amount is None else money(rule.amount),
        percent=None if rule.percent is None else f"{rule.percent.normalize():f}",
        collection=charge.collection,
    )
