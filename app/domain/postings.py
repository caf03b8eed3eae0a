"""Posting rules: a loan's financial position as per-role account balances, and the journal lines that move
the books from what was posted to what the projection says. Because the target balances always sum to zero
(every quantity appears once as a debit and once as a credit), any difference is itself balanced."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum


class AccountRole(StrEnum):
    fund_source = "fund_source"
    loan_portfolio = "loan_portfolio"
    interest_receivable = "interest_receivable"
    fees_receivable = "fees_receivable"
    penalties_receivable = "penalties_receivable"
    overpayment_liability = "overpayment_liability"
    interest_received_in_advance = "interest_received_in_advance"
    interest_in_suspense = "interest_in_suspense"
    interest_income = "interest_income"
    fee_income = "fee_income"
    penalty_income = "penalty_income"
    recovery_income = "recovery_income"
    write_off_expense = "write_off_expense"
    goodwill_expense = "goodwill_expense"


@dataclass(frozen=True)
class LoanTotals:
    """Cumulative amounts of one loan in minor units; all non-negative."""

    disbursed: int = 0
    principal_paid: int = 0
    interest_recognized: int = 0
    interest_paid: int = 0
    fees_charged: int = 0
    fees_paid: int = 0
    penalties_charged: int = 0
    penalties_paid: int = 0
    principal_written_off: int = 0
    interest_written_off: int = 0
    fees_written_off: int = 0
    penalties_written_off: int = 0
    recovered: int = 0
    overpaid: int = 0
    refunded: int = 0
    # Refunds the remaining payments no longer cover (their payment was reversed): principal owed again.
    principal_readvanced: int = 0
    # Goodwill credits: received like payments (in the paid amounts above) but funded by the lender, not cash.
    goodwill_credited: int = 0
    # Interest turned into principal by a modification (payment holiday `capitalize`, re-age): income when it
    # is capitalised, owed as principal from then on (README "Modifications").
    interest_capitalized: int = 0
    # Non-accrual: interest recognised into suspense, moved to income when collected, written off against it.
    interest_suspended: int = 0
    suspense_released: int = 0
    suspense_written_off: int = 0

    def __add__(self, other: "LoanTotals") -> "LoanTotals":
        return LoanTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


def role_balances(t: LoanTotals) -> dict[AccountRole, int]:
    """Signed balances (debit positive) per account role; they sum to zero by construction."""
    received = t.principal_paid + t.interest_paid + t.fees_paid + t.penalties_paid + t.overpaid + t.recovered
    # Interest paid before it is recognised is not a negative receivable but interest received in advance.
    interest_net = t.interest_recognized - t.interest_paid - t.interest_written_off
    balances = {
        AccountRole.fund_source: received - t.goodwill_credited - t.disbursed - t.refunded,
        AccountRole.loan_portfolio: t.disbursed
        + t.principal_readvanced
        + t.interest_capitalized
        - t.principal_paid
        - t.principal_written_off,
        AccountRole.interest_receivable: max(interest_net, 0),
        AccountRole.interest_received_in_advance: min(interest_net, 0),
        AccountRole.fees_receivable: t.fees_charged - t.fees_paid - t.fees_written_off,
        AccountRole.penalties_receivable: t.penalties_charged - t.penalties_paid - t.penalties_written_off,
        AccountRole.overpayment_liability: -(t.overpaid - t.refunded + t.principal_readvanced),
        AccountRole.interest_income: -(
            t.interest_recognized + t.interest_capitalized - t.interest_suspended + t.suspense_released
        ),
        AccountRole.interest_in_suspense: -(t.interest_suspended - t.suspense_released - t.suspense_written_off),
        AccountRole.fee_income: -t.fees_charged,
        AccountRole.penalty_income: -t.penalties_charged,
        AccountRole.recovery_income: -t.recovered,
        AccountRole.write_off_expense: t.principal_written_off
        + t.interest_written_off
        + t.fees_written_off
        + t.penalties_written_off
        - t.suspense_written_off,
        AccountRole.goodwill_expense: t.goodwill_credited,
    }
    return {role: amount for role, amount in balances.items() if amount != 0}


@dataclass(frozen=True)
class PostingLine:
    account_code: str
    debit: int
    credit: int


def correcting_lines(target: Mapping[str, int], posted: Mapping[str, int]) -> list[PostingLine]:
    """Lines that take each account from `posted` to `target` (signed, debit positive, per account code)."""
    lines = []
    for code in sorted(set(target) | set(posted)):
        delta = target.get(code, 0) - posted.get(code, 0)
        if delta > 0:
            lines.append(PostingLine(code, delta, 0))
        elif delta < 0:
            lines.append(PostingLine(code, 0, -delta))
    return lines


def by_account(balances: Mapping[AccountRole, int], accounts: Mapping[AccountRole, str]) -> dict[str, int]:
    """Role balances mapped onto the product's account codes (two roles may share one account)."""
    result: dict[str, int] = {}
    for role, amount in balances.items():
        code = accounts[role]
        result[code] = result.get(code, 0) + amount
    return {code: amount for code, amount in result.items() if amount != 0}
