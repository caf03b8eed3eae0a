import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, literal_column, select, update
from sqlalchemy.orm import Session

from app.business_calendar.models import BusinessCalendar
from app.core import deferred
from app.core.pagination import paginate
from app.domain.servicing import Installment
from app.idempotency.keys import IdempotentRequest
from app.idempotency.models import IdempotencyKey
from app.ledger.repository import WORKING_SET
from app.loans import numbering
from app.loans.models import Loan, LoanCheckpoint, LoanEvent, LoanInstallment, LoanTransaction, LoggedEvent


def get(session: Session, loan_id: str) -> Loan | None:
    return session.get(Loan, loan_id)


@dataclass(frozen=True)
class LockedLoan:
    loan: Loan
    business_date: date
    stored_response: IdempotencyKey | None


BUSINESS_DATE = "loans.business_date"  # session.info key: the business date read with the loan's lock


def lock(
    session: Session, loan_id: str, request: IdempotentRequest | None = None, share_business_date: bool = False
) -> LockedLoan | None:
    """Load the loan for writing, with the business date and the stored answer for an Idempotency-Key, in one
    statement. PostgreSQL: a row lock held to commit serialises writers on this loan; SQLite: the BEGIN
    IMMEDIATE write lock already serialises every writer. `share_business_date` (PostgreSQL): the statement
    first takes the business date FOR SHARE, held to commit (close of business holds it exclusively while it
    closes the day, then locks loans: a writer waits for it before it holds any loan lock, never after)."""
    deferred.flush(session)  # the working set read below includes this transaction's postings
    postgres = session.get_bind().dialect.name == "postgresql"
    day = select(BusinessCalendar.business_date).where(BusinessCalendar.id == 1)
    if postgres and share_business_date:
        shared = day.with_for_update(read=True).cte("business_day")
        calendar = select(shared.c.business_date).scalar_subquery()
    else:
        calendar = day.scalar_subquery()
    stmt = select(Loan, calendar.label("business_date"), *_working_set_columns(postgres))
    if request is not None:
        stmt = stmt.add_columns(IdempotencyKey).outerjoin(
            IdempotencyKey, and_(IdempotencyKey.user_id == request.user_id, IdempotencyKey.key == request.key)
        )
    stmt = stmt.where(Loan.id == loan_id).execution_options(populate_existing=True)
    if postgres:
        stmt = stmt.with_for_update(of=Loan)
    row = session.execute(stmt).first()
    if row is None:
        return None
    if row[1] is None:
        raise RuntimeError("the business calendar is not initialised: run `loanctl init-db`")
    session.info[BUSINESS_DATE] = row[1]
    loan = row[0]
    # PostgreSQL evaluates the subqueries with the statement's snapshot, taken before a wait for the row lock:
    # if another writer committed meanwhile, the locked row is its new version but the subqueries are not —
    # they are used only when the version they saw is the version locked (else each is read again).
    if row[5] == loan.version:
        session.info.setdefault(WORKING_SET, {})[loan_id] = (
            loan.version,
            rows_from_json(row[2]),
            _balances_from_json(row[3]),
        )
        session.info.setdefault(LATEST_CHECKPOINT, {})[loan_id] = _as_date(row[4])
    else:
        session.info.get(WORKING_SET, {}).pop(loan_id, None)
        session.info.get(LATEST_CHECKPOINT, {}).pop(loan_id, None)
    return LockedLoan(loan, row[1], row[6] if request is not None else None)


LATEST_CHECKPOINT = "loans.latest_checkpoint"  # session.info key: {loan id: newest stored checkpoint date}


def latest_checkpoint(session: Session, loan_id: str) -> date | None:
    """The newest stored checkpoint's date, as read with the loan's lock (else from the table)."""
    known: dict[str, date | None] = session.info.get(LATEST_CHECKPOINT, {})
    if loan_id in known:
        return known[loan_id]
    t = LoanCheckpoint.__table__
    return _as_date(session.scalar(select(func.max(t.c.as_of)).where(t.c.loan_id == loan_id)))


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def checkpoints(session: Session, loan_id: str) -> list[LoanCheckpoint]:
    """The loan's stored projection states, newest first."""
    return list(
        session.scalars(
            select(LoanCheckpoint).where(LoanCheckpoint.loan_id == loan_id).order_by(LoanCheckpoint.as_of.desc())
        ).all()
    )


