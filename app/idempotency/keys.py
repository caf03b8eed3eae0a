"""Idempotency keys for money-moving POSTs (CONTRACT "Idempotency"): same key + same body replays the stored
answer, same key + another body is refused. The key row is written in the transaction that posts, so it
exists exactly when the posting does; concurrent duplicates are serialised by the loan lock (or, across
loans, by the unique (user, key) index)."""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from app.core import deferred
from app.core.errors import ValidationFailed
from app.core.orm import utcnow
from app.idempotency.models import IdempotencyKey

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class IdempotentRequest:
    user_id: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps({"m": method, "p": path, "b": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.single("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable characters")
    return key


def lookup(session: Session, request: IdempotentRequest) -> StoredResponse | None:
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.user_id == request.user_id, IdempotencyKey.key == request.key)
    ).first()
    return stored_response(row, request)


def stored_response(row: IdempotencyKey | None, request: IdempotentRequest) -> StoredResponse | None:
    """The answer stored under the request's key, or None; a key reused for a different request → 422."""
    if row is None:
        return None
    if row.request_hash != request.request_hash:
        raise ValidationFailed.single(
            "Idempotency-Key", "this key was already used with a different request; use a new key"
        )
    return StoredResponse(row.response_status, row.response_body)


def store(session: Session, request: IdempotentRequest, status: int, body: dict[str, Any], ttl: timedelta) -> None:
    now = utcnow()
    row = {
        "user_id": request.user_id,
        "key": request.key,
        "request_hash": request.request_hash,
        "response_status": status,
        "response_body": body,
        "created_at": now,
        "expires_at": now + ttl,
    }
    deferred.insert_rows(session, cast(Table, IdempotencyKey.__table__), [row])  # with the commit's other rows


def purge_expired(session: Session, now: datetime | None = None) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)
