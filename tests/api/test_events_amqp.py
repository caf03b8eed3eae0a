"""RabbitMQ: with AMQP_URL the worker publishes the outbox to the topic exchange `loan-events` (routing key = the
event type, persistent, confirmed). A test queue bound to the exchange receives every event of a scenario, in
order; a dropped connection is reopened. Needs the broker on 127.0.0.1:5672 (under CI=true its absence fails)."""

import json
import os
import socket
import time
from typing import Any

import pika
import pytest
from sqlalchemy import select

from app.database import Database
from app.events.models import OutboxEvent
from app.events.publisher import Publisher
from app.events.worker import run_until_idle
from tests.api.helpers_lending import LOANS, active_loan, pay
from tests.api.test_webhooks import worker_settings
from tests.conftest import IN_CI, fresh_world

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
EXCHANGE = "loan-events"


def require_broker() -> None:
    params = pika.URLParameters(AMQP_URL)
    try:
        socket.create_connection((params.host, params.port), timeout=3).close()
    except OSError:
        if IN_CI:
            pytest.fail(f"RabbitMQ is required under CI=true but {params.host}:{params.port} is unreachable")
        pytest.skip(f"RabbitMQ unreachable at {params.host}:{params.port} (outside CI)")


def consume(channel: Any, queue: str, loan_id: str, want: int, timeout: float = 30) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        event = json.loads(body)
        if event["data"].get("loan_id") == loan_id:
            got.append((method, props, event))
    return got


def test_every_event_of_a_scenario_reaches_a_bound_queue_in_order() -> None:
    require_broker()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, EXCHANGE, routing_key="loan.#")
    try:
        with fresh_world() as (w, db):
            settings = worker_settings(db, amqp_url=AMQP_URL)
            loan = active_loan(w)
            assert pay(w, loan["id"], "10.00").status_code == 201
            payoff = w.get("manager", f"{LOANS}/{loan['id']}/payoff").json()["total"]
            assert pay(w, loan["id"], payoff).status_code == 201
            run_until_idle(db, settings, timeout=60)
            got = consume(channel, queue, loan["id"], 6)
            types = [e["type"] for _, _, e in got]
            assert types == ["loan.submitted", "loan.approved", "loan.disbursed", "loan.payment_received",
                             "loan.payment_received", "loan.closed"]
            assert [e["data"]["sequence"] for _, _, e in got] == [1, 2, 3, 4, 5, 6]
            for method, props, event in got:
                assert method.routing_key == event["type"] and method.exchange == EXCHANGE
                assert props.delivery_mode == 2 and props.content_type == "application/json"
                assert props.message_id.startswith("msg_") and props.headers["sequence"] == event["data"]["sequence"]
            assert _unpublished(db) == 0

            publisher = Publisher(AMQP_URL, EXCHANGE)
            try:
                assert pay(w, loan["id"], "1.00").status_code == 201  # overpaid now
                assert publisher.publish_pending(db) >= 1
                assert publisher.connection is not None
                publisher.connection.close()  # the broker drops us: the next round reconnects
                assert w.post("manager", f"{LOANS}/{loan['id']}/refund", {}).status_code == 200
                assert publisher.publish_pending(db) == 2  # loan.refunded and loan.closed
            finally:
                publisher.close()
            more = consume(channel, queue, loan["id"], 4)
            assert [e["type"] for _, _, e in more] == [
                "loan.payment_received", "loan.overpaid", "loan.refunded", "loan.closed"
            ]
            assert [e["data"]["sequence"] for _, _, e in more] == [7, 8, 9, 10]
    finally:
        connection.close()


def _unpublished(db: Database) -> int:
    with db.session(writer=False) as session:
        return len(session.scalars(select(OutboxEvent.id).where(OutboxEvent.amqp_published.is_(False))).all())
