from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from sqlalchemy import Select, Table, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core import deferred
from app.core.orm import utcnow
from app.core.pagination import paginate
from app.ledger.models import JournalEntry, JournalLine, LedgerAccount, LoanAccountBalance


def accounts(session: Session) -> Sequence[LedgerAccount]:
    return session.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()


def existing_account_codes(session: Session) -> set[str]:
    return set(session.scalars(select(LedgerAccount.code)).all())


def unbalanced_entries(session: Session, entry_ids: Sequence[str]) -> list[str]:
    stmt = (
        select(JournalLine.entry_id)
        .where(JournalLine.entry_id.in_(entry_ids))
        .group_by(JournalLine.entry_id)
        .having(func.sum(JournalLine.debit) != func.sum(JournalLine.credit))
    )
    return list(session.scalars(stmt).all())


def loan_balances(session: Session, loan_id: str) -> dict[str, int]:
    """Signed (debit positive) balance of every account for one loan, summed from its journal lines."""
    deferred.flush(session)
    stmt = (
        select(JournalLine.account_code, func.sum(JournalLine.debit - JournalLine.credit))
        .where(JournalLine.loan_id == loan_id)
        .group_by(JournalLine.account_code)
    )
    return {code: int(total) for code, total in session.execute(stmt).all() if total}


# session.info key of what a loan write read with its lock (app/loans/repository.py); any posting drops it.
WORKING_SET = "loans.working_set"


def posted_loan_balances(session: Session, loan_id: str) -> dict[str, int]:
    deferred.flush(session)  # this transaction's postings first
    t = LoanAccountBalance.__table__
    rows = session.execute(select(t.c.account_code, t.c.balance).where(t.c.loan_id == loan_id)).all()
    return {str(code): int(balance) for code, balance in rows if balance}


def add_to_loan_balances(session: Session, deltas: dict[tuple[str, str], int]) -> None:
    """Add signed amounts to posted balances: one multi-row upsert statement (with the transaction's other
    queued rows on PostgreSQL: app/core/deferred.py)."""
    session.info.pop(WORKING_SET, None)
    table = cast(Table, LoanAccountBalance.__table__)
    deferred.add_to(session, table, ("loan_id", "account_code"), "balance", deltas)


def add_lines_to_loan_balances(session: Session, after_line_id: int) -> None:
    """SQLite's set-based postings add their new lines (those above `after_line_id`; SQLite has one writer at a
    time) to the posted balances in the same transaction."""
    session.execute(
        text(
            "INSERT INTO loan_account_balances (loan_id, account_code, balance) "
            "SELECT loan_id, account_code, SUM(debit - credit) FROM journal_lines "
            "WHERE id > :after AND loan_id IS NOT NULL GROUP BY loan_id, account_code "
            "ON CONFLICT (loan_id, account_code) DO UPDATE SET balance = loan_account_balances.balance + "
            "excluded.balance"
        ),
        {"after": after_line_id},
    )


def posted_balance_mismatches(session: Session, after_loan: str, upto_loan: str) -> list[tuple[str, str, int, int]]:
    """(loan, account, journal sum, posted balance) where the posted balances differ from the journal."""
    journal = (
        "SELECT loan_id, account_code, SUM(debit - credit) AS amount FROM journal_lines "
        "WHERE loan_id > :lo AND loan_id <= :hi GROUP BY loan_id, account_code"
    )
    posted = (
        "SELECT loan_id, account_code, balance AS amount FROM loan_account_balances "
        "WHERE loan_id > :lo AND loan_id <= :hi"
    )
    rows = session.execute(
        text(
            f"SELECT COALESCE(j.loan_id, p.loan_id), COALESCE(j.account_code, p.account_code), "
            f"COALESCE(j.amount, 0), COALESCE(p.amount, 0) FROM ({journal}) j FULL OUTER JOIN ({posted}) p "
            "ON p.loan_id = j.loan_id AND p.account_code = j.account_code "
            "WHERE COALESCE(j.amount, 0) <> COALESCE(p.amount, 0)"
        ),
        {"lo": after_loan, "hi": upto_loan},
    ).all()
    return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


def insert_entry(session: Session, values: dict[str, Any]) -> None:
    deferred.insert_rows(session, cast(Table, JournalEntry.__table__), [values])


