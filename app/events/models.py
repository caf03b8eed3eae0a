"""Events out: the transactional outbox, webhook endpoints and their deliveries (CONTRACT Events out)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.orm import BigId, UTCDateTime, created_at_column, id_column
from app.database import Base


class OutboxEvent(Base):
    """One event, written in the transaction of the change it describes. `stream` is the loan id (or `cob`
    for close-of-business events); `sequence` is gap-free per stream (unique, assigned under the loan lock)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("stream", "sequence", name="uq_outbox_events_stream_sequence"),
        Index("ix_outbox_events_amqp_pending", "amqp_published", "id"),
        Index("ix_outbox_events_fan_out", "fanned_out", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id: msg_<uuid>
    stream: Mapped[str] = mapped_column(String(36))
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the JSON body sent: {type, timestamp, data}
    amqp_published: Mapped[bool] = mapped_column(Boolean, default=False)
    # Whether the delivery worker has created this event's webhook deliveries (outside the writer's transaction).
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
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
