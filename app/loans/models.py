"""Loans: the terms copied from the product at submission, the materialised snapshot (rewritten from the
projection on every change), the append-only event log, the user-facing transactions and installments."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core import deferred
from app.core.orm import BigId, UTCDateTime, created_at_column, id_column
from app.database import Base
from app.domain.servicing import Allocation


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (
        Index("ix_loans_status_id", "status", "id"),
        Index("ix_loans_branch_status", "branch_id", "status"),
        Index("ix_loans_cob_chunk", "status", text("(insert_seq % 4)"), "insert_seq"),  # migration 0017
    )

    id: Mapped[str] = id_column()
    # Given by the database at insert, in insertion order (migration 0017): close of business chunks by it, so
    # a chunk's loans lie together on the heap.
    insert_seq: Mapped[int | None] = mapped_column(BigInteger, server_default=FetchedValue())
    branch_id: Mapped[str] = mapped_column(ForeignKey("branches.id"))
    borrower_id: Mapped[str] = mapped_column(ForeignKey("borrowers.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)

    # Terms (copied from the product at submission: a product change never alters a booked loan).
    requested_principal: Mapped[int] = mapped_column(BigInteger)
    approved_principal: Mapped[int | None] = mapped_column(BigInteger)
    disbursed_principal: Mapped[int | None] = mapped_column(BigInteger)
    annual_rate_e6: Mapped[int] = mapped_column(BigInteger)
    term: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[str] = mapped_column(String(16))
    amortization: Mapped[str] = mapped_column(String(32))
    interest_method: Mapped[str] = mapped_column(String(32))
    day_count: Mapped[str] = mapped_column(String(16))
    grace_principal_periods: Mapped[int] = mapped_column(Integer, default=0)
    late_fee_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    late_fee_percent_e6: Mapped[int | None] = mapped_column(BigInteger)
    late_fee_grace_days: Mapped[int] = mapped_column(Integer, default=0)
    allocation_order: Mapped[list[str]] = mapped_column(JSON)
    prepayment: Mapped[str] = mapped_column(String(24), default="reduce_term")
    interest_recalculation: Mapped[str] = mapped_column(String(8), default="none")
    # Tranches (product multi_disbursement): disbursed_principal is the first disbursement (the schedule's
    # principal); later tranches are events, their sum kept here for display and the approved-principal cap.
    multi_disbursement: Mapped[bool] = mapped_column(Boolean, default=False)
    tranches_disbursed: Mapped[int] = mapped_column(BigInteger, default=0)
    frequency_interval: Mapped[int] = mapped_column(Integer, default=1)  # every N periods of `frequency`
    non_accrual_after_days: Mapped[int | None] = mapped_column(Integer)
    # jsonb on PostgreSQL: close of business looks roles up in it per loan (migration 0020).
    accounts: Mapped[dict[str, str]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    # Product charges (app/domain/instruments.py ProductCharge.to_json); the APR at disbursement (Reg Z, with
    # deducted fees as prepaid finance charges); installment fees make close of business re-project the loan.
    charges: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    apr_e6: Mapped[int | None] = mapped_column(BigInteger)
    close_per_loan: Mapped[bool] = mapped_column(Boolean, default=False)
    account_no: Mapped[str | None] = mapped_column(String(48), unique=True)  # branch code + sequence (numbering.py)
    paid_through: Mapped[date | None] = mapped_column(Date)  # due date of the last installment paid in a row
    expected_disbursement_date: Mapped[date | None] = mapped_column(Date)
    first_payment_date: Mapped[date | None] = mapped_column(Date)

    # Lifecycle dates (business dates).
    submitted_on: Mapped[date] = mapped_column(Date)
    approved_on: Mapped[date | None] = mapped_column(Date)
    disbursement_date: Mapped[date | None] = mapped_column(Date)
    maturity_date: Mapped[date | None] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    written_off_on: Mapped[date | None] = mapped_column(Date)

    # Snapshot (as of `snapshot_date`), in minor units.
    snapshot_date: Mapped[date | None] = mapped_column(Date)
    installment_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    principal_outstanding: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_outstanding: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_prepaid: Mapped[int] = mapped_column(BigInteger, default=0)  # received in advance, not yet accrued
    fees_outstanding: Mapped[int] = mapped_column(BigInteger, default=0)
    penalties_outstanding: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_recognized: Mapped[int] = mapped_column(BigInteger, default=0)
    # Non-accrual (CONTRACT "Ledger time"): recognised interest held in suspense (account 2120), not income.
    accrual_status: Mapped[str] = mapped_column(String(16), default="accruing", server_default="accruing")
    interest_suspended: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    delinquency_bucket: Mapped[str] = mapped_column(String(8), default="current")
    next_due_date: Mapped[date | None] = mapped_column(Date)
    next_due_amount: Mapped[int | None] = mapped_column(BigInteger)
    past_maturity: Mapped[bool] = mapped_column(Boolean, default=False)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The last outbox sequence of the loan's stream (assigned under the loan lock: no max() per write).
    outbox_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What close of business needs to accrue and age the loan set-based, without reading installments:
    # the installment whose period contains the snapshot date, the interest of the installments before it,
    # and the oldest due date with principal or interest unpaid.
    current_period_start: Mapped[date | None] = mapped_column(Date)
    current_due_date: Mapped[date | None] = mapped_column(Date)
    current_period_interest: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    interest_before_current: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    oldest_unpaid_due_date: Mapped[date | None] = mapped_column(Date)
    # The projection's state besides installments (servicing.Checkpoint), and the latest effective date of
    # any financial event: an event dated after both resumes from the snapshot instead of replaying.
    projection_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    latest_event_date: Mapped[date | None] = mapped_column(Date)

    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoanEvent(Base):
    """Append-only, effective-dated log of everything that happened to a loan."""

    __tablename__ = "loan_events"
    __table_args__ = (UniqueConstraint("loan_id", "seq", name="uq_loan_events_loan_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(24))
    effective_date: Mapped[date] = mapped_column(Date)
    # The business date on which the event was recorded: `?known_at=K` leaves out events booked after K.
    booked_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    reversed_by_seq: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(36))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at_column()


class EventRecord(Protocol):
    """What the projection reads of a logged event: a LoanEvent row or a LoggedEvent."""

    @property
    def seq(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def effective_date(self) -> date: ...
    @property
    def booked_on(self) -> date: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def reversed_by_seq(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """A loan event as read for a replay (plain data: a long-lived loan has a thousand of them)."""

    seq: int
    type: str
    effective_date: date
    booked_on: date
    amount: int | None
    payload: dict[str, Any]
    reversed_by_seq: int | None


class LoanTransaction(Base):
    __tablename__ = "loan_transactions"
    __table_args__ = (Index("ix_loan_transactions_loan_id_id", "loan_id", "id"),)

    id: Mapped[str] = id_column()
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"))
    event_seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    alloc_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_interest: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_fees: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_penalties: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_overpayment: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_recovery: Mapped[int] = mapped_column(BigInteger, default=0)
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)
    reversal_of: Mapped[str | None] = mapped_column(String(36))
    channel: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    note: Mapped[str | None] = mapped_column(String(500))
    journal_entry_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_at_column()

    @property
    def allocation(self) -> Allocation:
        """How the amount was applied (principal, interest, fees, penalties, overpayment, recovery)."""
        return Allocation(
            self.alloc_principal,
            self.alloc_interest,
            self.alloc_fees,
            self.alloc_penalties,
            self.alloc_overpayment,
            self.alloc_recovery,
        )

    @allocation.setter
    def allocation(self, a: Allocation) -> None:
        self.alloc_principal, self.alloc_interest, self.alloc_fees = a.principal, a.interest, a.fees
        self.alloc_penalties, self.alloc_overpayment, self.alloc_recovery = a.penalties, a.overpayment, a.recovery


class LoanInstallment(Base):
    __tablename__ = "loan_installments"

    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    principal: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    fees: Mapped[int] = mapped_column(BigInteger, default=0)
    penalties: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_principal: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_interest: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_fees: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_penalties: Mapped[int] = mapped_column(BigInteger, default=0)
    late_fee_date: Mapped[date | None] = mapped_column(Date)
    # forgiven by waivers (already taken off interest/fees/penalties, which are what is owed)
    waived_interest: Mapped[int] = mapped_column(BigInteger, default=0)
    waived_fees: Mapped[int] = mapped_column(BigInteger, default=0)
    waived_penalties: Mapped[int] = mapped_column(BigInteger, default=0)


class DelinquencyChange(Base):
    """History of a loan's delinquency: a row whenever its bucket or its oldest unpaid due date changes (written by
    the projection and by close of business)."""

    __tablename__ = "loan_delinquency_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    on_date: Mapped[date] = mapped_column(Date)
    from_bucket: Mapped[str] = mapped_column(String(8))
    to_bucket: Mapped[str] = mapped_column(String(8))
    # The oldest unpaid due date from on_date on: past reports derive DPD from it exactly as today's do.
    overdue_since: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = created_at_column()


class LoanCheckpoint(Base):
    """A few past projection states of a loan (its checkpoint and installments as of a business date), so a
    backdated event resumes from the latest state before its date instead of replaying the whole event log.
    A state is used only while no event known after it is dated on or before it, none it included was reversed
    since, and the loan's terms are unchanged (`terms_key`); otherwise the log is replayed."""

    __tablename__ = "loan_checkpoints"

    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    event_seq: Mapped[int] = mapped_column(Integer)  # the last event the state includes
    terms_key: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"checkpoint": {...}, "rows": [[...], ...]}


