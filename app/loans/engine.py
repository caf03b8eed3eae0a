"""The write path shared by every loan action: lock, check the lifecycle, append the event, re-project, post
the difference between the books and the projection, rewrite the snapshot — all in the caller's transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import date
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.errors import NotFound, VersionMismatch
from app.core.orm import utcnow
from app.core.request_context import current_request_id
from app.database import Database
from app.domain.delinquency import bucket_for
from app.domain.lifecycle import LoanAction, LoanStatus, transition
from app.domain.postings import AccountRole, by_account, correcting_lines, role_balances
from app.domain.servicing import Allocation, Checkpoint, Installment, LoanState, can_resume, project, resume
from app.events import outbox
from app.identity.access import Permission, Principal
from app.ledger import service as ledger
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.ledger.entries import EntryDraft, LineDraft
from app.loans import repository as repo
from app.loans.models import DelinquencyChange, Loan, LoanEvent, LoanTransaction
from app.loans.terms import FINANCIAL_EVENTS, domain_events, loan_terms
from app.operations import repository as operations

# session.info flag of a unit of work: its business date is read FOR SHARE (close of business waits for it).
WRITES = "loans.writes"


@dataclass
class Outcome:
    """What an action did (or, in a dry run, would do)."""

    loan: Loan
    business_date: date
    state: LoanState | None = None
    entries: list[EntryDraft] = field(default_factory=list)
    transaction: LoanTransaction | None = None
    allocation: Allocation | None = None


@contextmanager
def unit_of_work(db: Database, dry_run: bool) -> Iterator[Session]:
    """One writer transaction; a dry run does all the work and then rolls it back (objects stay readable)."""
    with db.session(writer=True) as session:
        session.begin()
        session.info[WRITES] = True
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        if dry_run:
            session.expunge_all()
            session.rollback()
        else:
            session.commit()


def load_for_write(
    session: Session, principal: Principal, loan_id: str, permission: Permission, expected_version: int | None
) -> Loan:
    loan = repo.lock(session, loan_id)
    if loan is None:
        raise NotFound("loan not found")
    principal.require_on(permission, loan.branch_id, "loan")
    check_version(loan, expected_version)
    return loan


def check_version(loan: Loan, expected_version: int | None) -> None:
    """Optimistic concurrency for clients that send If-Match / version (CONTRACT Concurrency)."""
    if expected_version is not None and expected_version != loan.version:
        raise VersionMismatch(
            f"the loan is at version {loan.version}, not {expected_version}; reload it and retry",
            current_version=loan.version,
        )


def check_action(loan: Loan, action: LoanAction) -> LoanStatus:
    return transition(LoanStatus(loan.status), action)


def append_event(
    session: Session,
    loan: Loan,
    principal: Principal,
    event_type: str,
    effective_date: date,
    amount: int | None = None,
    payload: dict[str, Any] | None = None,
    transaction_id: str | None = None,
) -> LoanEvent:
    loan.event_seq += 1
    if event_type in FINANCIAL_EVENTS:
        loan.latest_event_date = max(filter(None, (loan.latest_event_date, effective_date)))
    event = LoanEvent(
        loan_id=loan.id,
        seq=loan.event_seq,
        type=event_type,
        effective_date=effective_date,
        booked_on=business_date(session),
        amount=amount,
        payload=payload or {},
        transaction_id=transaction_id,
        created_by=principal.user_id,
        request_id=current_request_id(),
    )
    session.add(event)
    outbox.emit(session, loan, event)  # written with this transaction (CONTRACT Events out)
    return event


def record_transaction(
    session: Session,
    loan: Loan,
    principal: Principal,
    tx: LoanTransaction,
    event_type: str,
    amount: int | None,
    payload: dict[str, Any] | None = None,
) -> LoanEvent:
    """Store a user-facing transaction and the event it stands for, linked both ways."""
    session.add(tx)
    session.flush()
    event = append_event(session, loan, principal, event_type, tx.date, amount, payload, tx.id)
    tx.event_seq = event.seq
    return event


def accounts_of(loan: Loan) -> dict[AccountRole, str]:
    mapping = dict(DEFAULT_ACCOUNTS)
    mapping.update({AccountRole(role): code for role, code in (loan.accounts or {}).items()})
    return mapping


def reproject(
    session: Session,
    loan: Loan,
    business_date: date,
    principal: Principal,
    entry_type: str,
    effective_date: date,
    transaction_id: str | None = None,
    reversal_of: str | None = None,
    description: str = "",
    appended: LoanEvent | None = None,
) -> tuple[LoanState, EntryDraft | None]:
    """Re-project the loan, post what the books lack, and rewrite the snapshot. An event dated after the
    stored state resumes from it (O(installments)); anything else replays the whole event log."""
    session.flush()
    resumed = _resumed(session, loan, business_date, appended)
    state, stored = resumed if resumed else (None, None)
    replayed = state is None
    if state is None:
        state = project(loan_terms(loan), domain_events(repo.events(session, loan.id)), business_date)
    target = by_account(role_balances(state.totals), accounts_of(loan))
    lines = correcting_lines(target, ledger.loan_balances(session, loan.id))
    draft = None
    if lines:
        draft = EntryDraft(
            entry_type=entry_type,
            currency=loan.currency,
            effective_date=effective_date,
            lines=[LineDraft(ln.account_code, ln.debit, ln.credit, loan.id) for ln in lines],
            loan_id=loan.id,
            product_id=loan.product_id,
            transaction_id=transaction_id,
            reversal_of=reversal_of,
            description=description,
            created_by=principal.user_id,
            booking_date=business_date,  # a correction is booked today, its value date is the event's
        )
        entry = ledger.post(session, draft, business_date)
        if transaction_id is not None:
            session.execute(
                update(LoanTransaction).where(LoanTransaction.id == transaction_id).values(journal_entry_id=entry.id)
            )
    write_snapshot(session, loan, state, business_date, stored)
    if replayed:
        sync_allocations(session, loan, state)
    return state, draft


def _resumed(
    session: Session, loan: Loan, business_date: date, appended: LoanEvent | None
) -> tuple[LoanState, list[Installment]] | None:
    if appended is None or appended.type not in FINANCIAL_EVENTS or not loan.projection_state:
        return None
    if loan.non_accrual_after_days is not None:
        return None  # interest in suspense is a day-by-day history: replayed, not resumed
    checkpoint = Checkpoint.from_json(loan.projection_state)
    if loan.snapshot_date is not None and loan.snapshot_date > checkpoint.as_of:
        checkpoint = dataclass_replace(checkpoint, as_of=loan.snapshot_date)  # close of business moved it on
    rows = repo.installment_states(session, loan.id)
    if not can_resume(checkpoint, rows, appended.effective_date, loan.latest_event_date):
        return None
    return resume(loan_terms(loan), rows, checkpoint, domain_events([appended]), business_date), rows


def write_snapshot(
    session: Session, loan: Loan, state: LoanState, business_date: date, stored: list[Installment] | None = None
) -> None:
    new_bucket = bucket_for(state.days_past_due)
    if new_bucket != loan.delinquency_bucket:
        session.add(
            DelinquencyChange(
                loan_id=loan.id, on_date=business_date, from_bucket=loan.delinquency_bucket, to_bucket=new_bucket
            )
        )
    loan.status = state.status.value
    loan.snapshot_date = business_date
    loan.installment_amount = state.installment_amount
    loan.principal_outstanding = state.principal_outstanding
    loan.interest_outstanding = state.interest_outstanding
    loan.interest_prepaid = state.interest_in_advance
    loan.fees_outstanding = state.fees_outstanding
    loan.penalties_outstanding = state.penalties_outstanding
    loan.credit_balance = state.credit
    loan.interest_recognized = state.totals.interest_recognized
    loan.accrual_status, loan.interest_suspended = state.accrual_status, state.interest_in_suspense
    loan.days_past_due = state.days_past_due
    loan.delinquency_bucket = new_bucket
    loan.next_due_date, loan.next_due_amount = state.next_due if state.next_due else (None, None)
    loan.maturity_date = state.maturity_date
    loan.past_maturity = state.status == LoanStatus.active and business_date > state.maturity_date
    loan.closed_on = state.closed_on
    loan.written_off_on = state.written_off_on
    current = next((r for r in state.installments if r.due_date > business_date), None)
    loan.current_period_start = current.period_start if current else None
    loan.current_due_date = current.due_date if current else None
    loan.current_period_interest = current.interest if current else 0
    loan.interest_before_current = sum(r.interest for r in state.installments if r.due_date <= business_date)
    unpaid = next((r for r in state.installments if r.outstanding_principal_interest > 0), None)
    loan.oldest_unpaid_due_date = unpaid.due_date if unpaid else None
    loan.projection_state = state.checkpoint.to_json()
    loan.version += 1
    loan.updated_at = utcnow()
    repo.save_installments(session, loan.id, state.installments, stored)


def sync_allocations(session: Session, loan: Loan, state: LoanState) -> None:
    """A backdated payment or a reversal can move later payments' allocations and what a write-off took off
    the books: keep the transaction list true (read and written set-based: a loan may have a thousand
    payments)."""
    changed = []
    for tx_id, seq, kind, amount, current in repo.projected_transactions(session, loan.id):
        alloc = (state.write_offs if kind == "write_off" else state.allocations).get(seq)
        if alloc is None:
            continue
        values = (alloc.principal, alloc.interest, alloc.fees, alloc.penalties, alloc.overpayment, alloc.recovery)
        new_amount = alloc.total if kind == "write_off" else amount
        if values != current or new_amount != amount:
            changed.append(
                {"id": tx_id, "amount": new_amount, **dict(zip(repo.ALLOCATION_COLUMNS, values, strict=True))}
            )
    if changed:
        session.execute(update(LoanTransaction), changed)  # ORM bulk UPDATE by primary key


def business_date(session: Session) -> date:
    """The business date, read once per transaction (the event log records it as each event's `booked_on`)."""
    transaction = session.get_transaction()
    cached = session.info.get("business_date")
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]  # type: ignore[no-any-return]
    if session.info.get(WRITES) and session.get_bind().dialect.name == "postgresql":
        today = operations.business_date_for_write(session)  # a closed day never gets a late booking
    else:
        today = operations.business_date(session)
    session.info["business_date"] = (session.get_transaction(), today)
    return today
