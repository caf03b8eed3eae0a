"""A loan's transactions as the ledger tells them (CONTRACT "Ledger time"): `?include=accruals` adds the daily
accrual and late-fee postings (types `accrual` and `charge`, from the loan's lines in close-of-business and
catch-up entries), and `?known_at=K` shows the list as the system knew it at the end of business date K —
transactions booked later left out, reversals booked later not yet applied, allocations as projected then."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound, ValidationFailed
from app.core.schemas import decode_cursor, encode_cursor
from app.database import Database
from app.domain.servicing import Allocation, project
from app.identity.access import Permission, Principal
from app.ledger import repository as ledger_repo
from app.loans import engine
from app.loans import repository as repo
from app.loans.models import Loan, LoanEvent, LoanTransaction
from app.loans.terms import domain_events, loan_terms

# Journal entry types whose lines are the loan's postings of a day rather than a user-facing transaction.
POSTING_ITEMS = {"accrual": "accrual", "late_fee": "charge"}
NO_ALLOCATION = Allocation(0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class TimelineItem:
    id: str
    type: str
    date: date
    amount: int
    allocation: Allocation
    reversed: bool
    reversal_of: str | None
    channel: str | None
    external_id: str | None
    journal_entry_id: str | None
    created_at: datetime


def _from_transaction(tx: LoanTransaction, allocation: Allocation, reversed_: bool) -> TimelineItem:
    return TimelineItem(
        tx.id,
        tx.type,
        tx.date,
        tx.amount,
        allocation,
        reversed_,
        tx.reversal_of,
        tx.channel,
        tx.external_id,
        tx.journal_entry_id,
        tx.created_at,
    )


def _transactions(session: Session, loan: Loan, known_at: date | None) -> list[TimelineItem]:
    txs = repo.transactions(session, loan.id)
    if known_at is None:
        return [_from_transaction(tx, tx.allocation, tx.reversed) for tx in txs]
    events = session.scalars(select(LoanEvent).where(LoanEvent.loan_id == loan.id).order_by(LoanEvent.seq)).all()
    by_seq = {e.seq: e for e in events}
    state = None
    if loan.disbursement_date is not None and repo.disbursed_by(session, loan.id, known_at):
        state = project(loan_terms(loan), domain_events(events, known_at), max(known_at, loan.disbursement_date))
    items = []
    for tx in txs:
        event = by_seq.get(tx.event_seq)
        if event is None or event.booked_on > known_at:
            continue
        reverser = by_seq.get(event.reversed_by_seq) if event.reversed_by_seq is not None else None
        reversed_ = reverser is not None and reverser.booked_on <= known_at
        projected = None
        if state is not None:
            projected = (state.write_offs if tx.type == "write_off" else state.allocations).get(tx.event_seq)
        amount = projected.total if projected is not None and tx.type == "write_off" else tx.amount
        item = _from_transaction(tx, projected or tx.allocation, reversed_)
        items.append(item if amount == tx.amount else _with_amount(item, amount))
    return items


def _with_amount(item: TimelineItem, amount: int) -> TimelineItem:
    return TimelineItem(**{**item.__dict__, "amount": amount})


def _postings(session: Session, loan: Loan, known_at: date | None) -> list[TimelineItem]:
    items = []
    for entry, lines in ledger_repo.loan_entries(session, loan.id):
        kind = POSTING_ITEMS.get(entry.entry_type)
        if kind is None or (known_at is not None and entry.booking_date > known_at):
            continue
        amount = sum(line.debit for line in lines)
        if amount:
            items.append(
                TimelineItem(
                    entry.id,
                    kind,
                    entry.effective_date,
                    amount,
                    NO_ALLOCATION,
                    False,
                    None,
                    None,
                    None,
                    entry.id,
                    entry.posted_at,
                )
            )
    return items


def transactions(
    db: Database,
    principal: Principal,
    loan_id: str,
    include_accruals: bool,
    known_at: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[Loan, list[TimelineItem], str | None]:
    """The merged list in date order (then posting time), paged by the id of the last item returned."""
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        loan = repo.get(session, loan_id)
        if loan is None or not principal.can_see_branch(loan.branch_id):
            raise NotFound("loan not found")
        if known_at is not None and known_at > engine.business_date(session):
            raise ValidationFailed.single("known_at", "must not be after the business date")
        items = _transactions(session, loan, known_at)
        if include_accruals:
            items += _postings(session, loan, known_at)
        items.sort(key=lambda i: (i.date, i.created_at, i.id))
        return loan, *_page(items, cursor, limit)


def _page(items: Sequence[TimelineItem], cursor: str | None, limit: int) -> tuple[list[TimelineItem], str | None]:
    after = decode_cursor(cursor)
    start = 0
    if after is not None:
        start = next((n + 1 for n, item in enumerate(items) if item.id == after), len(items))
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return page, encode_cursor(page[-1].id) if more and page else None