class LoanModification(Base):
    """A requested change of a loan's terms (CONTRACT "Modifications"): pending until a second person approves
    or rejects it; approval appends a `modification` event to the loan's log (app/domain/modifications.py)."""

    __tablename__ = "loan_modifications"
    __table_args__ = (
        Index("ix_loan_modifications_loan_id_id", "loan_id", "id"),
        Index("ix_loan_modifications_status_id", "status", "id"),
    )

    id: Mapped[str] = id_column()
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"))
    type: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | rejected
    effective_date: Mapped[date] = mapped_column(Date)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500))
    preview: Mapped[dict[str, Any]] = mapped_column(JSON)
    loan_version: Mapped[int] = mapped_column(Integer)  # the loan's version the preview was computed at
    requested_by: Mapped[str] = mapped_column(String(36))
    requested_by_username: Mapped[str] = mapped_column(String(100))
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decided_by_username: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    event_seq: Mapped[int | None] = mapped_column(Integer)  # the loan event that applied it
    created_at: Mapped[datetime] = created_at_column()


# A loan write's new events, transactions and delinquency changes and its loan row go with the commit's one
# statement on PostgreSQL (app/core/deferred.py; issue 15: round trips per payment).
deferred.defer_orm_writes(inserts=(LoanEvent, LoanTransaction, DelinquencyChange), updates=(Loan, LoanTransaction))
