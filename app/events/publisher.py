"""RabbitMQ: the outbox published to the topic exchange `loan-events` (routing key = event type), persistent
messages, publisher confirms; a lost connection is reopened on the next round (the outbox keeps the events)."""

import json
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.logging import get_logger
from app.database import Database
from app.events.models import OutboxEvent

log = get_logger(__name__)
PAGE = 500


class Publisher:
    def __init__(self, url: str, exchange: str) -> None:
        self.parameters = pika.URLParameters(url)
        self.exchange = exchange
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Publisher | None":
        if settings.amqp_url is None:
            return None
        return cls(settings.amqp_url.get_secret_value(), settings.amqp_exchange)

    def _open(self) -> BlockingChannel:
        if self.channel is not None and self.channel.is_open:
            return self.channel
        self.close()
        self.connection = pika.BlockingConnection(self.parameters)
        channel = self.connection.channel()
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.confirm_delivery()  # every basic_publish waits for the broker's ack (raises on nack)
        self.channel = channel
        return channel

    def close(self) -> None:
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
        except AMQPError:
            pass
        self.connection = self.channel = None

    def publish_pending(self, db: Database) -> int:
        """Publish a page of not-yet-published outbox events in outbox order; answers how many were confirmed.
        Marked published only after the confirm: a crash in between publishes again (at-least-once)."""
        with db.session(writer=False) as session:
            rows = session.execute(
                select(OutboxEvent.id, OutboxEvent.event_id, OutboxEvent.type, OutboxEvent.stream,
                       OutboxEvent.sequence, OutboxEvent.payload)
                .where(OutboxEvent.amqp_published.is_(False))
                .order_by(OutboxEvent.id)
                .limit(PAGE)
            ).all()
        if not rows:
            return 0
        done: list[int] = []
        try:
            channel = self._open()
            for row_id, event_id, event_type, stream, sequence, payload in rows:
                channel.basic_publish(
                    self.exchange,
                    event_type,
                    json.dumps(payload, separators=(",", ":"), sort_keys=True).encode(),
                    pika.BasicProperties(
                        content_type="application/json",
                        delivery_mode=pika.DeliveryMode.Persistent,
                        message_id=event_id,
                        type=event_type,
                        headers=_headers(stream, sequence),
                    ),
                )
                done.append(row_id)
        except AMQPError as exc:
            log.warning("amqp_publish_failed", error=f"{type(exc).__name__}: {exc}", published=len(done))
            self.close()
        if done:
            with db.transaction() as session:
                session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(done)).values(amqp_published=True))
        return len(done)


def _headers(stream: str, sequence: int) -> dict[str, Any]:
    return {"stream": stream, "sequence": sequence}