def insert_lines(session: Session, lines: Sequence[dict[str, Any]]) -> None:
    # One multi-row INSERT on the table, no RETURNING of generated ids (at commit on PostgreSQL).
    deferred.insert_rows(session, cast(Table, JournalLine.__table__), lines)


def trial_balance(session: Session, as_of: date, currency: str) -> list[tuple[LedgerAccount, int, int]]:
    sums = (
        select(
            JournalLine.account_code,
            func.coalesce(func.sum(JournalLine.debit), 0).label("debit"),
            func.coalesce(func.sum(JournalLine.credit), 0).label("credit"),
        )
        .where(JournalLine.booking_date <= as_of, JournalLine.currency == currency)
        .group_by(JournalLine.account_code)
        .subquery()
    )
    stmt = (
        select(LedgerAccount, func.coalesce(sums.c.debit, 0), func.coalesce(sums.c.credit, 0))
        .outerjoin(sums, sums.c.account_code == LedgerAccount.code)
        .order_by(LedgerAccount.code)
    )
    return [(acct, int(d), int(c)) for acct, d, c in session.execute(stmt).all()]


def currencies_in_books(session: Session) -> list[str]:
    return list(session.scalars(select(JournalLine.currency).distinct().order_by(JournalLine.currency)).all())


def list_entries(
    session: Session,
    loan_ids: Sequence[str] | None,
    date_from: date | None,
    date_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[JournalEntry], str | None]:
    """Entries by booking date (`from`/`to`); with `loan_ids`, every entry holding a line of those loans —
    including the per-product close-of-business entries (CONTRACT "Ledger time")."""
    stmt = select(JournalEntry)
    if loan_ids is not None:
        stmt = stmt.where(JournalEntry.id.in_(_entries_with_lines_of(loan_ids)))
    if date_from is not None:
        stmt = stmt.where(JournalEntry.booking_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(JournalEntry.booking_date <= date_to)
    return paginate(session, stmt, JournalEntry.id, cursor, limit)


def _entries_with_lines_of(loan_ids: Sequence[str]) -> Select[str]:
    return select(JournalLine.entry_id).where(JournalLine.loan_id.in_(loan_ids)).distinct()


def loan_entries(session: Session, loan_id: str) -> list[tuple[JournalEntry, list[JournalLine]]]:
    """A loan's whole journal in booking order: its own entries and its lines inside shared ones."""
    entries = session.scalars(
        select(JournalEntry)
        .where(JournalEntry.id.in_(_entries_with_lines_of([loan_id])))
        .order_by(JournalEntry.booking_date, JournalEntry.posted_at, JournalEntry.id)
    ).all()
    lines = lines_of(session, [e.id for e in entries], [loan_id])
    return [(e, lines[e.id]) for e in entries]


def lines_of(
    session: Session, entry_ids: Sequence[str], loan_ids: Sequence[str] | None = None
) -> dict[str, list[JournalLine]]:
    """The entries' lines; with `loan_ids`, only those loans' lines (a close-of-business entry holds many)."""
    result: dict[str, list[JournalLine]] = {eid: [] for eid in entry_ids}
    if not entry_ids:
        return result
    stmt = select(JournalLine).where(JournalLine.entry_id.in_(entry_ids))
    if loan_ids is not None:
        stmt = stmt.where(JournalLine.loan_id.in_(loan_ids))
    for line in session.scalars(stmt.order_by(JournalLine.id)):
        result[line.entry_id].append(line)
    return result


def all_unbalanced_entries(session: Session) -> list[str]:
    stmt = (
        select(JournalLine.entry_id)
        .group_by(JournalLine.entry_id)
        .having(func.sum(JournalLine.debit) != func.sum(JournalLine.credit))
    )
    return list(session.scalars(stmt).all())


def ensure_entry(
    session: Session,
    entry_id: str,
    entry_type: str,
    currency: str,
    effective_date: date,
    product_id: str | None,
    description: str,
) -> None:
    values = {
        "id": entry_id,
        "entry_type": entry_type,
        "currency": currency,
        "effective_date": effective_date,
        "booking_date": effective_date,
        "posted_at": utcnow(),
        "product_id": product_id,
        "description": description,
    }
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(JournalEntry).values(**values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def max_line_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(JournalLine.id), 0))) or 0)


