"""Webhook delivery (Standard Webhooks). Each (endpoint, loan) is a queue ordered by sequence; a worker leases a
queue by its head (the lowest pending sequence: `next_attempt_at` moves to now + lease, in a short transaction)
together with the next few pending deliveries, and sends them one after the other, stopping at the first
failure — so one endpoint receives one loan's events in order, and the next waits until the previous was
answered 2xx or given up. Different queues are sent concurrently. The HTTP calls happen outside any
transaction; the outcomes are written afterwards. A worker killed in between leaves the deliveries pending,
due again when the lease ends: at-least-once."""

import json
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, exists, func, insert, or_, select, tuple_, update
from sqlalchemy.orm import aliased
from standardwebhooks import Webhook

from app.core.config import Settings
from app.core.logging import get_logger
from app.core.orm import utcnow
from app.database import Database
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from app.events.outbox import matches

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
    queues: int
    window: int = 20

    @classmethod
    def of(cls, settings: Settings) -> "Policy":
        return cls(
            backoff_base=settings.webhook_backoff_base_seconds,
            backoff_max=settings.webhook_backoff_max_seconds,
            retry_window=timedelta(hours=settings.webhook_retry_window_hours),
            lease=timedelta(seconds=max(settings.webhook_lease_seconds, settings.webhook_timeout_seconds + 1)),
            timeout=settings.webhook_timeout_seconds,
            queues=settings.worker_concurrency * 4,
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


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    ok: bool
    status_code: int | None
    error: str | None


FAN_OUT_PAGE = 2000
FAN_OUT_LOCK = 0x15FA  # PostgreSQL advisory lock: one fan-out at a time


def fan_out(db: Database, page: int = FAN_OUT_PAGE) -> int:
    """Create the webhook deliveries of outbox events not fanned out yet: one per active endpoint subscribed to
    the event's type that existed when the event was written (as if the writer had created them). One fan-out
    runs at a time and takes events in id order: a loan's events are committed in sequence order, so an
    event's delivery never exists before the deliveries of the events before it. Answers how many events."""
    now = utcnow()
    with db.transaction() as session:
        if db.is_postgres and not session.scalar(select(func.pg_try_advisory_xact_lock(FAN_OUT_LOCK))):
            return 0  # another worker is fanning out
        events = session.execute(
            select(OutboxEvent.id, OutboxEvent.stream, OutboxEvent.sequence, OutboxEvent.type, OutboxEvent.created_at)
            .where(OutboxEvent.fanned_out.is_(False))
            .order_by(OutboxEvent.id)
            .limit(page)
        ).all()
        if not events:
            return 0
        endpoints = session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.created_at).where(
                WebhookEndpoint.is_active.is_(True)
            )
        ).all()
        rows = [
            {"endpoint_id": ep_id, "outbox_id": ev_id, "stream": stream, "sequence": sequence, "event_type": type_,
             "status": "pending", "attempts": 0, "next_attempt_at": now, "replay": False, "created_at": now}
            for ev_id, stream, sequence, type_, written_at in events
            for ep_id, patterns, created_at in endpoints
            if created_at <= written_at and matches(patterns, type_)
        ]
        if rows:
            session.execute(insert(WebhookDelivery), rows)
        ids = [e[0] for e in events]
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(fanned_out=True))
    return len(events)


