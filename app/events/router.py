"""Webhook subscriptions (admin only; CONTRACT Events out). Deliveries follow the Standard Webhooks spec."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit
from app.api.problems import PROBLEM_SCHEMA
from app.core.schemas import Page
from app.events import service
from app.events.models import WebhookDelivery, WebhookEndpoint
from app.events.outbox import COB_STREAM
from app.events.schemas import DeliveryOut, ReplayIn, ReplayOut, WebhookCreate, WebhookCreated, WebhookOut
from app.identity.access import Permission, Principal


def _admin(principal: CurrentUser) -> Principal:
    """The role is checked before the body is read: a non-admin gets 403 whatever it sends."""
    principal.require(Permission.webhooks_admin)
    return principal


Admin = Annotated[Principal, Depends(_admin)]
ERRORS: dict[int | str, dict[str, Any]] = {403: PROBLEM_SCHEMA, 404: PROBLEM_SCHEMA, 422: PROBLEM_SCHEMA}
router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=ERRORS)
StatusFilter = Annotated[Literal["pending", "delivered", "failed", "cancelled"] | None, Query()]


def _out(ep: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(id=ep.id, url=ep.url, events=ep.events, is_active=ep.is_active, created_at=ep.created_at)


def delivery_out(d: WebhookDelivery, event_id: str) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=event_id,
        event_type=d.event_type,
        loan_id=None if d.stream == COB_STREAM else d.stream,
        stream=d.stream,
        sequence=d.sequence,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        replay=d.replay,
        created_at=d.created_at,
        finished_at=d.finished_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Subscribe an endpoint to events (admin)",
    description="Answers the signing secret (`whsec_…`) once. Every event is POSTed with the Standard Webhooks "
    "headers `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,` + base64 HMAC-SHA256 of "
    "`id.timestamp.body` keyed by the base64-decoded secret). One loan's events arrive in `sequence` order.",
)
def create_webhook(db: DbDep, principal: Admin, body: WebhookCreate, response: Response) -> WebhookCreated:
    ep = service.create(db, principal, body)
    response.headers["Location"] = f"/api/v1/webhooks/{ep.id}"
    return WebhookCreated(**_out(ep).model_dump(), secret=ep.secret)


@router.get("", response_model=Page[WebhookOut], summary="List webhook endpoints (admin)")
def list_webhooks(db: DbDep, principal: Admin) -> Page[WebhookOut]:
    return Page[WebhookOut](items=[_out(ep) for ep in service.list_endpoints(db, principal)], next_cursor=None)


@router.get("/{webhook_id}", response_model=WebhookOut, summary="One webhook endpoint (admin; no secret)")
def get_webhook(db: DbDep, principal: Admin, webhook_id: str) -> WebhookOut:
    return _out(service.get(db, principal, webhook_id))


@router.delete("/{webhook_id}", status_code=204, summary="Unsubscribe (pending deliveries are cancelled)")
def delete_webhook(db: DbDep, principal: Admin, webhook_id: str) -> Response:
    service.delete(db, principal, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries", response_model=Page[DeliveryOut], summary="Deliveries to this endpoint, oldest first"
)
def list_deliveries(
    db: DbDep,
    principal: Admin,
    webhook_id: str,
    status: StatusFilter = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    rows, next_cursor = service.deliveries(db, principal, webhook_id, status, cursor, limit)
    return Page[DeliveryOut](items=[delivery_out(d, event_id) for d, event_id in rows], next_cursor=next_cursor)


@router.post(
    "/{webhook_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    summary="Send the events again from a sequence on",
    description="Queues every subscribed event with `sequence >= from_sequence` (default 1; of one loan with "
    "`loan_id`) as new deliveries, delivered by the worker in sequence order per loan. Answers how many.",
)
def replay(db: DbDep, principal: Admin, webhook_id: str, body: ReplayIn) -> ReplayOut:
    return ReplayOut(queued=service.replay(db, principal, webhook_id, body))
