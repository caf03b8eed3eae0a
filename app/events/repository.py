"""Queries of the events feature: endpoints, deliveries and the outbox."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint


def endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    ep = session.get(WebhookEndpoint, endpoint_id)
    return ep if ep is not None and ep.deleted_at is None else None


def endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None)).order_by(WebhookEndpoint.created_at)
    return session.scalars(stmt).all()


def cancel_pending(session: Session, endpoint_id: str, now: datetime) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="cancelled", finished_at=now)
    )


def _int_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise ValidationFailed.single("cursor", "not a cursor returned by this API")
    return int(cursor)


def deliveries(
    session: Session, endpoint_id: str, status: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[tuple[WebhookDelivery, str]], str | None]:
    stmt = (
        select(WebhookDelivery, OutboxEvent.event_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    after = _int_cursor(cursor)
    if after is not None:
        stmt = stmt.where(WebhookDelivery.id > after)
    rows = [(d, eid) for d, eid in session.execute(stmt.order_by(WebhookDelivery.id).limit(limit + 1))]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1][0].id)
    return rows, None


def events_from(session: Session, from_sequence: int, stream: str | None, after_id: int, limit: int) -> Sequence[
    tuple[int, str, int, str]
]:
    """Outbox events with sequence >= from_sequence (of one stream, or all), in outbox order, a page at a time."""
    stmt = select(OutboxEvent.id, OutboxEvent.stream, OutboxEvent.sequence, OutboxEvent.type).where(
        OutboxEvent.sequence >= from_sequence, OutboxEvent.id > after_id
    )
    if stream is not None:
        stmt = stmt.where(OutboxEvent.stream == stream)
    return session.execute(stmt.order_by(OutboxEvent.id).limit(limit)).all()
