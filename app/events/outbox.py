"""The transactional outbox (CONTRACT Events out). Writers call `emit` with the loan and its new event; the
outbox rows — with a gap-free per-loan `sequence` and the loan and transaction as the REST API shows them
after the change — are written just before the writer's transaction commits, in that transaction; the delivery
worker creates each event's webhook deliveries afterwards (`delivery.fan_out`). A rolled-back transaction (or a
dry run) leaves nothing; nothing here talks to the network."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.core import deferred
from app.core.orm import utcnow
from app.domain.lifecycle import LoanStatus
from app.events.models import OutboxEvent
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


def _write_outbox(session: Session) -> None:
    pending: list[_Pending] | None = session.info.pop(_PENDING, None)
    if pending:
        write(session, pending)


deferred.before_commit(_write_outbox)


@event.listens_for(Session, "after_soft_rollback")
def _forget_outbox(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)


def write(session: Session, pending: list[_Pending]) -> None:
    """The outbox rows of this transaction's events, with their per-stream sequences. A loan's stream counts
    on its row (`loans.outbox_seq`, locked by the writer), set here before the loan's changes are flushed so
    the loan is updated once; the `cob` stream takes the max. The rows go with the commit's other queued rows;
    the delivery worker fans them out to the subscribed endpoints."""
    typed = [(item, _types_of(item, pending[index + 1 :])) for index, item in enumerate(pending)]
    counts: dict[str, int] = {}
    for item, types in typed:
        counts[item.stream] = counts.get(item.stream, 0) + len(types)
    loans = {item.stream: item.loan for item, _ in typed if item.loan is not None}
    last: dict[str, int] = {stream: loan.outbox_seq or 0 for stream, loan in loans.items()}
    for stream, loan in loans.items():
        loan.outbox_seq = last[stream] + counts[stream]
    others = sorted(s for s in counts if s not in loans and s != COB_STREAM)
    if others:  # close of business's per-loan events (the loans are locked): their rows count too
        last.update(_bump_loan_counters(session, {s: counts[s] for s in others}))
    if COB_STREAM in counts:
        cob_last = session.scalar(select(func.max(OutboxEvent.sequence)).where(OutboxEvent.stream == COB_STREAM))
        last[COB_STREAM] = cob_last or 0
    # the loan and its transaction as they are stored (their rendering reads defaults): queued with the commit's
    # other rows where the loans feature deferred them, else flushed
    deferred.take_orm_writes(session)
    deferred.flush_orm(session)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for item, types in typed:
        for event_type, data in zip(types, _data_of(session, item, types), strict=True):
            sequence = last[item.stream] + 1
            last[item.stream] = sequence
            body = {"type": event_type, "timestamp": stamp(now), "data": {"sequence": sequence, **data}}
            rows.append(
                {
                    "event_id": f"msg_{uuid.uuid4().hex}",
                    "stream": item.stream,
                    "sequence": sequence,
                    "type": event_type,
                    "payload": body,
                    "amqp_published": False,
                    "fanned_out": False,
                    "created_at": now,
                }
            )
    deferred.insert_rows(session, cast(Table, OutboxEvent.__table__), rows)


def _bump_loan_counters(session: Session, counts: dict[str, int]) -> dict[str, int]:
    """Add `counts` to the loans' outbox counters; answers each loan's last sequence before."""
    t = cast(Table, Loan.__table__)
    before = dict(session.execute(select(t.c.id, t.c.outbox_seq).where(t.c.id.in_(list(counts)))).all())
    for stream in counts:
        if stream not in before:
            raise RuntimeError(f"outbox stream {stream!r} is neither a loan nor {COB_STREAM!r}")
    session.execute(
        update(t).where(t.c.id == bindparam("loan")).values(outbox_seq=bindparam("seq")),
        [{"loan": stream, "seq": before[stream] + n} for stream, n in sorted(counts.items())],
    )
    for stream, n in counts.items():  # a copy of the loan in this session must not write its old counter back
        loan = session.identity_map.get(session.identity_key(Loan, stream))
        if isinstance(loan, Loan):
            set_committed_value(loan, "outbox_seq", before[stream] + n)
    return {stream: int(before[stream]) for stream in counts}


def _types_of(item: _Pending, later: list[_Pending]) -> list[str]:
    """The public event types an item publishes (decided from memory: no statement)."""
    if item.loan is None or item.event is None:
        return [item.event_type]
    loan = item.loan
    out = [LOAN_EVENT_TYPES.get(item.event.type, f"loan.{item.event.type}")]
    status_event = STATUS_EVENT_TYPES.get(loan.status)
    last_of_loan = not any(p.loan is loan for p in later)
    if status_event and last_of_loan and item.status_before != loan.status:
        out.append(status_event)
    return out


def _data_of(session: Session, item: _Pending, types: list[str]) -> list[dict[str, Any]]:
    if item.loan is None or item.event is None:
        return [dict(item.data or {})]
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
    out = [data]
    if len(types) > 1:
        out.append({"loan_id": loan.id, "loan": data["loan"]})
    return out


def _loan_json(loan: Loan, effective: date) -> dict[str, Any]:
    as_of = loan.snapshot_date or effective
    body: dict[str, Any] = loan_out(loan, as_of).model_dump(mode="json")
    return body


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