def drop_checkpoints(session: Session, loan_id: str) -> None:
    t = cast(Table, LoanCheckpoint.__table__)
    session.execute(delete(t).where(t.c.loan_id == loan_id))
    session.info.get(LATEST_CHECKPOINT, {}).pop(loan_id, None)


def replace_checkpoints(
    session: Session, loan_id: str, drop: Sequence[date], add: dict[str, Any] | None, keep: int
) -> None:
    """Drop the states of the given dates (no longer valid), add one (the values of a LoanCheckpoint row), keep
    the newest `keep`."""
    t = cast(Table, LoanCheckpoint.__table__)
    if drop:
        session.execute(delete(t).where(t.c.loan_id == loan_id, t.c.as_of.in_(list(drop))))
    if add is not None:
        session.execute(insert(t).values(loan_id=loan_id, **add))
        stale = select(t.c.as_of).where(t.c.loan_id == loan_id).order_by(t.c.as_of.desc()).offset(keep)
        session.execute(delete(t).where(t.c.loan_id == loan_id, t.c.as_of.in_(stale)))
    session.info.get(LATEST_CHECKPOINT, {}).pop(loan_id, None)


def take_working_set(session: Session, loan: Loan) -> tuple[list[Installment], dict[str, int]] | None:
    """The installments and posted balances read with the loan's lock, used once and only while nothing was
    written since: any posting or installment write in this transaction drops them, as does a new version."""
    cached: dict[str, tuple[int, list[Installment], dict[str, int]]] = session.info.get(WORKING_SET, {})
    found = cached.pop(loan.id, None)
    if found is None or found[0] != loan.version:
        return None
    return found[1], found[2]


def keep_working_set(session: Session, loan: Loan, rows: Sequence[Installment], posted: dict[str, int]) -> None:
    """What this write left behind (installments and posted balances at the loan's new version), for a next
    action on the same locked loan in this transaction (a payment batch posts a loan's rows in one). The rows
    are not copied: a projection copies the rows it starts from, and a finished state's rows are only read."""
    session.info.setdefault(WORKING_SET, {})[loan.id] = (loan.version, list(rows), dict(posted))


def _working_set_columns(postgres: bool) -> list[Any]:
    """The loan's installments and posted balances as two JSON scalar subqueries of the lock statement (one
    round trip for everything a write reads)."""
    # Column names from this module's constant, never from input.
    fields = ", ".join(f"i.{f}" for f in ("number", *INSTALLMENT_FIELDS))
    if postgres:
        rows = (
            f"(SELECT json_agg(json_build_array({fields}) ORDER BY i.number) FROM loan_installments i "
            "WHERE i.loan_id = loans.id)"
        )
        balances = (
            "(SELECT json_object_agg(b.account_code, b.balance) FROM loan_account_balances b "
            "WHERE b.loan_id = loans.id)"
        )
    else:
        rows = (
            f"(SELECT json_group_array(json_array({fields})) FROM (SELECT * FROM loan_installments i "
            "WHERE i.loan_id = loans.id ORDER BY i.number) i)"
        )
        balances = (
            "(SELECT json_group_object(b.account_code, b.balance) FROM loan_account_balances b "
            "WHERE b.loan_id = loans.id)"
        )
    latest = "(SELECT MAX(c.as_of) FROM loan_checkpoints c WHERE c.loan_id = loans.id)"
    seen_version = "(SELECT v.version FROM loans v WHERE v.id = loans.id)"  # the snapshot the subqueries saw
    return [
        literal_column(rows).label("installments_json"),
        literal_column(balances).label("balances_json"),
        literal_column(latest).label("latest_checkpoint"),
        literal_column(seen_version).label("seen_version"),
    ]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def rows_from_json(value: Any) -> list[Installment]:
    rows: list[Installment] = []
    for r in _json(value) or []:
        principal, interest, fees, penalties, paid_p, paid_i, paid_f, paid_pen = (int(a) for a in r[3:11])
        rows.append(
            Installment(
                int(r[0]),
                date.fromisoformat(r[1][:10]),
                date.fromisoformat(r[2][:10]),
                principal,
                interest,
                fees,
                penalties,
                paid_p,
                paid_i,
                paid_f,
                paid_pen,
                date.fromisoformat(r[11][:10]) if r[11] else None,
                *(int(a) for a in r[12:15]),  # waived interest, fees, penalties (absent from older states)
            )
        )
    return rows


