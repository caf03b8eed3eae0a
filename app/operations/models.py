from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import UTCDateTime
from app.database import Base


class CobRun(Base):
    """One close of business per business date: unique, so a date is closed at most once."""

    __tablename__ = "cob_runs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running | completed
    owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    loans_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_accrued: Mapped[int] = mapped_column(BigInteger, default=0)
    late_fees_charged: Mapped[int] = mapped_column(BigInteger, default=0)
    late_fee_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Per currency, in minor units ({"USD": 639, "JPY": 307}): amounts of different currencies never add up.
    interest_by_currency: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    late_fees_by_currency: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    # The per-loan ledger check of the day (CONTRACT "Ledger time"); None for runs before migration 0018.
    loans_out_of_balance: Mapped[int | None] = mapped_column(BigInteger)


class CobChunk(Base):
    """A range (seq_lo, seq_hi] of the active loans' insert_seq to close for a date; claimed by workers with SKIP
    LOCKED."""

    __tablename__ = "cob_chunks"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Loan id bounds of the chunks written before migration 0017.
    lo: Mapped[str | None] = mapped_column(String(36))
    hi: Mapped[str | None] = mapped_column(String(36))
    seq_lo: Mapped[int | None] = mapped_column(BigInteger)
    seq_hi: Mapped[int | None] = mapped_column(BigInteger)
    seq_rem: Mapped[int | None] = mapped_column(Integer)  # its loans: insert_seq % CHUNK_STRIDE = seq_rem
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done
    loans_processed: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_accrued: Mapped[int] = mapped_column(BigInteger, default=0)
    late_fees_charged: Mapped[int] = mapped_column(BigInteger, default=0)
    late_fee_count: Mapped[int] = mapped_column(BigInteger, default=0)
    interest_by_currency: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    late_fees_by_currency: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done_by: Mapped[str | None] = mapped_column(String(64))
    # The chunk's loans whose posted balances differ from their snapshot after the chunk's writes (normally none).
    out_of_balance_ids: Mapped[list[str] | None] = mapped_column(JSON)


class AccrualFraction(Base):
    """Share of a period's interest recognised by the end of a date, per day count (computed in Python by the
    domain, so set-based accrual and the projection use the very same numbers)."""

    __tablename__ = "cob_accrual_fractions"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    day_count: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    due_date: Mapped[date] = mapped_column(Date, primary_key=True)
    numerator: Mapped[int] = mapped_column(BigInteger)
    denominator: Mapped[int] = mapped_column(BigInteger)
