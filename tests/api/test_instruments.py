"""Servicing instruments over HTTP on both legs (CONTRACT "Servicing instruments"): ad-hoc charges (officer),
waivers, goodwill credits and chargebacks (manager) — shape, roles, 422 cases, idempotent replay, dry runs that
write nothing, reversal and backdating, the journal lines each posts, and a hypothesis property that the books
balance and every loan's ledger equals its balances (app/loans/reconcile.py) whatever the sequence.

The loan is LOAN3 of tests/api/test_servicing.py (its module database, `svc`): 1,000.00 at 12 %, 3 monthly
installments of 340.02 (last 340.03), 30/360, disbursed 2024-01-01, late fee 15.00 after 5 grace days.
  #1 due 02-01: interest 10.00, principal 330.02; #2 due 03-01: interest 6.70, principal 333.32;
  #3 due 04-01: interest 3.37, principal 336.66 (340.03)
"""

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.business_calendar import repository as calendar_repo
from app.loans import reconcile
from app.loans.models import Loan
from app.loans.service import project_loan
from tests.api import test_servicing
from tests.api.helpers_lending import (
    LOANS,
    active_loan,
    approved_loan,
    disburse,
    get_loan,
    make_product,
    product_body,
)
from tests.api.test_servicing import Svc
from tests.conftest import assert_problem, fresh_world, unique

D = date
svc = test_servicing.svc  # the module database fixture of the servicing tests (its own business date)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def act(s: Svc, loan_id: str, what: str, body: dict[str, Any], who: str = "manager", **kw: Any) -> Any:
    headers = kw.pop("headers", None) or key()
    return s.world.post(who, f"{LOANS}/{loan_id}/{what}", body, headers=headers, **kw)


def created(r: Any) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def entry_lines(s: Svc, loan_id: str, tx: dict[str, Any]) -> set[tuple[str, str, str]]:
    entries = [e for e in s.journal(loan_id) if e["id"] == tx["journal_entry_id"]]
    assert entries, (tx, s.journal(loan_id))
    entry = entries[0]
    return {(ln["account_code"], ln["debit"], ln["credit"]) for ln in entry["lines"]}


def books_true(s: Svc, loan_id: str | None = None) -> None:
    """Trial balance zero; every loan's (or this loan's) journal lines per balance-sheet account = its balances."""
    s.trial_balance_is_zero()
    with s.db.session(writer=False) as session:
        wrong = [str(m) for m in reconcile.mismatches(session) if loan_id is None or m.loan_id == loan_id]
    assert wrong == []


def schedule(s: Svc, loan_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = s.get(f"{LOANS}/{loan_id}/schedule")["installments"]
    return rows


# --- charges ----------------------------------------------------------------------------------------------------


def test_an_officer_charges_a_fee_inside_installment_3(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 1))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    svc.pay(loan["id"], "340.02", D(2024, 3, 1))
    svc.set_date(D(2024, 3, 15))
    body = created(act(svc, loan["id"], "charges", {"name": "Statement copy", "amount": "25.00",
                                                     "due_date": "2024-03-15", "code": "STMT"}, who="officer_a"))
    assert (body["type"], body["date"], body["amount"], body["reversed"]) == ("charge", "2024-03-15", "25.00", False)
    assert body["allocation"]["fees"] == "25.00"
    assert body["loan"]["id"] == loan["id"] and body["loan"]["balances"]["fees"] == "25.00"
    # in #3's fees (period 03-01 .. 04-01): 3.37 + 336.66 + 25.00 = 365.03
    third = schedule(svc, loan["id"])[2]
    assert (third["fees"], third["total"], third["outstanding"]) == ("25.00", "365.03", "365.03")
    assert [t["type"] for t in svc.transactions(loan["id"])].count("charge") == 1
    # Dr 1210 fees receivable, Cr 4100 fee income (beside the catch-up accrual of 03-01..03-15:
    # 3.37 * 14 / 30 = 1.57, Dr 1200 Cr 4000, posted by the same write)
    assert entry_lines(svc, loan["id"], body) == {("1210", "25.00", "0.00"), ("4100", "0.00", "25.00"),
                                                  ("1200", "1.57", "0.00"), ("4000", "0.00", "1.57")}
    # the payoff includes the charge due on or before its date
    payoff = svc.get(f"{LOANS}/{loan['id']}/payoff")
    assert payoff["fees"] == "25.00"
    books_true(svc, loan["id"])