def claim(db: Database, policy: Policy, queues: int) -> list[list[Claimed]]:
    """Lease the due heads of up to `queues` (endpoint, loan) queues, each with the next `window - 1` pending
    deliveries of its queue, in sequence order. Whoever holds a head's lease owns its queue: the others are
    blocked behind a pending head, so two workers never send the same queue at once."""
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
    heads_stmt = (
        select(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.stream)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, ~blocked)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(queues)
    )
    with db.transaction() as session:
        if db.is_postgres:
            heads_stmt = heads_stmt.with_for_update(of=WebhookDelivery, skip_locked=True)
        heads = session.execute(heads_stmt).all()
        if not heads:
            return []
        ranked = (
            select(
                WebhookDelivery.id,
                func.row_number()
                .over(
                    partition_by=(WebhookDelivery.endpoint_id, WebhookDelivery.stream),
                    order_by=(WebhookDelivery.sequence, WebhookDelivery.id),
                )
                .label("rn"),
            )
            .where(
                WebhookDelivery.status == "pending",
                tuple_(WebhookDelivery.endpoint_id, WebhookDelivery.stream).in_([(e, st) for _, e, st in heads]),
            )
            .subquery()
        )
        ids = list(session.scalars(select(ranked.c.id).where(ranked.c.rn <= policy.window)))
        session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(next_attempt_at=now + policy.lease)
        )
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.stream, WebhookDelivery.sequence,
                   WebhookEndpoint.url, WebhookEndpoint.secret, OutboxEvent.event_id, OutboxEvent.payload)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.outbox_id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.endpoint_id, WebhookDelivery.stream, WebhookDelivery.sequence, WebhookDelivery.id)
        ).all()
    by_queue: dict[tuple[str, str], list[Claimed]] = {}
    for i, endpoint_id, stream, _seq, url, secret, eid, payload in rows:
        by_queue.setdefault((endpoint_id, stream), []).append(Claimed(i, url, secret, eid, body_text(payload)))
    return list(by_queue.values())


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


def send_queue(client: httpx.Client, policy: Policy, queue: list[Claimed]) -> list[Outcome]:
    """One queue's claimed deliveries, strictly in order: stop at the first failure (the rest waits behind it)
    and before the lease could run out."""
    started = time.monotonic()
    budget = policy.lease.total_seconds() - policy.timeout - 1
    outcomes: list[Outcome] = []
    for item in queue:
        if outcomes and time.monotonic() - started > budget:
            break
        outcome = send(client, item)
        outcomes.append(outcome)
        if not outcome.ok:
            break
    return outcomes


def record(db: Database, policy: Policy, outcomes: Sequence[Outcome], unsent: Sequence[int]) -> None:
    now = utcnow()
    delivered = [o for o in outcomes if o.ok]
    with db.transaction() as session:
        pending = WebhookDelivery.status == "pending"  # a delivery cancelled meanwhile (endpoint deleted) stays so
        first = func.coalesce(WebhookDelivery.first_attempt_at, now)
        for code in {o.status_code for o in delivered}:
            ids = [o.delivery_id for o in delivered if o.status_code == code]
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), pending)
                .values(status="delivered", finished_at=now, last_status_code=code, last_error=None,
                        attempts=WebhookDelivery.attempts + 1, first_attempt_at=first)
            )
        if unsent:
            session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(unsent), pending).values(next_attempt_at=now)
            )
        for out in outcomes:
            if out.ok:
                continue
            d = session.get(WebhookDelivery, out.delivery_id)
            if d is None or d.status != "pending":
                continue
            d.attempts += 1
            d.first_attempt_at = d.first_attempt_at or now
            d.last_status_code, d.last_error = out.status_code, out.error
            if now - d.first_attempt_at >= policy.retry_window:
                d.status, d.finished_at = "failed", now  # gives up: the next event of the loan may go
            else:
                d.next_attempt_at = now + policy.backoff(d.attempts)


def deliver_due(db: Database, client: httpx.Client, pool: ThreadPoolExecutor, policy: Policy) -> int:
    """One round: claim due queues, send each queue in order (queues concurrently), record the outcomes.
    Answers how many deliveries were attempted."""
    queues = claim(db, policy, policy.queues)
    if not queues:
        return 0
    results = list(pool.map(lambda queue: send_queue(client, policy, queue), queues))
    outcomes = [o for result in results for o in result]
    unsent = [item.delivery_id for queue, result in zip(queues, results, strict=True) for item in queue[len(result):]]
    record(db, policy, outcomes, unsent)
    failed = sum(not o.ok for o in outcomes)
    if failed:
        log.info("webhook_attempts", sent=len(outcomes), failed=failed)
    return len(outcomes)


def http_client(policy: Policy) -> httpx.Client:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    return httpx.Client(timeout=policy.timeout, limits=limits, follow_redirects=False)
