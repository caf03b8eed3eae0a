"""The ledger's use cases. `post()` is the only code that writes journal tables."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.business_calendar import repository as calendar_repo
from app.core.errors import Conflict, ValidationFailed
from app.core.ids import new_id
from app.core.metrics import JOURNAL_ENTRIES_POSTED
from app.core.orm import utcnow
from app.database import Database
from app.identity.access import Permission, Principal
from app.ledger import repository as repo
from app.ledger.entries import EntryDraft, UnbalancedEntry, check_balanced
from app.ledger.models import JournalEntry, JournalLine, LedgerAccount


def post(session: Session, draft: EntryDraft, business_date: date | None = None) -> str:
    """Write one balanced entry inside the caller's transaction and add its lines to the loans' posted
    balances: three statements (entry, lines, balances) whatever the number of lines. Returns the entry id.
    It is booked on `draft.booking_date`, by default the business date (which the caller passes when it has
    read it in this transaction); never on a closed day."""
    check_balanced(draft)
    today = business_date or calendar_repo.business_date(session)
    booking_date = draft.booking_date or today
    check_open(booking_date, today)
    entry_id = new_id()
    repo.insert_entry(
        session,
        {
            "id": entry_id,
            "entry_type": draft.entry_type,
            "currency": draft.currency,
            "effective_date": draft.effective_date,
            "booking_date": booking_date,
            "posted_at": utcnow(),
            "loan_id": draft.loan_id,
            "product_id": draft.product_id,
            "transaction_id": draft.transaction_id,
            "reversal_of": draft.reversal_of,
            "description": draft.description[:500],
            "created_by": draft.created_by,
        },
    )
    lines: list[dict[str, Any]] = []
    deltas: dict[tuple[str, str], int] = {}
    for line in draft.lines:
        loan_id = line.loan_id if line.loan_id is not None else draft.loan_id
        lines.append(
            {
                "entry_id": entry_id,
                "account_code": line.account_code,
                "loan_id": loan_id,
                "currency": draft.currency,
                "effective_date": draft.effective_date,
                "booking_date": booking_date,
                "debit": line.debit,
                "credit": line.credit,
            }
        )
        if loan_id is not None:
            key = (loan_id, line.account_code)
            deltas[key] = deltas.get(key, 0) + line.debit - line.credit
    repo.insert_lines(session, lines)
    repo.add_to_loan_balances(session, deltas)
    JOURNAL_ENTRIES_POSTED.inc()
    return entry_id


class ClosedDay(Conflict):
    """Something tried to book into a day whose close of business already ran (CONTRACT "Ledger time")."""


def check_open(booking_date: date, business_date: date) -> None:
    """A closed day never changes: every day before the business date is closed."""
    if booking_date < business_date:
        raise ClosedDay(
            f"{booking_date.isoformat()} is closed (the business date is {business_date.isoformat()}): "
            "corrections are booked on the business date with the event's date as value date",
            allowed_actions=[],
        )


def loan_balances(session: Session, loan_id: str) -> dict[str, int]:
    """The loan's posted balance per account (debit positive), as maintained by every posting."""
    return repo.posted_loan_balances(session, loan_id)


@dataclass(frozen=True)
class TrialBalanceRow:
    account: LedgerAccount
    debit: int
    credit: int


@dataclass(frozen=True)
class TrialBalance:
    as_of: date
    currency: str
    rows: list[TrialBalanceRow]

    @property
    def total_debit(self) -> int:
        return sum(r.debit for r in self.rows)

    @property
    def total_credit(self) -> int:
        return sum(r.credit for r in self.rows)


def trial_balance(db: Database, principal: Principal, as_of: date, currency: str | None) -> TrialBalance:
    principal.require(Permission.ledger_read)
    with db.session(writer=False) as session:
        if currency is None:
            present = repo.currencies_in_books(session)
            currency = present[0] if len(present) == 1 else "USD"
        rows = [TrialBalanceRow(a, d, c) for a, d, c in repo.trial_balance(session, as_of, currency)]
        return TrialBalance(as_of, currency, rows)


def accounts(db: Database, principal: Principal) -> Sequence[LedgerAccount]:
    principal.require(Permission.ledger_read)
    with db.session(writer=False) as session:
        return repo.accounts(session)


def entries(
    db: Database,
    principal: Principal,
    loan_id: str | None,
    date_from: date | None,
    date_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[tuple[JournalEntry, list[JournalLine]]], str | None]:
    principal.require(Permission.ledger_read)
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed.single("from", "must not be after 'to'")
    with db.session(writer=False) as session:
        loan_ids = [loan_id] if loan_id else None
        found, next_cursor = repo.list_entries(session, loan_ids, date_from, date_to, cursor, limit)
        lines = repo.lines_of(session, [e.id for e in found], loan_ids)
        return [(e, lines[e.id]) for e in found], next_cursor


def verify(db: Database) -> list[str]:
    """Problems found in the books (empty when every entry and every currency balances)."""
    problems: list[str] = []
    with db.session(writer=False) as session:
        for currency in repo.currencies_in_books(session):
            rows = repo.trial_balance(session, date.max, currency)
            debit, credit = sum(r[1] for r in rows), sum(r[2] for r in rows)
            if debit != credit:
                problems.append(f"{currency}: total debits {debit} != total credits {credit}")
        problems += [f"entry {e} does not balance" for e in repo.all_unbalanced_entries(session)]
        problems += [
            f"loan {loan_id}: account {code} has posted balance {posted} but its journal lines sum to {journal}"
            for loan_id, code, journal, posted in repo.posted_balance_mismatches(session, "", "~")
        ]
    return problems


@dataclass(frozen=True)
class SetEntry:
    """One entry of a set-based posting: its lines are those the SELECT keys `key`."""

    key: str
    entry_id: str
    currency: str
    product_id: str | None
    description: str


def post_entries_from_select(
    session: Session,
    *,
    entries: Sequence[SetEntry],
    entry_type: str,
    effective_date: date,
    lines_sql: str,
    params: dict[str, object],
) -> int:
    """Set-based posting (close of business): make sure the day's entries exist, insert in one statement the
    lines a SELECT yields (columns entry_key, account_code, loan_id, debit, credit — balanced per entry key), and
    check in the database that each entry's new lines balance. Booked on the day being closed, its value date.
    Returns the lines inserted."""
    check_open(effective_date, calendar_repo.business_date(session))
    for e in entries:
        repo.ensure_entry(session, e.entry_id, entry_type, e.currency, effective_date, e.product_id, e.description)
    totals = repo.insert_lines_from_select(
        session, [(e.key, e.entry_id, e.currency) for e in entries], effective_date, lines_sql, params
    )
    for entry_id, (_, debit, credit) in totals.items():
        if debit != credit:
            raise UnbalancedEntry(f"set-based lines for {entry_id} do not balance: {debit} != {credit}")
    JOURNAL_ENTRIES_POSTED.inc(sum(1 for lines, _, _ in totals.values() if lines))
    return sum(lines for lines, _, _ in totals.values())
