"""The write path shared by every loan action: lock, check the lifecycle, append the event, re-project, post
the difference between the books and the projection, rewrite the snapshot — all in the caller's transaction."""

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.business_calendar import repository as calendar_repo
from app.core.errors import NotFound, VersionMismatch
from app.core.ids import new_id
from app.core.orm import utcnow
from app.core.request_context import current_request_id
from app.database import Database
from app.domain.delinquency import bucket_for
from app.domain.lifecycle import LoanAction, LoanStatus, transition
from app.domain.postings import AccountRole, by_account, correcting_lines, role_balances
from app.domain.servicing import (
    Allocation,
    Checkpoint,
    Installment,
    LoanState,
    LoanTerms,
    can_resume,
    project,
    resume,
)
from app.events import outbox
from app.idempotency.keys import IdempotentRequest
from app.identity.access import Permission, Principal
from app.ledger import service as ledger
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.ledger.entries import EntryDraft, LineDraft
from app.loans import repository as repo
from app.loans.models import DelinquencyChange, EventRecord, Loan, LoanEvent, LoanTransaction
from app.loans.numbering import paid_through
from app.loans.terms import FINANCIAL_EVENTS, domain_events, loan_terms

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
    """The locked, authorised loan (see `lock_for_write`)."""
    return lock_for_write(session, principal, loan_id, permission, expected_version).loan


def lock_for_write(
    session: Session,
    principal: Principal,
    loan_id: str,
    permission: Permission,
    expected_version: int | None,
    request: IdempotentRequest | None = None,
) -> repo.LockedLoan:
    """Lock and authorise the loan (one statement, with the business date and any stored idempotent answer).
    On PostgreSQL a write's first lock takes the business date FOR SHARE in that statement, before the loan
    row: close of business holds it exclusively while it closes the day and then locks loans, so the opposite
    order could deadlock."""
    share = bool(session.info.get(WRITES)) and repo.BUSINESS_DATE not in session.info
    locked = repo.lock(session, loan_id, request, share_business_date=share)
    if locked is None:
        raise NotFound("loan not found")
    principal.require_on(permission, locked.loan.branch_id, "loan")
    check_version(locked.loan, expected_version)
    return locked


def check_version(loan: Loan, expected_version: int | None) -> None:
    """Optimistic concurrency for clients that send If-Match / version (CONTRACT Concurrency)."""
    if expected_version is not None and expected_version != loan.version:
        raise VersionMismatch(
            f"the loan is at version {loan.version}, not {expected_version}; reload it and retry",
            current_version=loan.version,
        )


