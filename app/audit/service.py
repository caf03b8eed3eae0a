"""The audit trail: one record per successful mutating action, written in the action's transaction."""

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.audit.models import AuditRecord
from app.core import deferred
from app.core.request_context import current_request_id
from app.identity.access import Principal


def record(
    session: Session,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: str,
    before_status: str | None = None,
    after_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    row = {
        "user_id": principal.user_id if principal else None,
        "username": principal.username if principal else "system",
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "request_id": current_request_id(),
        "before_status": before_status,
        "after_status": after_status,
        "detail": detail or {},
    }
    deferred.insert_rows(session, cast(Table, AuditRecord.__table__), [row])  # with the commit's other rows


def trail(session: Session, object_type: str, object_id: str, limit: int = 500) -> Sequence[AuditRecord]:
    deferred.flush(session)
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.object_type == object_type, AuditRecord.object_id == object_id)
        .order_by(AuditRecord.id)
        .limit(limit)
    )
    return session.scalars(stmt).all()
