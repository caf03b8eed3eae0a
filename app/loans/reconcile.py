"""Every loan's ledger against its balances (CONTRACT "Ledger time"): the sum of the loan's journal lines per
account must equal what its snapshot says it owes and is owed, account by account. A trial balance that
balances can still hide a loan whose receivable is wrong (a double-booked accrual, a missed correction); this
check names such loans."""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.schemas import money_out
from app.domain.lifecycle import MONEY_STATUSES
from app.domain.postings import AccountRole, by_account
from app.ledger.models import JournalLine
from app.loans.engine import accounts_of
from app.loans.models import Loan

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


def expected_balances(loan: Loan) -> dict[str, int]:
    """What the loan's lines should sum to per account code (debit positive), from its stored balances."""
    roles = {
        AccountRole.loan_portfolio: loan.principal_outstanding,
        AccountRole.interest_receivable: loan.interest_outstanding,
        AccountRole.fees_receivable: loan.fees_outstanding,
        AccountRole.penalties_receivable: loan.penalties_outstanding,
        AccountRole.interest_received_in_advance: -loan.interest_prepaid,
        AccountRole.overpayment_liability: -loan.credit_balance,
        AccountRole.interest_in_suspense: -loan.interest_suspended,
    }
    return by_account({role: amount for role, amount in roles.items() if amount}, accounts_of(loan))


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
