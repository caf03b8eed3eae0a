"""Human-readable loan account numbers and how far a loan is paid (CONTRACT "Servicing instruments":
`account_no`, `paid_through`, `GET /loans?account_no=&q=`).

An account number is the branch code and the branch's next sequence number, six digits at least
(`HQ-000123`): unique because branch codes are unique and the sequence only grows. The sequence is a counter
on the branch row, incremented in the submission's transaction (the row lock serialises submissions of one
branch on PostgreSQL; SQLite's writer lock serialises every write), so numbers are gapless except for
submissions that fail and roll back."""

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from app.borrowers.models import Borrower
from app.domain.servicing import Installment
from app.identity.models import Branch
from app.loans.models import Loan, LoanInstallment


def next_account_no(session: Session, branch_id: str) -> str:
    session.execute(update(Branch).where(Branch.id == branch_id).values(account_seq=Branch.account_seq + 1))
    code, seq = session.execute(select(Branch.code, Branch.account_seq).where(Branch.id == branch_id)).one()
    return account_no(str(code), int(seq))


def account_no(branch_code: str, seq: int) -> str:
    return f"{branch_code}-{seq:06d}"


def paid_through(rows: Sequence[Installment | LoanInstallment]) -> date | None:
    """The due date of the last installment of the run fully paid from the first (None before the first)."""
    last = None
    for row in rows:
        if (
            row.principal
            + row.interest
            + row.fees
            + row.penalties
            - row.paid_principal
            - row.paid_interest
            - row.paid_fees
            - row.paid_penalties
            > 0
        ):
            break
        last = row.due_date
    return last


def search(stmt: Select[Loan], account: str | None, q: str | None) -> Select[Loan]:
    """Loans by exact account number, and/or by a text found in the account number or the borrower's name."""
    if account is not None:
        stmt = stmt.where(Loan.account_no == account)
    if q is not None:
        text = q.strip().lower()
        name = func.lower(Borrower.first_name + " " + Borrower.last_name)
        stmt = stmt.join(Borrower, Borrower.id == Loan.borrower_id).where(
            or_(func.lower(Loan.account_no).contains(text, autoescape=True), name.contains(text, autoescape=True))
        )
    return stmt
