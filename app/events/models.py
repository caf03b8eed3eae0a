"""Events out: the transactional outbox, webhook endpoints and their deliveries, persisted payoff quotes and
payment batches (CONTRACT Events out; Bulk payments and payoff quotes)."""

import datetime as dt
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import UTCDateTime, created_at_column, id_column
from app.database import Base
from app.ledger.models import BigId


class OutboxEvent(Base):
    """One event, written in the transaction of the change it describes. `stream` is the loan id (or `cob`
    for close-of-business events); `sequence` is gap-free per stream (unique, assigned under the loan lock)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("stream", "sequence", name="uq_outbox_events_stream_sequence"),
        Index("ix_outbox_events_amqp_pending", "amqp_published", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id: msg_<uuid>
    stream: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the JSON body sent: {type, timestamp, data}
    amqp_published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_at_column()


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = id_column()
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))  # needed to sign: stored, shown once
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = created_at_column()
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One event to one endpoint. The head of each (endpoint, stream) queue — the lowest pending sequence — is
    the only one sent, so one endpoint receives one loan's events in order. `next_attempt_at` doubles as the
    lease of the worker sending it: a worker killed mid-delivery leaves it pending, due again later."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_queue", "endpoint_id", "stream", "status", "sequence"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"))
    stream: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_at_column()
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


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
