"""Request and response bodies of loan modifications (CONTRACT "Modifications")."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import MoneyIn, MoneyOut, RateIn, StrictModel
from app.loans.schemas import InstallmentOut, Reason

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class ModificationIn(StrictModel):
    type: Literal["reschedule", "payment_holiday", "rate_change", "re_age"]
    effective_date: dt.date | None = Field(default=None, description="Default: the business date; may be in the past")
    note: Note | None = None
    # reschedule (at least one)
    new_term: int | None = Field(
        default=None, ge=1, le=1200, description="reschedule: the loan's new number of installments"
    )
    new_installment_amount: MoneyIn | None = Field(default=None, description="reschedule: keep this installment")
    new_annual_rate_percent: RateIn | None = Field(default=None, description="reschedule: the new nominal rate")
    new_next_due_date: dt.date | None = Field(default=None, description="reschedule: the next due date (new anchor)")
    # payment_holiday
    installments: int | None = Field(default=None, ge=1, le=24, description="payment_holiday: due dates skipped")
    interest: Literal["capitalize", "spread", "waive"] | None = Field(
        default=None, description="payment_holiday: what happens to the holiday's interest (default capitalize)"
    )
    # rate_change
    annual_rate_percent: RateIn | None = Field(default=None, description="rate_change: the new nominal rate")


class DecisionIn(StrictModel):
    note: Note | None = None


class RejectIn(StrictModel):
    reason: Reason


class PreviewTotals(BaseModel):
    principal: MoneyOut
    interest: MoneyOut
    total: MoneyOut


class ModificationPreview(BaseModel):
    as_of: dt.date
    installment_amount: MoneyOut
    maturity_date: dt.date
    installments: list[InstallmentOut]
    totals: PreviewTotals
    apr_percent: str | None = Field(description="Reg Z App. J APR of the whole loan under the modified schedule")
    balances: dict[str, MoneyOut]
    days_past_due: int


class ModificationOut(BaseModel):
    id: str | None = Field(description="null on a dry run")
    loan_id: str
    type: str
    status: Literal["pending", "approved", "rejected", "preview"]
    effective_date: dt.date
    note: str | None
    params: dict[str, str | int | None]
    requested_by: str
    requested_by_username: str
    decided_by: str | None = None
    decided_by_username: str | None = None
    decided_at: dt.datetime | None = None
    decision_reason: str | None = None
    loan_version: int
    preview: ModificationPreview
    created_at: dt.datetime | None = None
