"""Webhook subscriptions (admin): create (the secret is shown once), list, read, delete, deliveries, replay."""

import base64
import secrets
from collections.abc import Sequence

from app.core.errors import NotFound
from app.core.orm import utcnow
from app.database import Database
from app.events import repository as repo
from app.events.models import WebhookDelivery, WebhookEndpoint
from app.events.outbox import matches
from app.events.schemas import ReplayIn, WebhookCreate
from app.identity.access import Permission, Principal

REPLAY_PAGE = 1000


def new_secret() -> str:
    """Standard Webhooks: `whsec_` + base64 of 24 to 64 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create(db: Database, principal: Principal, data: WebhookCreate) -> WebhookEndpoint:
    principal.require(Permission.webhooks_admin)
    with db.transaction() as session:
        ep = WebhookEndpoint(
            url=data.url, events=data.events, secret=new_secret(), is_active=True, created_by=principal.user_id
        )
        session.add(ep)
        session.flush()
        session.expunge(ep)
        return ep


def list_endpoints(db: Database, principal: Principal) -> Sequence[WebhookEndpoint]:
    principal.require(Permission.webhooks_admin)
    with db.session(writer=False) as session:
        return repo.endpoints(session)


def get(db: Database, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    principal.require(Permission.webhooks_admin)
    with db.session(writer=False) as session:
        ep = repo.endpoint(session, endpoint_id)
        if ep is None:
            raise NotFound("webhook not found")
        return ep


def delete(db: Database, principal: Principal, endpoint_id: str) -> None:
    """Stops deliveries at once (pending ones become `cancelled`); the history stays readable for audit."""
    principal.require(Permission.webhooks_admin)
    with db.transaction() as session:
        ep = repo.endpoint(session, endpoint_id)
        if ep is None:
            raise NotFound("webhook not found")
        now = utcnow()
        ep.is_active, ep.deleted_at = False, now
        repo.cancel_pending(session, ep.id, now)


def deliveries(
    db: Database, principal: Principal, endpoint_id: str, status: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[tuple[WebhookDelivery, str]], str | None]:
    get(db, principal, endpoint_id)
    with db.session(writer=False) as session:
        return repo.deliveries(session, endpoint_id, status, cursor, limit)


def replay(db: Database, principal: Principal, endpoint_id: str, data: ReplayIn) -> int:
    """Queue again every event this endpoint subscribes to from `from_sequence` on (per loan), as new
    deliveries; they keep their event ids, so a receiver that dedupes by webhook-id can tell them apart."""
    principal.require(Permission.webhooks_admin)
    queued, after = 0, 0
    with db.transaction() as session:
        ep = repo.endpoint(session, endpoint_id)
        if ep is None:
            raise NotFound("webhook not found")
        now = utcnow()
        while page := repo.events_from(session, data.from_sequence or 1, data.loan_id, after, REPLAY_PAGE):
            after = page[-1][0]
            rows = [
                WebhookDelivery(
                    endpoint_id=ep.id,
                    outbox_id=outbox_id,
                    stream=stream,
                    sequence=sequence,
                    event_type=event_type,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    replay=True,
                    created_at=now,
                )
                for outbox_id, stream, sequence, event_type in page
                if matches(ep.events, event_type)
            ]
            session.add_all(rows)
            session.flush()
            queued += len(rows)
    return queued
