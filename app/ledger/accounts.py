"""The chart of accounts seeded by init_db, and the default account for each posting role."""

from dataclasses import dataclass
from enum import StrEnum

from app.domain.postings import AccountRole


class AccountType(StrEnum):
    asset = "asset"
    liability = "liability"
    equity = "equity"
    income = "income"
    expense = "expense"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    name: str
    type: AccountType


CHART: tuple[AccountSpec, ...] = (
    AccountSpec("1000", "Cash / fund source", AccountType.asset),
    AccountSpec("1100", "Loan portfolio", AccountType.asset),
    AccountSpec("1200", "Interest receivable", AccountType.asset),
    AccountSpec("1210", "Fees receivable", AccountType.asset),
    AccountSpec("1220", "Penalties receivable", AccountType.asset),
    AccountSpec("2100", "Overpayment liability", AccountType.liability),
    AccountSpec("2110", "Interest received in advance", AccountType.liability),
    AccountSpec("2120", "Interest in suspense", AccountType.liability),
    AccountSpec("4000", "Interest income", AccountType.income),
    AccountSpec("4100", "Fee income", AccountType.income),
    AccountSpec("4200", "Penalty income", AccountType.income),
    AccountSpec("4300", "Recovery income", AccountType.income),
    AccountSpec("5000", "Loan write-off expense", AccountType.expense),
    AccountSpec("5100", "Goodwill expense", AccountType.expense),
)

DEFAULT_ACCOUNTS: dict[AccountRole, str] = {
    AccountRole.fund_source: "1000",
    AccountRole.loan_portfolio: "1100",
    AccountRole.interest_receivable: "1200",
    AccountRole.fees_receivable: "1210",
    AccountRole.penalties_receivable: "1220",
    AccountRole.overpayment_liability: "2100",
    AccountRole.interest_received_in_advance: "2110",
    AccountRole.interest_in_suspense: "2120",
    AccountRole.interest_income: "4000",
    AccountRole.fee_income: "4100",
    AccountRole.penalty_income: "4200",
    AccountRole.recovery_income: "4300",
    AccountRole.write_off_expense: "5000",
    AccountRole.goodwill_expense: "5100",
}
