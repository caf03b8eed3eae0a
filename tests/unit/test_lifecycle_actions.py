"""What a loan may do: the lifecycle table, plus refund of the credit a written-off loan's recoveries left
(CONTRACT Loans: the borrower's money is never kept as income)."""

import pytest

from app.domain.errors import InvalidTransition
from app.domain.lifecycle import LoanAction, LoanStatus, actions_allowed, allowed_actions, transition


def test_a_written_off_loan_owing_the_borrower_may_refund_and_says_so() -> None:
    assert "refund" not in allowed_actions(LoanStatus.written_off)
    assert actions_allowed(LoanStatus.written_off, 0) == allowed_actions(LoanStatus.written_off)
    assert actions_allowed(LoanStatus.written_off, 99) == [*allowed_actions(LoanStatus.written_off), "refund"]


@pytest.mark.parametrize("status", list(LoanStatus))
def test_every_other_status_is_the_table_whatever_the_credit(status: LoanStatus) -> None:
    if status == LoanStatus.written_off:
        return
    assert actions_allowed(status, 500) == allowed_actions(status)  # overpaid lists refund once, from the table


def test_a_refused_transition_names_the_actions_the_credit_allows() -> None:
    with pytest.raises(InvalidTransition) as refused:
        transition(LoanStatus.written_off, LoanAction.write_off, credit=99)
    assert "refund" in refused.value.allowed_actions
