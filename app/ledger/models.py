"""Ledger tables. Journal entries and lines are append-only: the ledger service is their only writer, and on
PostgreSQL a trigger rejects UPDATE and DELETE (migration 0003) and an insert booked into a closed day
(migration 0013).

Two clocks (CONTRACT "Ledger time"): `effective_date` is the value date (when the event took effect) and
`booking_date` the business date on which the entry was posted. Lines repeat both, so the trial balance and
reports read one table."""

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import BigId, UTCDateTime, created_at_column, id_column
from app.database import Base


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[str] = id_column()
    entry_type: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    effective_date: Mapped[date] = mapped_column(Date, index=True)  # the value date
    booking_date: Mapped[date] = mapped_column(Date, index=True)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    loan_id: Mapped[str | None] = mapped_column(String(36), index=True)
    product_id: Mapped[str | None] = mapped_column(String(36))
    transaction_id: Mapped[str | None] = mapped_column(String(36), index=True)
    reversal_of: Mapped[str | None] = mapped_column(ForeignKey("journal_entries.id"))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str | None] = mapped_column(String(36))


class JournalLine(Base):
    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint("debit >= 0 AND credit >= 0", name="non_negative"),
        CheckConstraint("(debit = 0) <> (credit = 0)", name="one_side"),
        Index("ix_journal_lines_loan_account", "loan_id", "account_code"),
        Index("ix_journal_lines_account_booking", "account_code", "booking_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # On PostgreSQL these references are checked once per statement by a trigger (migration 0019), not row by row.
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_code: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.code"))
    loan_id: Mapped[str | None] = mapped_column(String(36))
    currency: Mapped[str] = mapped_column(String(3))
    effective_date: Mapped[date] = mapped_column(Date)  # the entry's value date
    booking_date: Mapped[date] = mapped_column(Date)  # the entry's booking date
    debit: Mapped[int] = mapped_column(BigInteger, default=0)
    credit: Mapped[int] = mapped_column(BigInteger, default=0)


class LoanAccountBalance(Base):
    """A loan's posted balance per account (debit positive), kept by every writer in the transaction that posts
    the lines, so a write never sums the loan's journal history; `loanctl verify-ledger` reconciles it against
    the journal. No foreign keys: it is written on every posting and the journal is the authority."""

    __tablename__ = "loan_account_balances"

    loan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
