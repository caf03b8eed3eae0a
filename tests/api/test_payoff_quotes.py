"""Persisted payoff quotes: the payoff math of GET /payoff, stored with valid_until; a payment citing the quote
with at least its total, on or before valid_until, closes the loan; otherwise 422."""

from datetime import date, timedelta
from decimal import Decimal

from tests.api.helpers_lending import LOANS, active_loan, get_loan, pay, submit_loan
from tests.conftest import World, assert_problem, fresh_world


def quote(w: World, loan_id: str, who: str = "officer_a", **body: str) -> dict[str, str]:
    r = w.post(who, f"{LOANS}/{loan_id}/payoff-quotes", body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(r.json()["id"])
    out: dict[str, str] = r.json()
    return out


def test_a_quote_is_the_payoff_and_paying_it_closes_the_loan(world: World) -> None:
    loan = active_loan(world)
    q = quote(world, loan["id"])
    payoff = world.get("manager", f"{LOANS}/{loan['id']}/payoff").json()
    assert {k: q[k] for k in ("date", "total", "principal", "interest", "fees", "penalties", "per_diem")} == {
        k: payoff[k] for k in ("date", "total", "principal", "interest", "fees", "penalties", "per_diem")
    }
    assert q["valid_until"] == q["date"] and q["loan_id"] == loan["id"]
    got = world.get("auditor", f"{LOANS}/{loan['id']}/payoff-quotes/{q['id']}")
    assert got.status_code == 200 and got.json() == q
    short = str(Decimal(q["total"]) - Decimal("0.01"))
    assert_problem(pay(world, loan["id"], short, payoff_quote_id=q["id"]), 422, "amount")
    other = quote(world, active_loan(world)["id"])
    assert_problem(pay(world, loan["id"], q["total"], payoff_quote_id=other["id"]), 422, "payoff_quote_id")
    r = pay(world, loan["id"], q["total"], payoff_quote_id=q["id"], key="quote-pay-1")
    assert r.status_code == 201 and r.json()["loan_status"] == "closed", r.text
    again = pay(world, loan["id"], q["total"], payoff_quote_id=q["id"], key="quote-pay-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert get_loan(world, loan["id"])["status"] == "closed"


def test_quote_access_and_bad_input(world: World) -> None:
    loan = active_loan(world)
    assert_problem(world.post("officer_b", f"{LOANS}/{loan['id']}/payoff-quotes", {}), 404)
    assert_problem(world.post("auditor", f"{LOANS}/{loan['id']}/payoff-quotes", {}), 403)
    assert_problem(world.post("officer_a", f"{LOANS}/{loan['id']}/payoff-quotes", {"date": "2000-01-01"}), 422, "date")
    assert_problem(world.post("officer_a", f"{LOANS}/{loan['id']}/payoff-quotes", {"date": "tomorrow"}), 422, "date")
    assert_problem(world.post("officer_a", f"{LOANS}/{loan['id']}/payoff-quotes", {"x": 1}), 422)
    assert_problem(world.post("officer_a", f"{LOANS}/{submit_loan(world)['id']}/payoff-quotes", {}), 409)
    assert_problem(world.get("manager", f"{LOANS}/{loan['id']}/payoff-quotes/nope"), 404)
    q = quote(world, loan["id"])
    assert_problem(world.get("officer_b", f"{LOANS}/{loan['id']}/payoff-quotes/{q['id']}"), 404)
    assert_problem(pay(world, loan["id"], q["total"], who="officer_b", payoff_quote_id=q["id"]), 404)


def test_an_expired_quote_is_refused_and_a_future_one_paid_early_leaves_a_credit() -> None:
    with fresh_world() as (w, _db):
        loan = active_loan(w, principal="1200.00", term=12)
        today = w.get("manager", "/api/v1/operations/business-date").json()["business_date"]
        todays = quote(w, loan["id"])
        in_five = quote(w, loan["id"], date=(date.fromisoformat(today) + timedelta(days=5)).isoformat())
        assert in_five["date"] > today
        assert w.post("manager", "/api/v1/operations/close-of-business", {}).status_code == 200
        assert_problem(pay(w, loan["id"], todays["total"], payoff_quote_id=todays["id"]), 422, "payoff_quote_id")
        payoff_now = Decimal(w.get("manager", f"{LOANS}/{loan['id']}/payoff").json()["total"])
        assert Decimal(in_five["total"]) > payoff_now
        r = pay(w, loan["id"], in_five["total"], payoff_quote_id=in_five["id"])
        assert r.status_code == 201 and r.json()["loan_status"] == "overpaid", r.text
        credit = Decimal(get_loan(w, loan["id"])["balances"]["credit"])
        assert credit == Decimal(in_five["total"]) - payoff_now