def insert_lines_from_select(
    session: Session,
    entries: Sequence[tuple[str, str, str]],
    effective_date: date,
    lines_sql: str,
    params: dict[str, object],
) -> dict[str, tuple[int, int, int]]:
    """Insert the lines a SELECT yields (columns entry_key, account_code, loan_id, debit, credit) into the entries
    `entries` names as (entry_key, entry_id, currency), and add them to the loans' posted balances. Returns
    {entry_id: (lines, total debit, total credit)} of exactly the inserted lines. PostgreSQL: one statement (the
    inserted rows feed the balances and the totals), so lines another worker adds to the same entry are never
    counted; SQLite (one writer at a time): the lines above the highest id before the insert."""
    session.info.pop(WORKING_SET, None)
    deferred.flush(session)  # this transaction's queued postings before the set-based ones
    values = {**params, "effective_date": effective_date}
    rows = []
    for n, (key, entry_id, currency) in enumerate(entries):
        rows.append(f"(:entry_key_{n}, :entry_id_{n}, :currency_{n})")
        values.update({f"entry_key_{n}": key, f"entry_id_{n}": entry_id, f"currency_{n}": currency})
    if not rows:
        return {}
    keyed = f"e (entry_key, entry_id, currency) AS (VALUES {', '.join(rows)})"
    insert_sql = (
        "INSERT INTO journal_lines (entry_id, account_code, loan_id, currency, effective_date, booking_date, "
        "debit, credit) SELECT e.entry_id, src.account_code, src.loan_id, e.currency, :effective_date, "
        ":effective_date, src.debit, src.credit "
        f"FROM ({lines_sql}) src JOIN e ON e.entry_key = src.entry_key WHERE src.debit > 0 OR src.credit > 0"
    )
    if session.get_bind().dialect.name == "postgresql":
        # The posted balances: an UPDATE of the rows there are (in key order, one pass over the primary key's
        # leaves), an INSERT of the few missing ones. The chunk's loans are locked, so no other writer adds their
        # rows meanwhile; ON CONFLICT only keeps a writer that posts without the loan lock from failing the chunk.
        found = session.execute(
            text(
                f"WITH {keyed}, ins AS ({insert_sql} RETURNING entry_id, loan_id, account_code, debit, credit), "
                "agg AS (SELECT loan_id, account_code, SUM(debit - credit) AS amount FROM ins "
                "WHERE loan_id IS NOT NULL GROUP BY loan_id, account_code), "
                "upd AS (UPDATE loan_account_balances b SET balance = b.balance + a.amount "
                "FROM (SELECT * FROM agg ORDER BY loan_id, account_code) a "
                "WHERE b.loan_id = a.loan_id AND b.account_code = a.account_code RETURNING b.loan_id, b.account_code), "
                "new AS (INSERT INTO loan_account_balances (loan_id, account_code, balance) "
                "SELECT a.loan_id, a.account_code, a.amount FROM agg a WHERE NOT EXISTS (SELECT 1 FROM upd u "
                "WHERE u.loan_id = a.loan_id AND u.account_code = a.account_code) "
                "ON CONFLICT (loan_id, account_code) DO UPDATE "
                "SET balance = loan_account_balances.balance + excluded.balance) "
                "SELECT entry_id, COUNT(*), COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) FROM ins "
                "GROUP BY entry_id"
            ),
            values,
        ).all()
        return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in found}
    before = max_line_id(session)
    session.execute(text(f"WITH {keyed} {insert_sql}"), values)
    add_lines_to_loan_balances(session, before)
    return new_line_totals(session, before)


def new_line_totals(session: Session, after_line_id: int) -> dict[str, tuple[int, int, int]]:
    """{entry_id: (lines, total debit, total credit)} of the lines above `after_line_id`."""
    rows = session.execute(
        select(
            JournalLine.entry_id,
            func.count(),
            func.coalesce(func.sum(JournalLine.debit), 0),
            func.coalesce(func.sum(JournalLine.credit), 0),
        )
        .where(JournalLine.id > after_line_id)
        .group_by(JournalLine.entry_id)
    ).all()
    return {str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}
