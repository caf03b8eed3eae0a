"""Every loan's ledger against its balances (CONTRACT "Ledger time"): the sum of the loan's journal lines per
account must equal what its snapshot says it owes and is owed, account by account. A trial balance that
balances can still hide a loan whose receivable is wrong (a double-booked accrual, a missed correction); this
check names such loans."""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.schemas import money_out
from app.domain.lifecycle import MONEY_STATUSES
from app.domain.postings import AccountRole, by_account
from app.ledger.models import JournalLine
from app.loans.engine import accounts_of
from app.loans.models import Loan
from app.operations.cob_sql import CobSql

BALANCE_SHEET_ROLES = (
    AccountRole.loan_portfolio,
    AccountRole.interest_receivable,
    AccountRole.fees_receivable,
    AccountRole.penalties_receivable,
    AccountRole.interest_received_in_advance,
    AccountRole.overpayment_liability,
    AccountRole.interest_in_suspense,
)
MONEY_STATUS_VALUES = tuple(status.value for status in MONEY_STATUSES)
BATCH = 5_000


@dataclass(frozen=True)
class LoanLedgerMismatch:
    loan_id: str
    account_code: str
    ledger: int
    balances: int
    currency: str

    def __str__(self) -> str:
        return (
            f"loan {self.loan_id}: account {self.account_code} holds {money_out(self.ledger, self.currency)} "
            f"in the ledger but {money_out(self.balances, self.currency)} in the loan's balances"
        )


# Each balance-sheet role's balance on the loan row (column, sign: debit positive). Credit balances are negative.
ROLE_BALANCES: dict[AccountRole, tuple[str, int]] = {
    AccountRole.loan_portfolio: ("principal_outstanding", 1),
    AccountRole.interest_receivable: ("interest_outstanding", 1),
    AccountRole.fees_receivable: ("fees_outstanding", 1),
    AccountRole.penalties_receivable: ("penalties_outstanding", 1),
    AccountRole.interest_received_in_advance: ("interest_prepaid", -1),
    AccountRole.overpayment_liability: ("credit_balance", -1),
    AccountRole.interest_in_suspense: ("interest_suspended", -1),
}


def expected_balances(loan: Loan) -> dict[str, int]:
    """What the loan's lines should sum to per account code (debit positive), from its stored balances."""
    roles = {role: sign * int(getattr(loan, column)) for role, (column, sign) in ROLE_BALANCES.items()}
    return by_account({role: amount for role, amount in roles.items() if amount}, accounts_of(loan))


def out_of_balance_loans(
    session: Session,
    limit: int = 10,
    *,
    where: str | None = None,
    params: dict[str, Any] | None = None,
    statuses: Sequence[str] = MONEY_STATUS_VALUES,
) -> tuple[int, list[str]]:
    """The same per-loan comparison as `mismatches`, set-based against the loans' posted balances (which
    `loanctl verify-ledger` reconciles with the journal): how many loans differ, and the first few — of the loans
    in `statuses`, or those a predicate `where` on alias `l` picks (close of business checks each chunk's loans in
    the chunk's transaction). It reads no journal history: one pass over loans and their posted balances."""
    postgres = session.get_bind().dialect.name == "postgresql"
    sql = CobSql(postgres)
    if where is None:
        if not statuses:
            return 0, []
        listed = ", ".join(f"'{s}'" for s in statuses)
        where = f"l.status IN ({listed})"
    roles = [
        (sql.account(role), f"{'-' if sign < 0 else ''}l.{column}") for role, (column, sign) in ROLE_BALANCES.items()
    ]

    # Per loan, each role's account (c<n>) and what every role books on that account (e<n>: two roles may share
    # one), computed once per loan (OFFSET 0 keeps PostgreSQL from inlining them into every comparison).
    def booked_on(code: str) -> str:
        return " + ".join(f"CASE WHEN {other} = {code} THEN {amount} ELSE 0 END" for other, amount in roles)

    per_loan = ", ".join(f"{code} AS c{n}, ({booked_on(code)}) AS e{n}" for n, (code, _) in enumerate(roles))
    keys = ", ".join(f"r.c{n}, r.e{n}" for n in range(len(roles)))
    differs = " OR ".join(
        f"COALESCE(SUM(CASE WHEN b.account_code = r.c{n} THEN b.balance END), 0) <> r.e{n}" for n in range(len(roles))
    )
    if postgres:
        session.execute(text("SET LOCAL jit = off"))  # compiling its expressions costs more than it saves
    found = session.execute(
        # Codes and columns come from the chart and ROLE_BALANCES, never from input.
        text(
            f"SELECT id, COUNT(*) OVER () FROM (SELECT r.id FROM (SELECT l.id, {per_loan} FROM loans l "  # noqa: S608
            f"WHERE {where}{' OFFSET 0' if postgres else ''}) r "
            f"LEFT JOIN loan_account_balances b ON b.loan_id = r.id GROUP BY r.id, {keys} HAVING {differs}) m "
            "ORDER BY id LIMIT :n"
        ),
        {**(params or {}), "n": limit},
    ).all()
    return (int(found[0][1]) if found else 0), [str(r[0]) for r in found]


def balance_sheet_codes(loan: Loan) -> set[str]:
    """The loan's accounts that `expected_balances` speaks for (income and cash are not per-loan balances)."""
    mapping = accounts_of(loan)
    return {mapping[role] for role in BALANCE_SHEET_ROLES}


def mismatches(session: Session) -> Iterator[LoanLedgerMismatch]:
    """Loans whose balance-sheet lines differ from their balances, in batches of loans (bounded memory)."""
    after = ""
    while True:
        loans = session.scalars(
            select(Loan).where(Loan.status.in_(MONEY_STATUS_VALUES), Loan.id > after).order_by(Loan.id).limit(BATCH)
        ).all()
        if not loans:
            return
        posted: dict[str, dict[str, int]] = defaultdict(dict)
        sums = session.execute(
            select(JournalLine.loan_id, JournalLine.account_code, func.sum(JournalLine.debit - JournalLine.credit))
            .where(JournalLine.loan_id > after, JournalLine.loan_id <= loans[-1].id)
            .group_by(JournalLine.loan_id, JournalLine.account_code)
        )
        for loan_id, code, amount in sums:
            posted[str(loan_id)][str(code)] = int(amount)
        for loan in loans:
            expected = expected_balances(loan)
            ledger = posted.get(loan.id, {})
            checked = set(expected) | (set(ledger) & balance_sheet_codes(loan))
            for code in sorted(checked):
                if ledger.get(code, 0) != expected.get(code, 0):
                    yield LoanLedgerMismatch(loan.id, code, ledger.get(code, 0), expected.get(code, 0), loan.currency)
        after = loans[-1].id
