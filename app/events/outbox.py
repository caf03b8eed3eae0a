"""The transactional outbox (CONTRACT Events out). Writers call `emit` with the loan and its new event; the
outbox rows — with a gap-free per-loan `sequence` and the loan and transaction as the REST API shows them
after the change — and one delivery row per subscribed endpoint are written just before the writer's
transaction commits, in that transaction. A rolled-back transaction (or a dry run) leaves nothing; nothing here
talks to the network: the delivery worker reads the outbox afterwards."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app.core.orm import utcnow
from app.domain.lifecycle import LoanStatus
from app.events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from app.loans.models import Loan, LoanEvent, LoanTransaction
from app.loans.presenters import loan_out, transaction_out

COB_STREAM = "cob"
_PENDING = "events.outbox.pending"

# The loan's event-log types and the public event type each one is published as.
LOAN_EVENT_TYPES: dict[str, str] = {
    "submitted": "loan.submitted",
    "approved": "loan.approved",
    "rejected": "loan.rejected",
    "withdrawn": "loan.withdrawn",
    "disbursed": "loan.disbursed",
    "payment": "loan.payment_received",
    "reversal": "loan.transaction_reversed",
    "write_off": "loan.written_off",
    "refund": "loan.refunded",
    "charge": "loan.charge_added",
    "waiver": "loan.waived",
    "goodwill_credit": "loan.goodwill_credited",
    "chargeback": "loan.charged_back",
    "modification": "loan.modified",
    "tranche": "loan.disbursed",  # a further disbursement of a multi-disbursement loan
}
# A change that ends in one of these statuses also publishes it (a payment that pays the loan off).
STATUS_EVENT_TYPES: dict[str, str] = {
    LoanStatus.closed.value: "loan.closed",
    LoanStatus.overpaid.value: "loan.overpaid",
}
EVENT_TYPES: tuple[str, ...] = (
    "loan.submitted",
    "loan.approved",
    "loan.rejected",
    "loan.withdrawn",
    "loan.disbursed",
    "loan.payment_received",
    "loan.transaction_reversed",
    "loan.charge_added",
    "loan.waived",
    "loan.goodwill_credited",
    "loan.charged_back",
    "loan.modified",
    "loan.late_fee_charged",
    "loan.delinquent",
    "loan.closed",
    "loan.overpaid",
    "loan.written_off",
    "loan.refunded",
    "loan.approval_undone",
    "loan.disbursal_undone",
    "cob.completed",
)


def matches(patterns: list[str], event_type: str) -> bool:
    """`*` matches everything, `loan.*` a family, anything else one type (CONTRACT Events out)."""
    for pattern in patterns:
        if pattern in ("*", event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass
class _Pending:
    stream: str
    loan: Loan | None
    event: LoanEvent | None
    status_before: str | None
    event_type: str = ""
    data: dict[str, Any] | None = None


def emit(session: Session, loan: Loan, loan_event: LoanEvent) -> None:
    """Queue the loan event for the outbox of this transaction (written at commit)."""
    pending: list[_Pending] = session.info.setdefault(_PENDING, [])
    before = next((p.status_before for p in pending if p.loan is loan), loan.status)
    pending.append(_Pending(loan.id, loan, loan_event, before))


def emit_system(session: Session, event_type: str, data: dict[str, Any], stream: str = COB_STREAM) -> None:
    """Queue an event that belongs to no loan (close of business) on its own stream."""
    session.info.setdefault(_PENDING, []).append(_Pending(stream, None, None, None, event_type, data))


@event.listens_for(Session, "before_commit")
def _write_outbox(session: Session) -> None:
    pending: list[_Pending] | None = session.info.pop(_PENDING, None)
    if pending:
        write(session, pending)


@event.listens_for(Session, "after_soft_rollback")
def _forget_outbox(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)


def write(session: Session, pending: list[_Pending]) -> list[OutboxEvent]:
    session.flush()
    now = utcnow()
    streams = sorted({p.stream for p in pending})
    last: dict[str, int] = dict(
        session.execute(
            select(OutboxEvent.stream, func.max(OutboxEvent.sequence))
            .where(OutboxEvent.stream.in_(streams))
            .group_by(OutboxEvent.stream)
        ).all()
    )
    rows: list[OutboxEvent] = []
    for index, item in enumerate(pending):
        for event_type, data in _events_of(session, item, pending[index + 1 :]):
            sequence = last.get(item.stream, 0) + 1
            last[item.stream] = sequence
            body = {
                "type": event_type,
                "timestamp": stamp(now),
                "data": {"sequence": sequence, **data},
            }
            rows.append(
                OutboxEvent(
                    event_id=f"msg_{uuid.uuid4().hex}",
                    stream=item.stream,
                    sequence=sequence,
                    type=event_type,
                    payload=body,
                    amqp_published=False,
                    created_at=now,
                )
            )
    session.add_all(rows)
    session.flush()
    endpoints = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.is_active.is_(True))).all()
    session.add_all(
        WebhookDelivery(
            endpoint_id=ep.id,
            outbox_id=row.id,
            stream=row.stream,
            sequence=row.sequence,
            event_type=row.type,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            replay=False,
            created_at=now,
        )
        for row in rows
        for ep in endpoints
        if matches(ep.events, row.type)
    )
    return rows


def _events_of(
    session: Session, item: _Pending, later: list[_Pending]
) -> list[tuple[str, dict[str, Any]]]:
    if item.loan is None or item.event is None:
        return [(item.event_type, dict(item.data or {}))]
    loan, ev = item.loan, item.event
    tx = session.get(LoanTransaction, ev.transaction_id) if ev.transaction_id else None
    data: dict[str, Any] = {
        "loan_id": loan.id,
        "event_seq": ev.seq,
        "effective_date": ev.effective_date.isoformat(),
        "loan": _loan_json(loan, ev.effective_date),
    }
    if tx is not None:
        data["transaction"] = transaction_out(tx, loan.currency).model_dump(mode="json")
    if ev.type in {"rejected", "withdrawn", "write_off", "reversal", "waiver", "goodwill_credit", "chargeback"} and (
        ev.payload.get("reason")
    ):
        data["reason"] = ev.payload["reason"]
    out = [(LOAN_EVENT_TYPES.get(ev.type, f"loan.{ev.type}"), data)]
    status_event = STATUS_EVENT_TYPES.get(loan.status)
    last_of_loan = not any(p.loan is loan for p in later)
    if status_event and last_of_loan and item.status_before != loan.status:
        out.append((status_event, {"loan_id": loan.id, "loan": data["loan"]}))
    return out


def _loan_json(loan: Loan, effective: date) -> dict[str, Any]:
    as_of = loan.snapshot_date or effective
    body: dict[str, Any] = loan_out(loan, as_of).model_dump(mode="json")
    return body


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
