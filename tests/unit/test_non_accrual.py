"""Non-accrual (CONTRACT "Ledger time"): while a loan's days past due exceed the product's
`non_accrual_after_days`, its accrual goes to interest in suspense (2120) instead of income; interest collected
moves out of suspense into income; a write-off takes it off suspense, not the write-off expense; the borrower's
balances never change because of it. Amounts in minor units (2339 = 23.39), computed by hand beside each case.

LOAN12 of tests/unit/test_servicing_rules.py with non_accrual_after_days = 30: 1,200.00 at 12 %, 12 monthly
installments of 106.62, 30/360, disbursed 2024-01-01, late fee 10.00 after 5 grace days; nothing is paid.
  #1 due 02-01 interest 12.00; #2 due 03-01 interest 11.05 (1105.38 × 1 %); #3 due 04-01 interest 10.10
  (1009.81 × 1 %); #4 due 05-01 interest 9.13 (913.29 × 1 %).
  DPD on 03-02 = 30 (29 days in February + 1): not beyond 30; from 03-03 on the loan is non-accrual.
  recognised(03-02) = 12.00 + 11.05 + 10.10 × 1/30 (0.34) = 23.39; recognised(04-01) = 33.15.
"""

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.postings import AccountRole, role_balances
from app.domain.servicing import Payment, WriteOff, project
from tests.unit.test_servicing_rules import LOAN12

D = date
NA30 = replace(LOAN12, non_accrual_after_days=30)


def test_accrual_goes_to_suspense_once_days_past_due_exceed_the_threshold() -> None:
    on_0302 = project(NA30, [], D(2024, 3, 2))
    assert on_0302.days_past_due == 30 and on_0302.accrual_status == "accruing"
    assert on_0302.interest_in_suspense == 0 and on_0302.totals.interest_recognized == 2339
    on_0303 = project(NA30, [], D(2024, 3, 3))
    # 10.10 × 2/30 = 0.6733 -> 0.67; the day's accrual 0.67 − 0.34 = 0.33 goes to suspense
    assert on_0303.accrual_status == "non_accrual" and on_0303.interest_in_suspense == 33
    state = project(NA30, [], D(2024, 4, 1))
    # 33.15 recognised; 33.15 − 23.39 = 9.76 of it while non-accrual
    assert state.accrual_status == "non_accrual" and state.interest_in_suspense == 976
    assert state.interest_outstanding == 3315  # the borrower owes the same: balances unchanged
    plain = project(LOAN12, [], D(2024, 4, 1))
    assert (plain.principal_outstanding, plain.interest_outstanding, plain.penalties_outstanding,
            plain.days_past_due) == (state.principal_outstanding, state.interest_outstanding,
                                     state.penalties_outstanding, state.days_past_due)
    balances = role_balances(state.totals)
    assert balances[AccountRole.interest_receivable] == 3315
    assert balances[AccountRole.interest_income] == -2339
    assert balances[AccountRole.interest_in_suspense] == -976
    assert sum(balances.values()) == 0


def test_interest_collected_moves_from_suspense_to_income() -> None:
    # 04-02: 106.62 pays #1 oldest first: penalty 10.00, interest 12.00, principal 84.62. The 12.00 of interest
    # collected releases the 9.76 held in suspense. #1 still owes 10.00 principal, so DPD stays 61 and 04-02's
    # accrual (#4: 9.13 × 1/30 = 0.30) goes to suspense again.
    state = project(NA30, [Payment(1, D(2024, 4, 2), 10662)], D(2024, 4, 2))
    alloc = state.allocations[1]
    assert (alloc.penalties, alloc.interest, alloc.principal) == (1000, 1200, 8462)
    assert state.totals.suspense_released == 976 and state.interest_in_suspense == 30
    balances = role_balances(state.totals)
    assert balances[AccountRole.interest_in_suspense] == -30
    assert balances[AccountRole.interest_income] == -3315  # 33.45 recognised − 0.30 still in suspense
    assert sum(balances.values()) == 0
    # Paying everything off collects all the interest: nothing stays in suspense.
    payoff = project(NA30, [Payment(1, D(2024, 4, 2), 200000)], D(2024, 4, 2))
    assert payoff.status.value == "overpaid" and payoff.interest_in_suspense == 0
    assert role_balances(payoff.totals).get(AccountRole.interest_in_suspense, 0) == 0


def test_a_write_off_takes_suspended_interest_off_suspense_not_expense() -> None:
    state = project(NA30, [WriteOff(1, D(2024, 4, 1))], D(2024, 4, 10))
    balances = role_balances(state.totals)
    assert state.totals.suspense_written_off == 976
    assert balances.get(AccountRole.interest_in_suspense, 0) == 0
    # written off: principal 1,200.00 + interest 33.15 + penalties 20.00 (the fees of 02-07 and 03-07); 9.76 of
    # the interest never was income, so the expense is 1,253.15 − 9.76
    assert balances[AccountRole.write_off_expense] == 120000 + 3315 + 2000 - 976
    assert sum(balances.values()) == 0


def test_without_the_option_nothing_changes() -> None:
    state = project(LOAN12, [], D(2024, 6, 1))
    assert state.interest_in_suspense == 0 and state.accrual_status == "accruing"
    assert AccountRole.interest_in_suspense not in role_balances(state.totals)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    limit=st.integers(1, 60),
    payments=st.lists(st.tuples(st.integers(0, 330), st.integers(1, 60000)), max_size=6),
    as_of=st.integers(0, 400),
)
def test_suspense_never_exceeds_the_interest_owed_and_the_books_balance(
    limit: int, payments: list[tuple[int, int]], as_of: int
) -> None:
    terms = replace(LOAN12, non_accrual_after_days=limit)
    events = [Payment(n + 1, D(2024, 1, 1) + timedelta(days=d), amount) for n, (d, amount) in enumerate(payments)]
    on = D(2024, 1, 1) + timedelta(days=as_of)
    state = project(terms, events, on)
    plain = project(LOAN12, events, on)
    assert 0 <= state.interest_in_suspense <= max(state.interest_outstanding, 0)
    assert (state.interest_outstanding, state.principal_outstanding, state.days_past_due) == (
        plain.interest_outstanding, plain.principal_outstanding, plain.days_past_due)
    balances = role_balances(state.totals)
    assert sum(balances.values()) == 0
    income = balances.get(AccountRole.interest_income, 0) + balances.get(AccountRole.interest_in_suspense, 0)
    assert income == -state.totals.interest_recognized
