"""Every loan's ledger against its balances (CONTRACT "Ledger time"): the sum of the loan's journal lines per
account must equal what its snapshot says it owes and is owed, account by account. A trial balance that
balances can still hide a loan whose receivable is wrong (a double-booked accrual, a missed correction); this
check names such loans."""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core import deferred
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


def out_of_balance_ids(session: Session, where: str = "TRUE", params: dict[str, object] | None = None) -> list[str]:
    """The same per-loan comparison as `mismatches`, set-based against the loans' posted balances (which
    `loanctl verify-ledger` reconciles with the journal): the ids, in order, of the loans in a money status (and
    `where`, a predicate on alias `l` written by the caller, never from input) whose posted balances differ from
    their snapshot. Close of business runs it on each chunk after its writes, so it reads no journal history."""
    # What this transaction wrote so far and queued for its commit (close of business's re-projected loans: their
    # postings and snapshots) is read back here.
    deferred.write_pending(session)
    postgres = session.get_bind().dialect.name == "postgresql"
    sql = CobSql(postgres)
    statuses = ", ".join(f"'{s}'" for s in MONEY_STATUS_VALUES)
    once = " OFFSET 0" if postgres else ""
    roles = [
        (sql.account(role), f"{'-' if sign < 0 else ''}l.{column}") for role, (column, sign) in ROLE_BALANCES.items()
    ]
    # Per loan, each role's account (c<n>) and amount (m<n>) read once (the account from the loan's JSON mapping:
    # comparing the expressions themselves would parse it twice per pair of roles), then what every role books
    # on each account (e<n>: two roles may share one). OFFSET 0 keeps PostgreSQL from inlining a level into the next.
    read = ", ".join(f"{code} AS c{n}, {amount} AS m{n}" for n, (code, amount) in enumerate(roles))

    def booked_on(n: int) -> str:
        return " + ".join(f"CASE WHEN q.c{o} = q.c{n} THEN q.m{o} ELSE 0 END" for o in range(len(roles)))

    codes = ", ".join(f"q.c{n}" for n in range(len(roles)))
    booked = ", ".join(f"({booked_on(n)}) AS e{n}" for n in range(len(roles)))
    per_loan = (
        f"SELECT q.id, {codes}, {booked} FROM (SELECT l.id, {read} FROM loans l "  # noqa: S608
        f"WHERE l.status IN ({statuses}) AND ({where}){once}) q{once}"
    )
    posted = [f"SUM(CASE WHEN b.account_code = r.c{n} THEN b.balance END)" for n in range(len(roles))]
    if postgres:
        session.execute(text("SET LOCAL jit = off"))  # compiling its expressions costs more than it saves
        # Each loan's posted balances by its primary key (a chunk's few thousand loans); a join left to the
        # planner may hash every posted balance of the book for them.
        sums = ", ".join(f"{expr} AS s{n}" for n, expr in enumerate(posted))
        differs = " OR ".join(f"COALESCE(s.s{n}, 0) <> r.e{n}" for n in range(len(roles)))
        query = (
            f"SELECT r.id FROM ({per_loan}) r CROSS JOIN LATERAL (SELECT {sums} FROM loan_account_balances b "  # noqa: S608
            f"WHERE b.loan_id = r.id) s WHERE {differs} ORDER BY r.id"
        )
    else:
        # Grouped by the loan alone (its e<n> are one value per loan, hence MIN).
        differs = " OR ".join(f"COALESCE({expr}, 0) <> MIN(r.e{n})" for n, expr in enumerate(posted))
        query = (
            f"SELECT r.id FROM ({per_loan}) r LEFT JOIN loan_account_balances b ON b.loan_id = r.id "  # noqa: S608
            f"GROUP BY r.id HAVING {differs} ORDER BY r.id"
        )
    # Codes and columns come from the chart and ROLE_BALANCES, never from input.
    return [str(row[0]) for row in session.execute(text(query), params or {})]


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