def rows_to_json(rows: Sequence[Installment]) -> list[list[Any]]:
    """Installments as compact arrays in INSTALLMENT_FIELDS order (the inverse of `rows_from_json`)."""
    return [
        [
            r.number,
            r.period_start.isoformat(),
            r.due_date.isoformat(),
            r.principal,
            r.interest,
            r.fees,
            r.penalties,
            r.paid_principal,
            r.paid_interest,
            r.paid_fees,
            r.paid_penalties,
            r.late_fee_date.isoformat() if r.late_fee_date else None,
            r.waived_interest,
            r.waived_fees,
            r.waived_penalties,
        ]
        for r in rows
    ]


def _balances_from_json(value: Any) -> dict[str, int]:
    return {str(code): int(amount) for code, amount in (_json(value) or {}).items() if amount}


def by_external_id(session: Session, external_id: str) -> Loan | None:
    return session.scalars(select(Loan).where(Loan.external_id == external_id)).first()


def transaction_by_external_id(session: Session, external_id: str) -> LoanTransaction | None:
    return session.scalars(select(LoanTransaction).where(LoanTransaction.external_id == external_id)).first()


def list_loans(
    session: Session,
    branch_scope: str | None,
    status: str | None,
    borrower_id: str | None,
    branch_id: str | None,
    cursor: str | None,
    limit: int,
    account_no: str | None = None,
    q: str | None = None,
) -> tuple[Sequence[Loan], str | None]:
    stmt = numbering.search(select(Loan), account_no, q)
    if branch_scope is not None:
        stmt = stmt.where(Loan.branch_id == branch_scope)
    if status is not None:
        stmt = stmt.where(Loan.status == status)
    if borrower_id is not None:
        stmt = stmt.where(Loan.borrower_id == borrower_id)
    if branch_id is not None:
        stmt = stmt.where(Loan.branch_id == branch_id)
    return paginate(session, stmt, Loan.id, cursor, limit)


def events(session: Session, loan_id: str) -> list[LoggedEvent]:
    """The loan's event log in order, as plain data (read-only: a write appends LoanEvent rows)."""
    e = LoanEvent
    stmt = select(e.seq, e.type, e.effective_date, e.booked_on, e.amount, e.payload, e.reversed_by_seq)
    return [LoggedEvent(*row) for row in session.execute(stmt.where(e.loan_id == loan_id).order_by(e.seq))]


def disbursed_by(session: Session, loan_id: str, known_at: date) -> bool:
    """Whether the loan's disbursement was booked by the end of business date `known_at`."""
    stmt = select(LoanEvent.seq).where(
        LoanEvent.loan_id == loan_id, LoanEvent.type == "disbursed", LoanEvent.booked_on <= known_at
    )
    return session.scalars(stmt.limit(1)).first() is not None


def event_by_seq(session: Session, loan_id: str, seq: int) -> LoanEvent | None:
    return session.scalars(select(LoanEvent).where(LoanEvent.loan_id == loan_id, LoanEvent.seq == seq)).first()


def transactions(session: Session, loan_id: str) -> Sequence[LoanTransaction]:
    return session.scalars(
        select(LoanTransaction).where(LoanTransaction.loan_id == loan_id).order_by(LoanTransaction.id)
    ).all()


def list_transactions(
    session: Session, loan_id: str, cursor: str | None, limit: int
) -> tuple[Sequence[LoanTransaction], str | None]:
    return paginate(
        session, select(LoanTransaction).where(LoanTransaction.loan_id == loan_id), LoanTransaction.id, cursor, limit
    )


def get_transaction(session: Session, loan_id: str, tx_id: str) -> LoanTransaction | None:
    tx = session.get(LoanTransaction, tx_id)
    return tx if tx is not None and tx.loan_id == loan_id else None


def installments(session: Session, loan_id: str) -> Sequence[LoanInstallment]:
    deferred.flush(session)  # this transaction's queued rows first
    return session.scalars(
        select(LoanInstallment).where(LoanInstallment.loan_id == loan_id).order_by(LoanInstallment.number)
    ).all()