def test_a_backdated_charge_moves_a_later_payment_and_its_reversal_moves_it_back(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    paid = svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    assert paid["allocation"]["fees"] == "0.00"
    svc.set_date(D(2024, 2, 3))
    charge = created(act(svc, loan["id"], "charges", {"name": "Courier", "amount": "20.00", "due_date": "2024-01-20"}))
    # replayed: the 02-01 payment now pays the 20.00 fee of #1 first; 20.00 of #1's principal is left owing
    moved = next(t for t in svc.transactions(loan["id"]) if t["id"] == paid["transaction_id"])
    assert (moved["allocation"]["fees"], moved["allocation"]["principal"]) == ("20.00", "310.02")
    assert schedule(svc, loan["id"])[0]["outstanding"] == "20.00"
    books_true(svc, loan["id"])
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{charge['id']}/reverse", {"reason": "error"})
    assert r.status_code == 200, r.text
    back = next(t for t in svc.transactions(loan["id"]) if t["id"] == paid["transaction_id"])
    assert (back["allocation"]["fees"], back["allocation"]["principal"]) == ("0.00", "330.02")
    assert r.json()["balances"]["fees"] == "0.00"
    books_true(svc, loan["id"])


def test_charge_validation(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    for body, field in (
        ({"name": "x", "amount": "0"}, "amount"),
        ({"name": "x", "amount": "1.001"}, "amount"),
        ({"name": "x", "amount": 1.5}, "amount"),
        ({"name": "x", "amount": "5", "due_date": "2023-12-31"}, "due_date"),  # before the disbursement
        ({"name": "x", "amount": "5", "due_date": "2024-02-02"}, "due_date"),  # after the business date
        ({"amount": "5"}, "name"),
        ({"name": "x", "amount": "5", "extra": 1}, "extra"),
    ):
        assert_problem(act(svc, loan["id"], "charges", body), 422, field)
    # on a loan that is not active: 409 naming what is allowed
    svc.pay(loan["id"], "1010.00")
    problem = assert_problem(act(svc, loan["id"], "charges", {"name": "x", "amount": "5"}), 409)
    assert "chargeback" in problem["allowed_actions"]


# --- roles ------------------------------------------------------------------------------------------------------


def test_roles_officer_charges_but_cannot_waive_credit_or_charge_back(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    paid = svc.pay(loan["id"], "340.02")
    for what, body in (
        ("waivers", {"bucket": "fees", "amount": "1.00", "reason": "x"}),
        ("credits", {"amount": "1.00", "reason": "x"}),
        ("chargebacks", {"transaction_id": paid["transaction_id"], "amount": "1.00", "reason": "x"}),
    ):
        assert_problem(act(svc, loan["id"], what, body, who="officer_a"), 403)
        assert_problem(act(svc, loan["id"], what, body, who="auditor"), 403)
        # the role is checked before the body is looked at (app/api/strict.py)
        assert_problem(act(svc, loan["id"], what, {"amount": "abc"}, who="officer_a"), 403)
    # another branch's officer does not see the loan at all
    assert_problem(act(svc, loan["id"], "charges", {"name": "x", "amount": "1"}, who="officer_b"), 404)
    assert_problem(act(svc, loan["id"], "charges", {"name": "x", "amount": "1"}, who="auditor"), 403)
    created(act(svc, loan["id"], "charges", {"name": "x", "amount": "1"}, who="officer_a"))


# --- waivers ----------------------------------------------------------------------------------------------------


def test_waiving_half_a_penalty_and_over_waiving_is_422(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 10))
    # #1 unpaid: the 15.00 late fee was charged at the end of 02-07 (due 02-01 + 5 grace days + 1)
    counts = svc.row_counts()
    problem = assert_problem(act(svc, loan["id"], "waivers", {"bucket": "penalties", "amount": "15.01",
                                                              "reason": "disputed"}), 422, "amount")
    assert "15.00" in problem["detail"] + str(problem["errors"])
    assert svc.row_counts() == counts  # nothing written, not even the late fee's catch-up
    body = created(act(svc, loan["id"], "waivers", {"bucket": "penalties", "amount": "7.50", "reason": "disputed"}))
    assert (body["type"], body["amount"], body["allocation"]["penalties"]) == ("waiver", "7.50", "7.50")
    assert body["loan"]["balances"]["penalties"] == "7.50"
    first = schedule(svc, loan["id"])[0]
    assert (first["penalties"], first["waived"]["penalties"]) == ("15.00", "7.50")
    # total 340.02 + 15.00 = 355.02 charged; outstanding = 355.02 - 7.50 waived
    assert (first["total"], first["outstanding"]) == ("355.02", "347.52")
    # Dr 4200 penalty income, Cr 1220 penalties receivable
    assert entry_lines(svc, loan["id"], body) == {("4200", "7.50", "0.00"), ("1220", "0.00", "7.50")}
    assert_problem(act(svc, loan["id"], "waivers", {"bucket": "fees", "amount": "0.01", "reason": "x"}), 422, "amount")
    books_true(svc, loan["id"])


def test_waiving_due_interest(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 3))
    # due: #1's 10.00 of interest; #2's accrual (2 days of 6.70) is not yet due
    assert_problem(act(svc, loan["id"], "waivers", {"bucket": "interest", "amount": "10.01", "reason": "x"}),
                   422, "amount")
    body = created(act(svc, loan["id"], "waivers", {"bucket": "interest", "amount": "10.00", "reason": "x"}))
    assert entry_lines(svc, loan["id"], body) == {("4000", "10.00", "0.00"), ("1200", "0.00", "10.00")}
    assert schedule(svc, loan["id"])[0]["waived"]["interest"] == "10.00"
    books_true(svc, loan["id"])


def test_idempotent_replay_and_dry_run(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 10))
    body = {"bucket": "penalties", "amount": "5.00", "reason": "goodwill"}
    counts = svc.row_counts()
    dry = act(svc, loan["id"], "waivers", body, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert preview["dry_run"] is True and preview["allocation"]["penalties"] == "5.00"
    lines = {(ln["account_code"], ln["debit"], ln["credit"]) for e in preview["journal_entries"] for ln in e["lines"]}
    assert ("1220", "0.00", "5.00") in lines  # beside the catch-up of the late fee and accrual
    assert svc.row_counts() == counts  # a dry run writes nothing
    headers = key()
    first = act(svc, loan["id"], "waivers", body, headers=headers)
    assert first.status_code == 201, first.text
    after_first = svc.row_counts()
    again = act(svc, loan["id"], "waivers", body, headers=headers)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert svc.row_counts() == after_first  # nothing posted twice
    assert_problem(act(svc, loan["id"], "waivers", {**body, "amount": "1.00"}, headers=headers), 422)
    assert [t["type"] for t in svc.transactions(loan["id"])].count("waiver") == 1


# --- goodwill credits -------------------------------------------------------------------------------------------


def test_a_goodwill_credit_pays_installment_1(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    body = created(act(svc, loan["id"], "credits", {"amount": "340.02", "reason": "branch closed on due date"}))
    assert body["type"] == "goodwill_credit"
    assert (body["allocation"]["interest"], body["allocation"]["principal"]) == ("10.00", "330.02")
    assert schedule(svc, loan["id"])[0]["status"] == "paid"
    # Dr 5100 goodwill expense 340.02; Cr 1200 10.00 (accrued today) and 1100 330.02 — no cash line
    lines = entry_lines(svc, loan["id"], body)
    assert ("5100", "340.02", "0.00") in lines and ("1100", "0.00", "330.02") in lines
    assert not any(code == "1000" for code, _, _ in lines)
    # more than is owed (the payoff: 669.98 principal, nothing accrued yet on 02-01) is refused
    payoff = Decimal(svc.get(f"{LOANS}/{loan['id']}/payoff")["total"])
    assert_problem(act(svc, loan["id"], "credits", {"amount": str(payoff + Decimal("0.01")), "reason": "x"}),
                   422, "amount")
    books_true(svc, loan["id"])


# --- chargebacks ------------------------------------------------------------------------------------------------


def test_a_chargeback_makes_principal_due_again(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    paid = svc.pay(loan["id"], "340.02")
    svc.set_date(D(2024, 2, 5))
    assert_problem(act(svc, loan["id"], "chargebacks", {"transaction_id": paid["transaction_id"], "amount": "340.03",
                                                        "reason": "card dispute"}), 422, "amount")
    assert_problem(act(svc, loan["id"], "chargebacks", {"transaction_id": str(uuid.uuid4()), "amount": "1.00",
                                                        "reason": "card dispute"}), 422, "transaction_id")
    body = created(act(svc, loan["id"], "chargebacks", {"transaction_id": paid["transaction_id"], "amount": "340.02",
                                                        "reason": "card dispute"}))
    assert (body["type"], body["allocation"]["principal"]) == ("chargeback", "340.02")
    # principal 669.98 left after #1, plus the 340.02 returned: 1010.00
    assert body["loan"]["balances"]["principal"] == "1010.00"
    # due at once: a row of its own due 02-05 (the chargeback's date), no interest; the old #2 is now #3
    rows = schedule(svc, loan["id"])
    assert [(r["number"], r["due_date"], r["principal"], r["interest"]) for r in rows] == [
        (1, "2024-02-01", "330.02", "10.00"), (2, "2024-02-05", "340.02", "0.00"),
        (3, "2024-03-01", "333.32", "6.70"), (4, "2024-04-01", "336.66", "3.37")]
    # Dr 1100 loan portfolio, Cr 1000 fund source (the money went back to the payer)
    lines = entry_lines(svc, loan["id"], body)
    assert ("1100", "340.02", "0.00") in lines and ("1000", "0.00", "340.02") in lines
    # nothing more of that repayment can be charged back; the repayment cannot be reversed under it
    assert_problem(act(svc, loan["id"], "chargebacks", {"transaction_id": paid["transaction_id"], "amount": "0.01",
                                                        "reason": "again"}), 422, "amount")
    reverse = f"{LOANS}/{loan['id']}/transactions/{paid['transaction_id']}/reverse"
    assert_problem(svc.world.post("manager", reverse, {"reason": "nsf"}), 409)
    books_true(svc, loan["id"])
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{body['id']}/reverse", {"reason": "won"})
    assert r.status_code == 200 and r.json()["balances"]["principal"] == "669.98"
    assert [row["due_date"] for row in schedule(svc, loan["id"])] == ["2024-02-01", "2024-03-01", "2024-04-01"]
    books_true(svc, loan["id"])


COB = "/api/v1/operations/close-of-business"


def test_chargeback_principal_is_due_at_once_through_close_of_business() -> None:
    """LOAN3 with a late fee of 25.00 after 6 grace days, disbursed 2025-01-01; #1 (340.02) paid 02-01; 50.00 of it
    charged back on 02-15. Close of business (the set-based SQL over the stored rows) ages the row due 02-15 and
    charges its late fee exactly as the projection does; reversing the chargeback removes the row again."""
    with fresh_world() as (world, db):
        with db.transaction() as session:
            calendar_repo.set_business_date(session, D(2025, 1, 1))
        product = make_product(world, late_fee={"amount": "25.00", "grace_days": 6})
        loan = active_loan(world, principal="1000.00", term=3, product=product)
        loan_id = loan["id"]

        def close(through: date) -> None:
            r = world.post("manager", COB, {"business_date": through.isoformat()})
            assert r.status_code == 200, r.text

        def rows() -> list[tuple[Any, ...]]:
            items = world.get("manager", f"{LOANS}/{loan_id}/schedule").json()["installments"]
            return [(r["number"], r["period_start"], r["due_date"], r["principal"], r["interest"], r["penalties"],
                     r["status"]) for r in items]

        close(D(2025, 1, 31))
        paid = created(world.post("manager", f"{LOANS}/{loan_id}/payments", {"amount": "340.02"}, headers=key()))
        close(D(2025, 2, 14))
        body = created(world.post("manager", f"{LOANS}/{loan_id}/chargebacks",
                                  {"transaction_id": paid["transaction_id"], "amount": "50.00", "reason": "dispute"},
                                  headers=key()))
        assert body["date"] == "2025-02-15" and body["allocation"]["principal"] == "50.00"
        # the stored rows were renumbered: 4 rows, the new one second (period start = due date = 02-15)
        assert rows() == [
            (1, "2025-01-01", "2025-02-01", "330.02", "10.00", "0.00", "paid"),
            (2, "2025-02-15", "2025-02-15", "50.00", "0.00", "0.00", "pending"),
            (3, "2025-02-01", "2025-03-01", "333.32", "6.70", "0.00", "pending"),
            (4, "2025-03-01", "2025-04-01", "336.66", "3.37", "0.00", "pending")]
        on_the_day = get_loan(world, loan_id)
        assert on_the_day["days_past_due"] == 0
        assert on_the_day["next_due"] == {"date": "2025-02-15", "amount": "50.00"}
        assert on_the_day["balances"]["principal"] == "719.98"  # 669.98 + 50.00

        def snapshot() -> tuple[Any, ...]:
            """What close of business wrote on the loan row (its set-based SQL over the stored installments)."""
            with db.session(writer=False) as session:
                row = session.get(Loan, loan_id)
                assert row is not None
                return (row.days_past_due, row.delinquency_bucket, row.next_due_date, row.next_due_amount,
                        row.penalties_outstanding)

        close(D(2025, 2, 15))
        assert snapshot() == (0, "current", D(2025, 2, 15), 5000, 0)  # due on 02-15: not past due at its end
        # GET answers for the business date 02-16: unpaid since 02-15, 1 day past due; next due is #3's 340.02
        # on 03-01 plus the 50.00 in arrears
        next_day = get_loan(world, loan_id)
        assert next_day["days_past_due"] == 1 and next_day["next_due"] == {"date": "2025-03-01", "amount": "390.02"}
        close(D(2025, 2, 16))
        assert snapshot() == (1, "1-30", D(2025, 3, 1), 39002, 0)
        close(D(2025, 2, 22))  # 02-22 = 02-15 + 6 grace days + 1: its late fee of 25.00
        assert snapshot() == (7, "1-30", D(2025, 3, 1), 39002 + 2500, 2500)
        assert rows()[1] == (2, "2025-02-15", "2025-02-15", "50.00", "0.00", "25.00", "overdue")
        with db.session(writer=False) as session:
            assert [str(m) for m in reconcile.mismatches(session)] == []
            # close of business wrote what a replay of the event log computes
            stored = session.get(Loan, loan_id)
            assert stored is not None
            replay = project_loan(session, stored, D(2025, 2, 22))
            assert (replay.days_past_due, replay.penalties_outstanding) == (7, 2500)
            assert replay.next_due == (D(2025, 3, 1), 39002 + 2500)
        assert get_loan(world, loan_id)["days_past_due"] == 8  # business date 02-23
        # the next payment pays it first: its late fee, then its principal, then #3 as scheduled
        pay = created(world.post("manager", f"{LOANS}/{loan_id}/payments", {"amount": "100.00"}, headers=key()))
        # 100.00 - 25.00 - 50.00 = 25.00 for #3: 6.70 interest, then 18.30 principal
        assert pay["allocation"]["penalties"] == "25.00" and pay["allocation"]["interest"] == "6.70"
        assert pay["allocation"]["principal"] == "68.30"
        assert get_loan(world, loan_id)["days_past_due"] == 0
        assert [row[0] for row in rows()] == [1, 2, 3, 4]
        assert [row[-1] for row in rows()] == ["paid", "paid", "partially_paid", "pending"]
        # reversing the chargeback removes the row (and its late fee); the 100.00 goes to #2 again
        r = world.post("manager", f"{LOANS}/{loan_id}/transactions/{body['id']}/reverse", {"reason": "won"})
        assert r.status_code == 200, r.text
        assert [row[:3] for row in rows()] == [(1, "2025-01-01", "2025-02-01"), (2, "2025-02-01", "2025-03-01"),
                                               (3, "2025-03-01", "2025-04-01")]
        after = get_loan(world, loan_id)
        assert after["balances"]["penalties"] == "0.00" and after["days_past_due"] == 0
        with db.session(writer=False) as session:
            assert [str(m) for m in reconcile.mismatches(session)] == []
        tb = world.get("manager", "/api/v1/ledger/trial-balance").json()
        assert tb["total_debit"] == tb["total_credit"]


def test_a_chargeback_reopens_a_closed_loan(svc: Svc) -> None:
    loan = svc.loan()
    paid = svc.pay(loan["id"], "1000.00")  # the payoff on the disbursement day
    assert paid["loan_status"] == "closed"
    body = created(act(svc, loan["id"], "chargebacks", {"transaction_id": paid["transaction_id"], "amount": "100.00",
                                                        "reason": "card dispute"}))
    assert body["loan"]["status"] == "active" and body["loan"]["balances"]["principal"] == "100.00"
    books_true(svc, loan["id"])


# --- property: the books stay true whatever the sequence --------------------------------------------------------

STEP = st.tuples(st.sampled_from(["pay", "charge", "waive", "credit", "chargeback", "reverse", "day"]),
                 st.integers(1, 100), st.sampled_from(["penalties", "fees", "interest"]))


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_books_balance_and_each_ledger_equals_balances_for_random_instruments(svc: Svc, steps: list[Any]) -> None:
    loan = svc.loan(pay_on=D(2024, 1, 1))
    loan_id, today = loan["id"], D(2024, 1, 1)
    for what, size, bucket in steps:
        current = svc.get(f"{LOANS}/{loan_id}")
        owed = Decimal(current["balances"]["total"]) or Decimal("1.00")
        amount = str(max(Decimal("0.01"), (owed * size / 200).quantize(Decimal("0.01"))))
        if what == "day":
            today = D(2024, min(today.month + 1, 12), 3)
            svc.set_date(today)
            continue
        if what == "pay":
            r = act(svc, loan_id, "payments", {"amount": amount})
        elif what == "charge":
            r = act(svc, loan_id, "charges", {"name": "fee", "amount": amount})
        elif what == "waive":
            r = act(svc, loan_id, "waivers", {"bucket": bucket, "amount": amount, "reason": "p"})
        elif what == "credit":
            r = act(svc, loan_id, "credits", {"amount": amount, "reason": "p"})
        else:
            items = [t for t in svc.transactions(loan_id) if not t["reversed"]]
            if what == "chargeback":
                pays = [t for t in items if t["type"] == "repayment"]
                if not pays:
                    continue
                r = act(svc, loan_id, "chargebacks", {"transaction_id": pays[-1]["id"], "amount": "0.01", "reason": "p"})
            else:
                movable = [t for t in items if t["type"] not in {"disbursement", "reversal"}]
                if not movable:
                    continue
                r = svc.world.post("manager", f"{LOANS}/{loan_id}/transactions/{movable[-1]['id']}/reverse",
                                   {"reason": "p"})
        assert r.status_code in (200, 201, 409, 422), r.text  # never a server error
        books_true(svc, loan_id)


# --- product charges ----------------------------------------------------------------------------------------------

CHARGES = [
    {"code": "ORIG", "name": "Origination", "kind": "disbursement", "percent": "2", "collection": "deducted"},
    {"code": "SVC", "name": "Service fee", "kind": "installment", "amount": "5.00"},
    {"code": "NSF", "name": "Returned payment", "kind": "nsf", "amount": "25.00"},
]


def charged_product(s: Svc, charges: list[dict[str, Any]]) -> dict[str, Any]:
    body = {k: v for k, v in s.product.items() if k in test_servicing.PRODUCT_FIELDS}
    return make_product(s.world, **{**body, "code": unique("CH-"), "charges": charges})


def test_product_charges_are_validated_and_echoed(svc: Svc) -> None:
    product = charged_product(svc, CHARGES)
    assert [(c["code"], c["kind"], c["amount"], c["percent"], c["collection"]) for c in product["charges"]] == [
        ("ORIG", "disbursement", None, "2", "deducted"),
        ("SVC", "installment", "5.00", None, None),
        ("NSF", "nsf", "25.00", None, None),
    ]
    body = {k: v for k, v in svc.product.items() if k in test_servicing.PRODUCT_FIELDS}
    for charges, field in (
        ([{"code": "A", "name": "a", "kind": "nsf", "amount": "1", "percent": "1"}], "charges[0].amount"),
        ([{"code": "A", "name": "a", "kind": "nsf"}], "charges[0].percent"),
        ([{"code": "A", "name": "a", "kind": "installment", "amount": "1", "collection": "deducted"}],
         "charges[0].collection"),
        ([{"code": "A", "name": "a", "kind": "nsf", "amount": "1.001"}], "charges[0].amount"),
        ([{"code": "A", "name": "a", "kind": "nsf", "percent": "101"}], "charges[0].percent"),
        ([{"code": "A", "name": "a", "kind": "nsf", "amount": "1"}, {"code": "A", "name": "b", "kind": "nsf",
                                                                    "amount": "2"}], "charges[1].code"),
        ([{"code": "A", "name": "a", "kind": "bogus", "amount": "1"}], None),
    ):
        r = svc.world.post("admin", "/api/v1/products", {**body, "code": unique("BAD-"), "charges": charges})
        assert_problem(r, 422, field)


def test_a_deducted_fee_an_installment_fee_and_the_nsf_fee(svc: Svc) -> None:
    product = charged_product(svc, CHARGES)
    loan = svc.loan(product=product, pay_on=D(2024, 1, 1))
    # 2 % of 1000.00 = 20.00 deducted: 980.00 paid out; #1's 5.00 service fee charged as its period begins
    entry = next(e for e in svc.journal(loan["id"]) if e["entry_type"] == "disbursement")
    lines = {(ln["account_code"], ln["debit"], ln["credit"]) for ln in entry["lines"]}
    assert lines == {("1100", "1000.00", "0.00"), ("1000", "0.00", "980.00"), ("1210", "5.00", "0.00"),
                     ("4100", "0.00", "25.00")}
    current = svc.get(f"{LOANS}/{loan['id']}")
    assert current["balances"]["principal"] == "1000.00" and current["balances"]["fees"] == "5.00"
    # App. J: 980.00 financed against 345.02, 345.02, 345.03 — well above the 12 % nominal rate
    assert Decimal(current["apr_percent"]) > Decimal("25")
    rows = schedule(svc, loan["id"])
    assert [r["fees"] for r in rows] == ["5.00", "5.00", "5.00"]  # in every row: #2 and #3 as planned
    assert [r["total"] for r in rows] == ["345.02", "345.02", "345.03"]
    books_true(svc, loan["id"])
    # #2's fee is charged when its period begins (02-01), with the first write after it
    svc.set_date(D(2024, 2, 2))
    paid = svc.pay(loan["id"], "345.02", D(2024, 2, 1))
    assert paid["allocation"]["fees"] == "5.00" and paid["allocation"]["interest"] == "10.00"
    # returned unpaid: reversed with reason_code nsf charges the product's 25.00 NSF fee
    reverse = f"{LOANS}/{loan['id']}/transactions/{paid['transaction_id']}/reverse"
    r = svc.world.post("manager", reverse, {"reason": "returned unpaid", "reason_code": "nsf"})
    assert r.status_code == 200, r.text
    assert r.json()["balances"]["fees"] == "35.00"  # #1 5.00 + #2 5.00 + NSF 25.00
    nsf = [t for t in svc.transactions(loan["id"]) if t["type"] == "charge"]
    assert [(t["amount"], t["date"]) for t in nsf] == [("25.00", "2024-02-02")]  # on the business date
    assert {("1210", "25.00", "0.00"), ("4100", "0.00", "25.00")} <= entry_lines(svc, loan["id"], nsf[0])
    books_true(svc, loan["id"])
    # any other reason code charges nothing
    again = svc.pay(loan["id"], "10.00", D(2024, 2, 1))
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{again['transaction_id']}/reverse",
                       {"reason": "typo", "reason_code": "error"})
    assert r.status_code == 200 and r.json()["balances"]["fees"] == "35.00"


def test_a_capitalized_fee(svc: Svc) -> None:
    product = charged_product(svc, [{"code": "CAP", "name": "Origination", "kind": "disbursement",
                                     "amount": "20.00", "collection": "capitalized"}])
    svc.set_date(D(2024, 1, 1))
    approved = approved_loan(svc.world, principal="1000.00", term=3, product=product)
    loan = disburse(svc.world, approved["id"], date="2024-01-01")
    # 1020.00 financed: Dr 1100 1020.00, Cr 1000 1000.00, Cr 4100 20.00
    entry = next(e for e in svc.journal(loan["id"]) if e["entry_type"] == "disbursement")
    lines = {(ln["account_code"], ln["debit"], ln["credit"]) for ln in entry["lines"]}
    assert lines == {("1100", "1020.00", "0.00"), ("1000", "0.00", "1000.00"), ("4100", "0.00", "20.00")}
    current = svc.get(f"{LOANS}/{loan['id']}")
    assert current["balances"]["principal"] == "1020.00" and current["balances"]["fees"] == "0.00"
    # 1020.00 at 1 % over 3 months: 1020 * 0.01 / (1 - 1.01**-3) = 346.8211 -> 346.82
    assert current["installment_amount"] == "346.82"
    assert Decimal(current["apr_percent"]) > Decimal("12.5")
    books_true(svc, loan["id"])


def test_close_of_business_charges_installment_fees_as_periods_begin() -> None:
    """Loans with installment fees close one by one through the write path (like simple-interest loans): the
    fee of a period is posted by the close of the day it begins, and the ledger stays equal to the balances."""
    with fresh_world() as (world, db):
        body = {k: v for k, v in product_body().items()}
        product = make_product(world, **{**body, "charges": [CHARGES[1]]})
        loan = active_loan(world, principal="1200.00", term=12, product=product)
        assert get_loan(world, loan["id"])["balances"]["fees"] == "5.00"  # #1's, at disbursement
        first_due = date.fromisoformat(world.get("manager", f"{LOANS}/{loan['id']}/schedule").json()
                                       ["installments"][0]["due_date"])
        r = world.post("manager", "/api/v1/operations/close-of-business", {"business_date": first_due.isoformat()})
        assert r.status_code == 200, r.text
        after = get_loan(world, loan["id"])
        # #2's period began on #1's due date: 5.00 + 5.00 charged; #1 is unpaid (its fee too)
        assert after["balances"]["fees"] == "10.00"
        with db.session(writer=False) as session:
            assert [str(m) for m in reconcile.mismatches(session)] == []
        tb = world.get("manager", "/api/v1/ledger/trial-balance").json()
        assert tb["total_debit"] == tb["total_credit"]


# --- account numbers, paid_through, search ------------------------------------------------------------------------


def test_account_numbers_paid_through_and_search(svc: Svc) -> None:
    first = svc.loan(pay_on=D(2024, 2, 1))
    second = svc.loan(pay_on=D(2024, 2, 1))
    branch = svc.world.get("manager", f"/api/v1/branches/{first['branch_id']}").json()
    prefix, number = first["account_no"].rsplit("-", 1)
    assert prefix == branch["code"] and len(number) == 6 and number.isdigit()
    assert second["account_no"] == f"{prefix}-{int(number) + 1:06d}"  # the branch's next number
    found = svc.get(LOANS, account_no=first["account_no"])["items"]
    assert [loan["id"] for loan in found] == [first["id"]]
    borrower = svc.world.get("manager", f"/api/v1/borrowers/{first['borrower_id']}").json()
    by_name = svc.get(LOANS, q=borrower["last_name"].upper())["items"]
    assert [loan["id"] for loan in by_name] == [first["id"]]
    assert first["id"] in {loan["id"] for loan in svc.get(LOANS, q=first["account_no"][-6:], limit=500)["items"]}
    # search keeps branch scope: another branch's officer finds nothing
    other = svc.world.get("officer_b", LOANS, params={"account_no": first["account_no"]}).json()["items"]
    assert other == []
    assert svc.get(LOANS, q="%")["items"] == []  # a wildcard is text, not a pattern
    # paid_through: the due date of the last installment fully paid (with all before it)
    assert svc.get(f"{LOANS}/{first['id']}")["paid_through"] is None
    svc.pay(first["id"], "340.02")
    assert svc.get(f"{LOANS}/{first['id']}")["paid_through"] == "2024-02-01"
    assert svc.get(f"{LOANS}/{first['id']}", as_of="2024-01-15")["paid_through"] is None
