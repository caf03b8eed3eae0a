"""Webhook delivery (Standard Webhooks). The head of each (endpoint, loan) queue — the lowest pending sequence —
is the only delivery of that queue that may be sent, so one endpoint receives one loan's events in order; heads
of different queues are sent concurrently. A claim leases the head (`next_attempt_at` moves to now + lease) in a
short transaction; the HTTP call happens outside any transaction; the outcome is written afterwards. A worker
killed between claim and outcome leaves the delivery pending, due again when the lease ends: at-least-once."""

import json
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook

from app.core.config import Settings
from app.core.logging import get_logger
from app.core.orm import utcnow
from app.database import Database
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

log = get_logger(__name__)
USER_AGENT = "loan-backend-webhooks/1"


@dataclass(frozen=True)
class Policy:
    """Retries: exponential backoff with jitter, `failed` once the retry window since the first attempt ends."""

    backoff_base: float
    backoff_max: float
    retry_window: timedelta
    lease: timedelta
    timeout: float
    batch: int

    @classmethod
    def of(cls, settings: Settings) -> "Policy":
        return cls(
            backoff_base=settings.webhook_backoff_base_seconds,
            backoff_max=settings.webhook_backoff_max_seconds,
            retry_window=timedelta(hours=settings.webhook_retry_window_hours),
            lease=timedelta(seconds=max(settings.webhook_lease_seconds, settings.webhook_timeout_seconds + 1)),
            timeout=settings.webhook_timeout_seconds,
            batch=settings.worker_concurrency * 4,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Equal jitter: half the exponential delay fixed, half random (spreads a thundering herd)."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    url: str
    secret: str
    event_id: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    ok: bool
    status_code: int | None
    error: str | None


def claim(db: Database, policy: Policy, limit: int) -> list[Claimed]:
    now = utcnow()
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.stream == WebhookDelivery.stream,
        earlier.status == "pending",
        or_(
            earlier.sequence < WebhookDelivery.sequence,
            and_(earlier.sequence == WebhookDelivery.sequence, earlier.id < WebhookDelivery.id),
        ),
    )
    stmt = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, ~blocked)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    with db.transaction() as session:
        if db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(session.scalars(stmt))
        if not ids:
            return []
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(next_attempt_at=now + policy.lease, attempts=WebhookDelivery.attempts + 1)
        )
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.first_attempt_at.is_(None))
            .values(first_attempt_at=now)
        )
        rows = session.execute(
            select(WebhookDelivery.id, WebhookEndpoint.url, WebhookEndpoint.secret, OutboxEvent.event_id,
                   OutboxEvent.payload, WebhookDelivery.attempts)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
            .where(WebhookDelivery.id.in_(ids))
        ).all()
    return [Claimed(i, url, secret, eid, body_text(payload), n) for i, url, secret, eid, payload, n in rows]


def body_text(payload: object) -> str:
    """The exact bytes sent and signed (compact JSON, stable key order)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def signed_headers(secret: str, event_id: str, body: str, at: datetime) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def send(client: httpx.Client, item: Claimed) -> Outcome:
    headers = signed_headers(item.secret, item.event_id, item.body, utcnow())
    try:
        response = client.post(item.url, content=item.body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(item.delivery_id, False, None, f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= response.status_code < 300
    return Outcome(item.delivery_id, ok, response.status_code, None if ok else f"HTTP {response.status_code}")


def record(db: Database, policy: Policy, outcomes: Sequence[Outcome]) -> None:
    now = utcnow()
    with db.transaction() as session:
        for out in outcomes:
            d = session.get(WebhookDelivery, out.delivery_id)
            if d is None or d.status != "pending":
                continue  # cancelled meanwhile (endpoint deleted)
            d.last_status_code, d.last_error = out.status_code, out.error
            if out.ok:
                d.status, d.finished_at = "delivered", now
            elif d.first_attempt_at is not None and now - d.first_attempt_at >= policy.retry_window:
                d.status, d.finished_at = "failed", now  # gives up: the next event of the loan may go
            else:
                d.next_attempt_at = now + policy.backoff(d.attempts)


def deliver_due(db: Database, client: httpx.Client, pool: ThreadPoolExecutor, policy: Policy) -> int:
    """One round: claim the due heads, send them concurrently, record the outcomes. Answers how many were sent."""
    items = claim(db, policy, policy.batch)
    if not items:
        return 0
    outcomes = list(pool.map(lambda item: send(client, item), items))
    record(db, policy, outcomes)
    failed = sum(not o.ok for o in outcomes)
    if failed:
        log.info("webhook_attempts", sent=len(outcomes), failed=failed)
    return len(items)


def http_client(policy: Policy) -> httpx.Client:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    return httpx.Client(timeout=policy.timeout, limits=limits, follow_redirects=False)