INSTALLMENT_FIELDS = (
    "period_start",
    "due_date",
    "principal",
    "interest",
    "fees",
    "penalties",
    "paid_principal",
    "paid_interest",
    "paid_fees",
    "paid_penalties",
    "late_fee_date",
    "waived_interest",
    "waived_fees",
    "waived_penalties",
)


def _values(loan_id: str, row: Installment) -> dict[str, object]:
    return {"loan_id": loan_id, "number": row.number, **{f: getattr(row, f) for f in INSTALLMENT_FIELDS}}


def save_installments(
    session: Session, loan_id: str, rows: Sequence[Installment], stored: Sequence[Installment] | None = None
) -> None:
    """Make the stored installments equal `rows`. Knowing what is stored, only changed rows are written
    (a payment usually touches one or two), with the commit's other rows on PostgreSQL; otherwise the set is
    replaced."""
    session.info.pop(WORKING_SET, None)
    table = cast(Table, LoanInstallment.__table__)
    before = {r.number: r for r in stored} if stored is not None else {}
    after = {r.number: r for r in rows}
    gone = [n for n in before if n not in after]
    if stored is None or gone:
        deferred.flush(session)  # rows queued by an earlier action of this transaction first
        match = LoanInstallment.loan_id == loan_id
        if stored is not None:
            match = match & LoanInstallment.number.in_(gone)
        session.execute(delete(LoanInstallment).where(match))
    changed = [_values(loan_id, r) for n, r in after.items() if n in before and before[n] != r]
    deferred.update_rows(session, table, ("loan_id", "number"), changed)
    deferred.insert_rows(session, table, [_values(loan_id, r) for n, r in after.items() if n not in before])


def latest_event_date(session: Session, loan_id: str) -> date | None:
    return session.scalar(select(func.max(LoanEvent.effective_date)).where(LoanEvent.loan_id == loan_id))


def installment_states(session: Session, loan_id: str) -> list[Installment]:
    """The stored installments as the projection's working rows (Core select: no ORM objects)."""
    deferred.flush(session)  # this transaction's queued rows first
    t = LoanInstallment.__table__
    rows = session.execute(
        select(
            t.c.number,
            t.c.period_start,
            t.c.due_date,
            t.c.principal,
            t.c.interest,
            t.c.fees,
            t.c.penalties,
            t.c.paid_principal,
            t.c.paid_interest,
            t.c.paid_fees,
            t.c.paid_penalties,
            t.c.late_fee_date,
            t.c.waived_interest,
            t.c.waived_fees,
            t.c.waived_penalties,
        )
        .where(t.c.loan_id == loan_id)
        .order_by(t.c.number)
    ).all()
    return [Installment(*row) for row in rows]


# Transactions whose allocation the projection decides (a replay may move it).
PROJECTED_TYPES = ("repayment", "recovery", "write_off", "charge", "waiver", "goodwill_credit", "chargeback")

ALLOCATION_COLUMNS = (
    "alloc_principal",
    "alloc_interest",
    "alloc_fees",
    "alloc_penalties",
    "alloc_overpayment",
    "alloc_recovery",
)


def projected_transactions(session: Session, loan_id: str) -> list[tuple[str, int, str, int, tuple[int, ...]]]:
    """(transaction id, event seq, type, amount, stored allocation) of the loan's payments and write-offs still
    in force: the transactions whose figures the projection decides."""
    t = LoanTransaction.__table__
    rows = session.execute(
        select(t.c.id, t.c.event_seq, t.c.type, t.c.amount, *(t.c[c] for c in ALLOCATION_COLUMNS)).where(
            t.c.loan_id == loan_id,
            t.c.reversed.is_(False),
            t.c.type.in_(PROJECTED_TYPES),
        )
    ).all()
    return [(row[0], row[1], row[2], row[3], tuple(row[4:])) for row in rows]


def move_borrower_loans(session: Session, borrower_id: str, branch_id: str) -> int:
    """A borrower's loans follow the borrower to another branch (branch scope is the borrower's, so a loan left
    behind would be visible where its borrower is not). Returns how many loans moved."""
    result = session.execute(
        update(Loan).where(Loan.borrower_id == borrower_id, Loan.branch_id != branch_id).values(branch_id=branch_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)
