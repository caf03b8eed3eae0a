"""Request and response bodies of the webhook subscriptions API."""

from datetime import datetime
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from app.core.schemas import StrictModel
from app.events.outbox import EVENT_TYPES

FAMILIES = frozenset({"*", *{t.split(".")[0] + ".*" for t in EVENT_TYPES}})


class WebhookCreate(StrictModel):
    url: str = Field(max_length=2000, description="http(s) URL that receives POSTs signed per Standard Webhooks")
    events: list[str] = Field(
        min_length=1, max_length=50, description="event types, `loan.*` for a family or `*` for everything"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in EVENT_TYPES and e not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}, loan.*, cob.*, *")
        return list(dict.fromkeys(value))


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    is_active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_ + base64 signing secret; shown only in this answer")


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    loan_id: str | None
    stream: str
    sequence: int
    status: str = Field(description="pending | delivered | failed | cancelled")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    replay: bool
    created_at: datetime
    finished_at: datetime | None


class ReplayIn(StrictModel):
    from_sequence: int | None = Field(default=None, ge=1, le=2**31 - 1, description="default 1: everything")
    loan_id: str | None = Field(default=None, max_length=36, description="only this loan's events")


class ReplayOut(BaseModel):
    queued: int
