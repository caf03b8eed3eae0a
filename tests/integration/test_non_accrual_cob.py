"""Non-accrual through close of business and the API, both legs: the golden loan of tests/unit/test_non_accrual.py
(1,200.00 at 12 %, 12 monthly installments of 106.62, 30/360, late fee 10.00 after 5 days, non-accrual after 30
days past due) closed daily from 2024-01-01, beside a twin loan of a product without the option. The set-based
accrual must book exactly what the projection says (to suspense from 03-03), the borrower's balances, DPD and
ageing stay those of the twin, and a payment moves the suspended interest to income."""

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.business_calendar import repository as calendar_repo
from app.database import Database
from app.loans import reconcile
from app.loans.models import Loan
from app.loans.service import project_loan
from tests.api.helpers_lending import LOANS, active_loan, make_product, pay
from tests.conftest import World, fresh_world
from tests.integration.test_close_of_business import assert_snapshots_match_projection, close

D = date
LOAN12 = {"late_fee": {"amount": "10.00", "grace_days": 5}}


def get(w: World, path: str, **params: Any) -> Any:
    r = w.get("manager", path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def loan_ledger(w: World, loan_id: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for entry in get(w, f"{LOANS}/{loan_id}/journal-entries")["items"]:
        for ln in entry["lines"]:
            sums[ln["account_code"]] = sums.get(ln["account_code"], Decimal(0)) + Decimal(ln["debit"]) - Decimal(
                ln["credit"])
    return sums


def assert_suspense_matches_projection(db: Database, on: date) -> None:
    with db.session(writer=False) as session:
        for loan in session.scalars(select(Loan).where(Loan.status == "active")):
            state = project_loan(session, loan, on)
            assert (loan.interest_suspended, loan.accrual_status) == (state.interest_in_suspense,
                                                                      state.accrual_status), (loan.id, on)
        assert [str(m) for m in reconcile.mismatches(session)] == []


def test_non_accrual_books_suspense_day_by_day_and_a_payment_moves_it_to_income() -> None:
    with fresh_world() as (w, db):
        with db.transaction() as session:
            calendar_repo.set_business_date(session, D(2024, 1, 1))
        na = make_product(w, non_accrual_after_days=30, **LOAN12)
        assert na["non_accrual_after_days"] == 30
        plain = make_product(w, **LOAN12)
        loan = active_loan(w, principal="1200.00", term=12, product=na)
        twin = active_loan(w, principal="1200.00", term=12, product=plain)
        assert loan["installment_amount"] == "106.62" and loan["accrual_status"] == "accruing"
        for through in (D(2024, 3, 2), D(2024, 3, 3), D(2024, 4, 1)):
            close(w, through)
            assert_snapshots_match_projection(db, through)
            assert_suspense_matches_projection(db, through)
        on = get(w, f"{LOANS}/{loan['id']}", as_of="2024-03-02")
        assert on["accrual_status"] == "accruing" and on["interest_in_suspense"] == "0.00"  # DPD 30: not beyond
        on = get(w, f"{LOANS}/{loan['id']}", as_of="2024-04-01")
        other = get(w, f"{LOANS}/{twin['id']}", as_of="2024-04-01")
        # 33.15 recognised, 9.76 of it after 03-02 (see the unit test): in suspense, still owed by the borrower
        assert on["accrual_status"] == "non_accrual" and on["interest_in_suspense"] == "9.76"
        assert on["balances"] == other["balances"] and on["balances"]["interest"] == "33.15"
        assert (on["days_past_due"], on["delinquency_bucket"]) == (other["days_past_due"], other["delinquency_bucket"])
        books = loan_ledger(w, loan["id"])
        assert books["2120"] == Decimal("-9.76") and books["4000"] == Decimal("-23.39")
        assert books["1200"] == Decimal("33.15")
        assert "2120" not in loan_ledger(w, twin["id"])
        tb = {a["code"]: a for a in get(w, "/api/v1/ledger/trial-balance", as_of="2024-04-01")["accounts"]}
        assert tb["2120"]["credit"] == "9.76" and tb["2120"]["name"] == "Interest in suspense"
        report = get(w, "/api/v1/reports/portfolio", as_of="2024-04-01")
        assert report["interest_in_suspense"] == "9.76" and report["par_30"] == "1.0000"  # both loans DPD 60
        assert get(w, "/api/v1/reports/portfolio", as_of="2024-04-01", basis="value")["interest_in_suspense"] == "9.76"
        history = get(w, "/api/v1/reports/portfolio", as_of="2024-03-15")
        assert history["source"] == "journal" and Decimal(history["interest_in_suspense"]) > 0

        # 04-02: 106.62 pays #1's fee, its 12.00 interest (releasing the 9.76) and 84.62 principal; still 10.00
        # principal overdue, so DPD 61: the day's 0.30 accrual of #4 stays in suspense.
        r = pay(w, loan["id"], "106.62")
        assert r.status_code == 201, r.text
        now = get(w, f"{LOANS}/{loan['id']}")
        assert now["accrual_status"] == "non_accrual" and now["interest_in_suspense"] == "0.30"
        books = loan_ledger(w, loan["id"])
        assert books["2120"] == Decimal("-0.30") and books["4000"] == Decimal("-33.15")
        close(w, D(2024, 4, 2))
        assert_snapshots_match_projection(db, D(2024, 4, 2))
        assert_suspense_matches_projection(db, D(2024, 4, 2))
        # Bringing the loan current ends non-accrual; the suspense is collected with the arrears.
        arrears = sum(Decimal(i["outstanding"]) for i in get(w, f"{LOANS}/{loan['id']}/schedule")["installments"]
                      if i["status"] == "overdue")
        assert pay(w, loan["id"], str(arrears)).status_code == 201
        current = get(w, f"{LOANS}/{loan['id']}")
        assert current["accrual_status"] == "accruing" and current["interest_in_suspense"] == "0.00"
        assert loan_ledger(w, loan["id"]).get("2120", Decimal(0)) == 0
        close(w, D(2024, 4, 5))
        assert_snapshots_match_projection(db, D(2024, 4, 5))
        assert_suspense_matches_projection(db, D(2024, 4, 5))
