import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import MoneyIn, MoneyOut, RateIn, StrictModel

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class LoanCreate(StrictModel):
    borrower_id: str = Field(max_length=36)
    product_id: str = Field(max_length=36)
    principal: MoneyIn
    term: int | None = Field(default=None, ge=1, le=1200, description="Installments; default when the product has one")
    annual_rate_percent: RateIn | None = Field(default=None, description="Default: the product's rate")
    expected_disbursement_date: dt.date | None = None
    first_payment_date: dt.date | None = None
    external_id: ExternalId | None = None


class ApproveIn(StrictModel):
    approved_principal: MoneyIn | None = None
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class ReasonIn(StrictModel):
    reason: Reason


class WithdrawIn(StrictModel):
    reason: Reason | None = None


class DisburseIn(StrictModel):
    date: dt.date | None = Field(default=None, description="Default: the business date")
    amount: MoneyIn | None = Field(default=None, description="Default: the approved principal")


class PaymentIn(StrictModel):
    amount: MoneyIn
    date: dt.date | None = Field(default=None, description="Default: the business date; earlier dates are backdated")
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = None
    external_id: ExternalId | None = None
    payoff_quote_id: str | None = Field(
        default=None, max_length=36, description="Pay a stored payoff quote: at least its total, by its valid_until"
    )


class WriteOffIn(StrictModel):
    date: dt.date | None = None
    reason: Reason


class RefundIn(StrictModel):
    amount: MoneyIn | None = Field(default=None, description="Default: the whole credit balance")
    date: dt.date | None = None
    reason: Reason | None = None


class Balances(BaseModel):
    principal: MoneyOut
    interest: MoneyOut = Field(description="Interest accrued and unpaid (never interest not yet accrued)")
    fees: MoneyOut
    penalties: MoneyOut
    interest_in_advance: MoneyOut = Field(
        description="Interest paid before it accrued (an installment paid early): credited back at payoff"
    )
    total: MoneyOut = Field(
        description="principal + interest + fees + penalties - interest_in_advance: the payoff for the date "
        "(except on a late-fee trigger day, whose fee a payment that day does not owe)"
    )
    credit: MoneyOut


class NextDue(BaseModel):
    date: dt.date
    amount: MoneyOut


class LoanOut(BaseModel):
    id: str
    account_no: str | None = Field(default=None, description="Human-readable and unique: branch code + sequence")
    paid_through: dt.date | None = Field(
        default=None, description="Due date of the last installment fully paid (with every one before it)"
    )
    status: str
    borrower_id: str
    product_id: str
    branch_id: str
    currency: str
    principal: MoneyOut
    annual_rate_percent: str
    apr_percent: str | None = Field(
        default=None,
        description="Reg Z App. J APR fixed at disbursement (4 decimals): fees deducted at disbursement are prepaid "
        "finance charges, installment fees are paid with the installments; null before disbursement",
    )
    term: int
    disbursement_date: dt.date | None
    maturity_date: dt.date | None
    balances: Balances
    days_past_due: int
    next_due: NextDue | None
    version: int
    as_of: dt.date
    external_id: str | None
    requested_principal: MoneyOut
    approved_principal: MoneyOut | None
    disbursed_principal: MoneyOut | None
    installment_amount: MoneyOut
    delinquency_bucket: str = Field(description="current, 1-30, 31-60, 61-90, 90+, or written_off")
    accrual_status: str = Field(
        default="accruing",
        description="accruing, or non_accrual while days past due exceed the product's non_accrual_after_days",
    )
    interest_in_suspense: MoneyOut | None = Field(
        default=None,
        description="recognised interest held in suspense (not income) until collected; part of balances.interest",
    )
    frequency: str
    frequency_interval: int = 1
    amortization: str
    interest_method: str
    day_count: str
    grace_principal_periods: int
    expected_disbursement_date: dt.date | None
    first_payment_date: dt.date | None
    submitted_on: dt.date
    approved_on: dt.date | None
    closed_on: dt.date | None
    written_off_on: dt.date | None
    allowed_actions: list[str]
    created_at: dt.datetime


class PaidParts(BaseModel):
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut


class WaivedParts(BaseModel):
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut


class InstallmentOut(BaseModel):
    number: int
    period_start: dt.date
    due_date: dt.date
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut
    total: MoneyOut
    paid: PaidParts
    waived: WaivedParts = Field(description="Forgiven by waivers; outstanding = total - paid - waived")
    outstanding: MoneyOut
    status: str
    late_fee_date: dt.date | None


class AccrualSegmentOut(BaseModel):
    start: dt.date
    end: dt.date
    days: int = Field(description="Calendar days from start to end")
    principal: MoneyOut = Field(description="The principal outstanding over the segment")
    interest: MoneyOut = Field(description="principal x rate x day-count fraction, rounded half-up once")
    projected: bool = Field(description="After the last event: assumes each installment is paid on its due date")


class InstallmentInterestOut(BaseModel):
    """How an installment's interest arises. Simple-interest loans (`interest_recalculation: daily`) list the
    accrual segments of its period (they end at due dates and at every event); fixed schedules show the one
    period on the balance it opened with."""

    loan_id: str
    number: int
    period_start: dt.date
    due_date: dt.date
    interest_recalculation: str
    annual_rate_percent: str
    day_count: str
    interest: MoneyOut
    segments: list[AccrualSegmentOut]


class ScheduleOut(BaseModel):
    loan_id: str
    as_of: dt.date
    currency: str
    installments: list[InstallmentOut]


class AllocationOut(BaseModel):
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut
    overpayment: MoneyOut
    recovery: MoneyOut


class TransactionOut(BaseModel):
    id: str
    type: str
    date: dt.date
    amount: MoneyOut
    allocation: AllocationOut
    reversed: bool
    reversal_of: str | None
    channel: str | None
    external_id: str | None
    journal_entry_id: str | None
    created_at: dt.datetime


class PaymentOut(BaseModel):
    transaction_id: str
    loan_id: str
    date: dt.date
    amount: MoneyOut
    allocation: AllocationOut
    loan_status: str
    loan_version: int


class PayoffOut(BaseModel):
    loan_id: str
    date: dt.date
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut
    total: MoneyOut
    per_diem: MoneyOut


class JournalLinePreview(BaseModel):
    account_code: str
    debit: MoneyOut
    credit: MoneyOut


class JournalEntryPreview(BaseModel):
    entry_type: str
    effective_date: dt.date
    lines: list[JournalLinePreview]


class DryRunOut(BaseModel):
    """What the action would do; nothing was written."""

    dry_run: bool = True
    loan: LoanOut
    allocation: AllocationOut | None = None
    installments: list[InstallmentOut] | None = None
    journal_entries: list[JournalEntryPreview]


class AuditOut(BaseModel):
    at: dt.datetime
    username: str | None
    action: str
    request_id: str | None
    before_status: str | None
    after_status: str | None
    detail: dict[str, object]
