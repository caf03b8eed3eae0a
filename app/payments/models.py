"""Money in bulk and payoff quotes (CONTRACT Bulk payments and payoff quotes): persisted quotes, CSV payment
batches and their rows (one idempotent payment per row, keyed by external_id)."""

import datetime as dt
from datetime import datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import UTCDateTime, created_at_column, id_column
from app.database import Base


class PayoffQuoteRecord(Base):
    __tablename__ = "payoff_quotes"

    id: Mapped[str] = id_column()
    loan_id: Mapped[str] = mapped_column(ForeignKey("loans.id"), index=True)
    date: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    principal: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    fees: Mapped[int] = mapped_column(BigInteger)
    penalties: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    per_diem: Mapped[int] = mapped_column(BigInteger)
    loan_version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_at_column()


class PaymentBatch(Base):
    __tablename__ = "payment_batches"

    id: Mapped[str] = id_column()
    status: Mapped[str] = mapped_column(String(12), default="processing")  # processing | done
    filename: Mapped[str | None] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    branch_scope: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PaymentBatchRow(Base):
    __tablename__ = "payment_batch_rows"
    __table_args__ = (Index("ix_payment_batch_rows_pending", "batch_id", "status", "row_no"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("payment_batches.id"), primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_ref: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[str | None] = mapped_column(String(40))
    value_date: Mapped[str | None] = mapped_column(String(20))
    external_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | succeeded | duplicate | failed
    transaction_id: Mapped[str | None] = mapped_column(String(36))
    error: Mapped[str | None] = mapped_column(Text)
