"""Per-loan events decided by close of business (set-based SQL, no per-loan Python on its hot path): after a
day's chunks are done, the day's late fees (`loan.late_fee_charged`, from `loan_installments.late_fee_date`) and
moves into a delinquency bucket (`loan.delinquent`, from `loan_delinquency_history`) are queued for the outbox of
the transaction that completes the day — so each is published exactly once with the day. The affected loans
are locked first (in id order), because their per-loan sequence is shared with online writers."""

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.schemas import money_out
from app.events.outbox import emit_system
from app.loans.models import DelinquencyChange, Loan, LoanInstallment

LOCK_PAGE = 1000


def emit_day(session: Session, day: date, postgres: bool) -> int:
    fees = session.execute(
        select(LoanInstallment.loan_id, LoanInstallment.number, LoanInstallment.due_date, LoanInstallment.penalties,
               Loan.currency, Loan.days_past_due)
        .join(Loan, Loan.id == LoanInstallment.loan_id)
        .where(LoanInstallment.late_fee_date == day)
        .order_by(LoanInstallment.loan_id, LoanInstallment.number)
    ).all()
    moves = session.execute(
        select(DelinquencyChange.loan_id, DelinquencyChange.from_bucket, DelinquencyChange.to_bucket,
               Loan.days_past_due)
        .join(Loan, Loan.id == DelinquencyChange.loan_id)
        .where(
            DelinquencyChange.on_date == day,
            DelinquencyChange.to_bucket != "current",
            DelinquencyChange.to_bucket != DelinquencyChange.from_bucket,  # rows that only move overdue_since
        )
        .order_by(DelinquencyChange.loan_id, DelinquencyChange.id)
    ).all()
    loan_ids = sorted({r[0] for r in fees} | {r[0] for r in moves})
    if postgres:
        for start in range(0, len(loan_ids), LOCK_PAGE):
            page = loan_ids[start : start + LOCK_PAGE]
            session.execute(select(Loan.id).where(Loan.id.in_(page)).order_by(Loan.id).with_for_update())
    events: list[tuple[str, str, dict[str, Any]]] = []
    for loan_id, number, due_date, penalties, currency, dpd in fees:
        data = {"loan_id": loan_id, "business_date": day.isoformat(), "installment": number,
                "due_date": due_date.isoformat(), "penalties": money_out(penalties, currency), "currency": currency,
                "days_past_due": dpd}
        events.append((loan_id, "loan.late_fee_charged", data))
    for loan_id, from_bucket, to_bucket, dpd in moves:
        data = {"loan_id": loan_id, "business_date": day.isoformat(), "from_bucket": from_bucket,
                "to_bucket": to_bucket, "days_past_due": dpd}
        events.append((loan_id, "loan.delinquent", data))
    for loan_id, event_type, data in sorted(events, key=lambda e: e[0]):
        emit_system(session, event_type, data, stream=loan_id)
    return len(events)
