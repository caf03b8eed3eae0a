from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.core.pagination import paginate
from app.domain.servicing import Installment
from app.loans.models import Loan, LoanEvent, LoanInstallment, LoanTransaction


def get(session: Session, loan_id: str) -> Loan | None:
    return session.get(Loan, loan_id)


def lock(session: Session, loan_id: str) -> Loan | None:
    """Load the loan for writing. PostgreSQL: a row lock held to commit serialises writers on this loan;
    SQLite: the BEGIN IMMEDIATE write lock already serialises every writer."""
    stmt = select(Loan).where(Loan.id == loan_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


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
) -> tuple[Sequence[Loan], str | None]:
    stmt = select(Loan)
    if branch_scope is not None:
        stmt = stmt.where(Loan.branch_id == branch_scope)
    if status is not None:
        stmt = stmt.where(Loan.status == status)
    if borrower_id is not None:
        stmt = stmt.where(Loan.borrower_id == borrower_id)
    if branch_id is not None:
        stmt = stmt.where(Loan.branch_id == branch_id)
    return paginate(session, stmt, Loan.id, cursor, limit)


def events(session: Session, loan_id: str) -> Sequence[LoanEvent]:
    return session.scalars(select(LoanEvent).where(LoanEvent.loan_id == loan_id).order_by(LoanEvent.seq)).all()


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
)


def _values(loan_id: str, row: Installment) -> dict[str, object]:
    return {"loan_id": loan_id, "number": row.number, **{f: getattr(row, f) for f in INSTALLMENT_FIELDS}}


def save_installments(
    session: Session, loan_id: str, rows: Sequence[Installment], stored: Sequence[Installment] | None = None
) -> None:
    """Make the stored installments equal `rows`. Knowing what is stored, only changed rows are written
    (a payment usually touches one or two); otherwise the set is replaced."""
    if stored is None:
        session.execute(delete(LoanInstallment).where(LoanInstallment.loan_id == loan_id))
        if rows:
            session.execute(insert(LoanInstallment), [_values(loan_id, r) for r in rows])
        return
    before = {r.number: r for r in stored}
    after = {r.number: r for r in rows}
    gone = [n for n in before if n not in after]
    if gone:
        session.execute(
            delete(LoanInstallment).where(LoanInstallment.loan_id == loan_id, LoanInstallment.number.in_(gone))
        )
    changed = [_values(loan_id, r) for n, r in after.items() if n in before and before[n] != r]
    if changed:
        session.execute(update(LoanInstallment), changed)  # ORM bulk UPDATE by primary key
    added = [_values(loan_id, r) for n, r in after.items() if n not in before]
    if added:
        session.execute(insert(LoanInstallment), added)


def latest_event_date(session: Session, loan_id: str) -> date | None:
    return session.scalar(select(func.max(LoanEvent.effective_date)).where(LoanEvent.loan_id == loan_id))


def installment_states(session: Session, loan_id: str) -> list[Installment]:
    """The stored installments as the projection's working rows (Core select: no ORM objects)."""
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
        )
        .where(t.c.loan_id == loan_id)
        .order_by(t.c.number)
    ).all()
    return [Installment(*row) for row in rows]


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
            t.c.type.in_(("repayment", "recovery", "write_off")),
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
