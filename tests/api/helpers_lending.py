"""Build lending fixtures through the HTTP API, the way a client would: a product, a borrower, and a loan in any
reachable status. Each helper asserts its own request succeeded and returns the JSON body.

    product = make_product(world, max_term=24)
    loan = active_loan(world, principal="1200.00", term=12)            # submitted, approved, disbursed
    closed = loan_in_status(world, "closed")                            # every status the lifecycle can reach
    r = pay(world, loan["id"], "100.00")                                # the raw response (201 expected)
"""

import uuid
from decimal import Decimal
from typing import Any

from tests.conftest import World, unique

PRODUCTS = "/api/v1/products"
BORROWERS = "/api/v1/borrowers"
LOANS = "/api/v1/loans"
OFFICER = {"A": "officer_a", "B": "officer_b"}

# Ordinary actions the tests perform; every status in lifecycle.LoanStatus is reachable from `loan_in_status`.
STATUSES = ("submitted", "approved", "rejected", "withdrawn", "active", "closed", "overpaid", "written_off")


def _created(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def product_body(**overrides: Any) -> dict[str, Any]:
    """A monthly 12 % annuity in USD: principal 100-10000, 3-36 installments, rate 5-30 %, no late fee."""
    return {
        "code": unique("LN-"),
        "name": "Test loan",
        "currency": "USD",
        "min_principal": "100.00",
        "max_principal": "10000.00",
        "min_term": 3,
        "max_term": 36,
        "annual_rate_percent": "12",
        "min_rate_percent": "5",
        "max_rate_percent": "30",
        "frequency": "monthly",
        "amortization": "equal_installments",
        "interest_method": "declining_balance",
        "day_count": "30/360",
        **overrides,
    }


def make_product(world: World, **overrides: Any) -> dict[str, Any]:
    return _created(world.post("admin", PRODUCTS, product_body(**overrides)))


_default_products: dict[int, dict[str, Any]] = {}


def default_product(world: World) -> dict[str, Any]:
    """One shared `product_body()` product per world (products are immutable, so sharing is safe)."""
    if id(world) not in _default_products:
        _default_products[id(world)] = make_product(world)
    return _default_products[id(world)]


def make_borrower(world: World, branch: str = "A", who: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"branch_id": world.branches[branch], "first_name": "Grace", "last_name": unique("Hopper"), **fields}
    return _created(world.post(who or OFFICER[branch], BORROWERS, body))


def loan_body(
    world: World,
    *,
    branch: str = "A",
    principal: str = "1200.00",
    term: int | None = 12,
    product: dict[str, Any] | None = None,
    borrower: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A valid POST /loans body; creates the borrower (in `branch`) unless one is given."""
    body: dict[str, Any] = {
        "borrower_id": (borrower or make_borrower(world, branch))["id"],
        "product_id": (product or default_product(world))["id"],
        "principal": principal,
        **fields,
    }
    if term is not None:
        body["term"] = term
    return body


def submit_loan(world: World, who: str | None = None, branch: str = "A", **kw: Any) -> dict[str, Any]:
    return _created(world.post(who or OFFICER[branch], LOANS, loan_body(world, branch=branch, **kw)))


def act(world: World, loan_id: str, action: str, body: dict[str, Any] | None = None, who: str = "manager") -> Any:
    """POST /loans/{id}/{action} (approve, reject, withdraw, disburse, write-off, refund); the raw response."""
    return world.post(who, f"{LOANS}/{loan_id}/{action}", body or {})


def approve(world: World, loan_id: str, **body: Any) -> dict[str, Any]:
    return _created(act(world, loan_id, "approve", body), 200)


def disburse(world: World, loan_id: str, **body: Any) -> dict[str, Any]:
    return _created(act(world, loan_id, "disburse", body), 200)


def pay(world: World, loan_id: str, amount: str, who: str = "manager", key: str | None = None, **body: Any) -> Any:
    """POST /loans/{id}/payments with a fresh Idempotency-Key unless one is given; the raw response."""
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    return world.post(who, f"{LOANS}/{loan_id}/payments", {"amount": amount, **body}, headers=headers)


def get_loan(world: World, loan_id: str, who: str = "manager") -> dict[str, Any]:
    return _created(world.get(who, f"{LOANS}/{loan_id}"), 200)


def approved_loan(world: World, **kw: Any) -> dict[str, Any]:
    return approve(world, submit_loan(world, **kw)["id"])


def active_loan(world: World, **kw: Any) -> dict[str, Any]:
    """Submitted (by the branch officer), approved (manager) and disbursed in full on the business date."""
    return disburse(world, approved_loan(world, **kw)["id"])


def loan_in_status(world: World, status: str, **kw: Any) -> dict[str, Any]:
    """A loan in any reachable status. Disbursed on the business date, nothing has accrued yet, so the payoff is
    the principal: paying it closes the loan, paying a cent more leaves it overpaid."""
    if status == "submitted":
        return submit_loan(world, **kw)
    if status in {"rejected", "withdrawn"}:
        loan = submit_loan(world, **kw)
        action = "reject" if status == "rejected" else "withdraw"
        return _created(act(world, loan["id"], action, {"reason": "test"}), 200)
    if status == "approved":
        return approved_loan(world, **kw)
    loan = active_loan(world, **kw)
    if status == "active":
        return loan
    if status == "written_off":
        return _created(act(world, loan["id"], "write-off", {"reason": "test"}), 200)
    payoff = _created(world.get("manager", f"{LOANS}/{loan['id']}/payoff"), 200)["total"]
    amount = payoff if status == "closed" else str(Decimal(payoff) + Decimal("0.01"))
    payment = _created(pay(world, loan["id"], amount))
    assert payment["loan_status"] == status, payment
    return get_loan(world, loan["id"])