def check_action(loan: Loan, action: LoanAction) -> LoanStatus:
    return transition(LoanStatus(loan.status), action, loan.credit_balance)


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
    """Store a user-facing transaction and the event it stands for, linked both ways. Nothing is flushed: the
    rows are inserted once, complete, when the action's unit of work flushes."""
    if tx.id is None:
        tx.id = new_id()
    session.add(tx)
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
    stored state resumes from it (O(installments)); anything else replays the whole event log. Pending rows
    (the new transaction and event) are not flushed here: each is inserted once, complete, by the caller's
    unit of work."""
    with session.no_autoflush:
        working = repo.take_working_set(session, loan)
        rows, posted = working if working else (None, None)
        resumed = _resumed(session, loan, business_date, appended, rows)
        # a replay diffs its installments against the rows read with the lock (when it has them), so only what
        # changed is written, not the whole schedule
        state, stored = resumed if resumed else (None, rows)
        replayed = state is None
        invalid: list[date] = []
        if state is None:
            session.flush()  # the replay reads the event log, including the event just appended
            log = repo.events(session, loan.id)
            terms = loan_terms(loan)
            state, invalid = from_checkpoint(session, loan, terms, log, business_date)
            if state is None:
                state = project(terms, domain_events(log), business_date)
        if posted is None:
            posted = ledger.loan_balances(session, loan.id)
        target = by_account(role_balances(state.totals), accounts_of(loan))
        lines = correcting_lines(target, posted)
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
            entry_id = ledger.post(session, draft, business_date)
            if transaction_id is not None:
                _link_entry(session, transaction_id, entry_id)
        write_snapshot(session, loan, state, business_date, stored)
        repo.keep_working_set(session, loan, state.installments, target)
        if replayed:
            sync_allocations(session, loan, state)
        _keep_checkpoint(session, loan, state, replayed, invalid)
    return state, draft


# A backdated event resumes from the latest stored state before its date: states two weeks apart, eight kept
# (about four months of backdating at O(events since) instead of O(the whole log)).
CHECKPOINT_SPACING = timedelta(days=14)
CHECKPOINTS_KEPT = 8


def terms_key(terms: LoanTerms) -> str:
    """A stored state is only valid for the terms it was computed with (frozen dataclasses: a stable repr)."""
    return hashlib.blake2b(repr(terms).encode(), digest_size=16).hexdigest()


def from_checkpoint(
    session: Session, loan: Loan, terms: LoanTerms, log: Sequence[EventRecord], business_date: date
) -> tuple[LoanState | None, list[date]]:
    """Resume from the newest stored state dated by `business_date` and still valid for the event log as now
    known, up to the end of `business_date`; also the dates of the states found invalid (an event known later
    is dated on or before them, or one they include was reversed) — a writer drops those. A reader passes the
    date it asks about as `business_date` (and drops nothing)."""
    if loan.non_accrual_after_days is not None:
        return None, []  # interest in suspense is a day-by-day history: replayed, never resumed
    key = terms_key(terms)
    invalid: list[date] = []
    events = domain_events(log)
    for stored in repo.checkpoints(session, loan.id):
        known_later = [e for e in log if e.seq > stored.event_seq]
        reached_back = any(e.effective_date <= stored.as_of for e in known_later) or any(
            e.seq <= stored.event_seq and e.reversed_by_seq is not None and e.reversed_by_seq > stored.event_seq
            for e in log
        )
        if stored.terms_key != key or reached_back or stored.as_of > business_date:
            invalid.append(stored.as_of)
            continue
        rows = repo.rows_from_json(stored.state["rows"])
        checkpoint = Checkpoint.from_json(stored.state["checkpoint"])
        later = [e for e in events if e.date > stored.as_of]
        return resume(terms, rows, checkpoint, later, business_date), invalid
    return None, invalid


def _keep_checkpoint(session: Session, loan: Loan, state: LoanState, replayed: bool, invalid: list[date]) -> None:
    """Store this state when the newest stored one is two weeks old, or invalid (a replay found it so, or it is
    of this very date and this write came after it); invalid ones are dropped."""
    if loan.non_accrual_after_days is not None:
        return
    as_of = state.checkpoint.as_of
    latest = repo.latest_checkpoint(session, loan.id)
    stale = replayed and latest is not None and (latest in invalid or latest >= as_of)
    if latest is not None and not stale and as_of - latest < CHECKPOINT_SPACING:
        return
    values = {
        "as_of": as_of,
        "event_seq": loan.event_seq,
        "terms_key": terms_key(loan_terms(loan)),
        "state": {"checkpoint": state.checkpoint.to_json(), "rows": repo.rows_to_json(state.installments)},
    }
    drop = sorted({*invalid, *([as_of] if latest is not None and latest >= as_of else [])})
    repo.replace_checkpoints(session, loan.id, drop, values, CHECKPOINTS_KEPT)


def _link_entry(session: Session, transaction_id: str, entry_id: str) -> None:
    pending = next((o for o in session.new if isinstance(o, LoanTransaction) and o.id == transaction_id), None)
    if pending is not None:
        pending.journal_entry_id = entry_id
    else:
        session.execute(
            update(LoanTransaction).where(LoanTransaction.id == transaction_id).values(journal_entry_id=entry_id)
        )


def _resumed(
    session: Session, loan: Loan, business_date: date, appended: LoanEvent | None, rows: list[Installment] | None
) -> tuple[LoanState, list[Installment]] | None:
    if appended is None or appended.type not in FINANCIAL_EVENTS or not loan.projection_state:
        return None
    if loan.non_accrual_after_days is not None:
        return None  # interest in suspense is a day-by-day history: replayed, not resumed
    checkpoint = Checkpoint.from_json(loan.projection_state)
    if loan.snapshot_date is not None and loan.snapshot_date > checkpoint.as_of:
        checkpoint = dataclass_replace(checkpoint, as_of=loan.snapshot_date)  # close of business moved it on
    if rows is None:
        rows = repo.installment_states(session, loan.id)
    if not can_resume(checkpoint, rows, appended.effective_date, loan.latest_event_date):
        return None
    return resume(loan_terms(loan), rows, checkpoint, domain_events([appended]), business_date), rows


def write_snapshot(
    session: Session, loan: Loan, state: LoanState, business_date: date, stored: list[Installment] | None = None
) -> None:
    new_bucket = bucket_for(state.days_past_due)
    unpaid = next((r for r in state.installments if r.outstanding_principal_interest > 0), None)
    overdue_since = unpaid.due_date if unpaid else None
    if new_bucket != loan.delinquency_bucket or overdue_since != loan.oldest_unpaid_due_date:
        session.add(
            DelinquencyChange(
                loan_id=loan.id,
                on_date=business_date,
                from_bucket=loan.delinquency_bucket,
                to_bucket=new_bucket,
                overdue_since=overdue_since,
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
    loan.oldest_unpaid_due_date = overdue_since
    loan.projection_state = state.checkpoint.to_json()
    loan.paid_through = paid_through(state.installments)
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
    """The business date: as read with the loan's lock in this transaction, else from the calendar (on
    PostgreSQL a write reads it FOR SHARE and holds it to commit: close of business waits for in-flight writes
    before it closes the day, so nothing is booked into a closed day)."""
    cached = session.info.get(repo.BUSINESS_DATE)
    if isinstance(cached, date):
        return cached
    if session.info.get(WRITES) and session.get_bind().dialect.name == "postgresql":
        today = calendar_repo.business_date_for_write(session)
    else:
        today = calendar_repo.business_date(session)
    session.info[repo.BUSINESS_DATE] = today
    return today
