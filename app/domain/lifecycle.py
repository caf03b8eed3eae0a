"""The loan lifecycle as data: (status, action) -> status. Anything not in the table is refused with the
list of actions that are allowed (the shape of Fineract's LoanLifecycleStateMachine, without its switch)."""

from enum import StrEnum

from app.domain.errors import InvalidTransition


class LoanStatus(StrEnum):
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    active = "active"
    overpaid = "overpaid"
    closed = "closed"
    written_off = "written_off"


class LoanAction(StrEnum):
    approve = "approve"
    reject = "reject"
    withdraw = "withdraw"
    disburse = "disburse"
    repay = "repay"
    refund = "refund"
    reverse = "reverse"
    write_off = "write_off"
    undo_approval = "undo_approval"
    undo_disbursal = "undo_disbursal"


S, A = LoanStatus, LoanAction

# For money actions the target is nominal: the projection settles the final status from the balances
# (a repayment may close the loan or leave a credit; a reversal may reopen it).
TRANSITIONS: dict[tuple[LoanStatus, LoanAction], LoanStatus] = {
    (S.submitted, A.approve): S.approved,
    (S.submitted, A.reject): S.rejected,
    (S.submitted, A.withdraw): S.withdrawn,
    (S.approved, A.reject): S.rejected,
    (S.approved, A.withdraw): S.withdrawn,
    (S.approved, A.disburse): S.active,
    (S.active, A.repay): S.active,
    (S.active, A.reverse): S.active,
    (S.active, A.write_off): S.written_off,
    (S.overpaid, A.repay): S.overpaid,
    (S.overpaid, A.refund): S.closed,
    (S.overpaid, A.reverse): S.active,
    (S.closed, A.repay): S.overpaid,
    (S.closed, A.reverse): S.active,
    (S.written_off, A.repay): S.written_off,
    (S.written_off, A.reverse): S.written_off,
    # Undo (CONTRACT "Servicing instruments"): the disbursal only while it is the loan's only money transaction.
    (S.approved, A.undo_approval): S.submitted,
    (S.active, A.undo_disbursal): S.approved,
}

TERMINAL: frozenset[LoanStatus] = frozenset({S.rejected, S.withdrawn})
MONEY_STATUSES: frozenset[LoanStatus] = frozenset({S.active, S.overpaid, S.closed, S.written_off})


def allowed_actions(status: LoanStatus) -> list[str]:
    return [action.value for (s, action) in TRANSITIONS if s == status]


def refund_allowed(status: LoanStatus, credit: int) -> bool:
    """Credit is refundable while overpaid, and on a written-off loan when a recovery exceeded the amount
    written off (CONTRACT Loans): the borrower's money is never kept as income."""
    return status == S.overpaid or (status == S.written_off and credit > 0)


def actions_allowed(status: LoanStatus, credit: int) -> list[str]:
    """What a loan in `status` holding `credit` (minor units) may do: the lifecycle table's actions, plus refund
    on a written-off loan whose recoveries left it owing the borrower (`refund_allowed`)."""
    actions = allowed_actions(status)
    if refund_allowed(status, credit) and LoanAction.refund.value not in actions:
        actions.append(LoanAction.refund.value)
    return actions


def transition(status: LoanStatus, action: LoanAction, credit: int = 0) -> LoanStatus:
    """The status `action` leads to; refused (naming what the loan may do, given its credit) when the table
    has no such transition."""
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise InvalidTransition(status.value, action.value, actions_allowed(status, credit))
    return target
