"""Random sequences of loan actions over HTTP, on both database legs. Whatever the sequence:
- an action the loan may not take (the lifecycle table, plus refund of a written-off loan's credit:
  `actions_allowed`) is refused with 409 and exactly those actions, and the loan is left untouched; an action it
  may take succeeds, and an origination action lands on the table's target
  (a money action's target is nominal: the balances settle it);
- the trial balance stays balanced, every journal entry balances, and the loan's own ledger accounts equal the
  balances the API reports (portfolio = principal outstanding, overpayment liability = credit)."""

from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.domain.lifecycle import TRANSITIONS, LoanAction, LoanStatus, actions_allowed
from tests.api.helpers_lending import LOANS, act, get_loan, pay, submit_loan
from tests.conftest import World, assert_problem

ORIGINATION = {LoanAction.approve, LoanAction.reject, LoanAction.withdraw, LoanAction.disburse}
REVERSIBLE = {"repayment", "recovery", "refund", "write_off"}
CENT = Decimal("0.01")

ACTIONS = list(LoanAction)

# A step is (pick, index, size). pick 0: any action (mostly refused); 1: one the table allows now; 2-4: an allowed
# one that keeps the loan going (not reject/withdraw), so sequences reach repayments, write-offs, refunds and
# reversals instead of ending in "rejected". size 1-100 is a
# percentage that picks an amount for the action; above 100 means "the default" (the full approved amount, the
# whole credit) or, for a repayment, more than the payoff.
steps = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7), st.integers(1, 150)), min_size=1, max_size=10)


def _allowed(loan: dict[str, Any]) -> list[str]:
    credit = int(Decimal(loan["balances"]["credit"]) * 100)
    return actions_allowed(LoanStatus(loan["status"]), credit)


def _choose(allowed: list[str], pick: int, index: int) -> LoanAction:
    if pick >= 2:
        allowed = [a for a in allowed if a not in {LoanAction.reject, LoanAction.withdraw}]
    return LoanAction(allowed[index % len(allowed)]) if pick and allowed else ACTIONS[index % len(ACTIONS)]


def _share(amount: str | Decimal, size: int, floor: Decimal = CENT) -> str:
    return str(max(floor, (Decimal(amount) * size / 100).quantize(CENT, ROUND_DOWN)))


def _reversible_tx(world: World, loan_id: str) -> str | None:
    items = world.get("manager", f"{LOANS}/{loan_id}/transactions", params={"limit": 500}).json()["items"]
    candidates = [t["id"] for t in items if t["type"] in REVERSIBLE and not t["reversed"]]
    return candidates[-1] if candidates else None


def _request(world: World, loan: dict[str, Any], action: LoanAction, size: int) -> Any:
    """Send the action with a body valid for it; None when there is nothing to send (reverse with nothing
    reversible: tests/api/test_origination.py covers reverse on loans without transactions)."""
    loan_id, balances = loan["id"], loan["balances"]
    if action == LoanAction.approve:
        body = {"approved_principal": _share(loan["requested_principal"], size, Decimal(100))} if size <= 100 else {}
        return act(world, loan_id, "approve", body)
    if action == LoanAction.disburse:
        return act(world, loan_id, "disburse", {"amount": _share(loan["principal"], size, Decimal(100))}
                   if size <= 100 else {})
    if action in {LoanAction.reject, LoanAction.withdraw, LoanAction.write_off}:
        return act(world, loan_id, action.value.replace("_", "-"), {"reason": "property test"})
    if action == LoanAction.refund:
        credit = Decimal(balances["credit"])
        return act(world, loan_id, "refund", {"amount": _share(credit, size)} if size <= 100 and credit else {})
    if action == LoanAction.repay:
        owed = Decimal(balances["total"]) or Decimal(loan["principal"])
        return pay(world, loan_id, _share(owed, size))
    tx_id = _reversible_tx(world, loan_id) if loan["disbursement_date"] else None
    if tx_id is None:
        return None
    return world.post("manager", f"{LOANS}/{loan_id}/transactions/{tx_id}/reverse", {"reason": "property test"})


def _settled_status(loan: dict[str, Any]) -> str:
    if loan["written_off_on"] is not None:
        return "written_off"
    if Decimal(loan["balances"]["credit"]) > 0:
        return "overpaid"
    return "closed" if Decimal(loan["balances"]["total"]) == 0 else "active"


def _check_books(world: World, loan: dict[str, Any]) -> None:
    tb = world.get("auditor", "/api/v1/ledger/trial-balance").json()
    assert tb["total_debit"] == tb["total_credit"], tb
    account: dict[str, Decimal] = {}
    for entry in world.get("auditor", f"{LOANS}/{loan['id']}/journal-entries").json()["items"]:
        debit = sum(Decimal(ln["debit"]) for ln in entry["lines"])
        assert debit == sum(Decimal(ln["credit"]) for ln in entry["lines"]) and debit > 0, entry
        for ln in entry["lines"]:
            code = ln["account_code"]
            account[code] = account.get(code, Decimal(0)) + Decimal(ln["debit"]) - Decimal(ln["credit"])
    assert sum(account.values()) == 0
    balances = loan["balances"]
    assert account.get("1100", Decimal(0)) == Decimal(balances["principal"]), (account, balances)
    assert account.get("1200", Decimal(0)) == Decimal(balances["interest"]), (account, balances)
    assert -account.get("2100", Decimal(0)) == Decimal(balances["credit"]), (account, balances)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=steps)
def test_random_action_sequences_honour_the_lifecycle_and_keep_the_books_balanced(
    world: World, actions: list[tuple[int, int, int]]
) -> None:
    loan = submit_loan(world, principal="1000.00", term=6)
    for pick, index, size in actions:
        status, allowed = LoanStatus(loan["status"]), _allowed(loan)
        assert loan["allowed_actions"] == allowed
        action = _choose(allowed, pick, index)
        response = _request(world, loan, action, size)
        if response is None:
            continue
        after = get_loan(world, loan["id"])
        event(f"{status.value} {action.value} -> {response.status_code}")
        if action.value not in allowed:
            problem = assert_problem(response, 409)
            assert problem["allowed_actions"] == allowed, (status, action)
            assert after == loan
            continue
        assert response.status_code in {200, 201}, (status, action, response.text)
        expected = TRANSITIONS[(status, action)].value if action in ORIGINATION else _settled_status(after)
        assert after["status"] == expected, (status, action, after)
        assert after["allowed_actions"] == _allowed(after)
        assert after["version"] > loan["version"]
        if after["disbursement_date"]:
            _check_books(world, after)
        loan = after
