# ruff: noqa: F811  (the module database fixture `svc` is imported from test_servicing)
"""Loan modifications with maker-checker over HTTP on both legs (CONTRACT "Modifications"): request with a
preview, dry run, approve/reject rules (self-approval 403, twice 409, another branch's officer 404), the
modification applied through the projection with its correcting journal entry, re-preview on approval, a
payment backdated before an approved modification, and the audit trail.

The loan is LOAN12: 1,200.00 at 12 %, 12 monthly installments, 30/360, disbursed 2024-01-01:
  annuity 1200 * 0.01 / (1 - 1.01**-12) = 106.6186 -> 106.62; #1 interest 12.00, principal 94.62.
"""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.database import Database, init_db
from app.domain.postings import by_account, role_balances
from app.ledger import partitions
from app.ledger import service as ledger
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.loans import reconcile
from app.loans.models import Loan
from app.loans.service import project_loan
from app.main import create_app
from tests.api.helpers_lending import LOANS, approved_loan, disburse, get_loan, make_product
from tests.api.test_servicing import START, Svc, _svc_world, svc  # noqa: F401  (the module database fixture)
from tests.conftest import (
    LEG,
    assert_problem,
    create_pg_database,
    drop_pg_database,
    make_settings,
    pg_url,
    require_postgres,
)

D = date


def _loan12(svc: Svc, today: date) -> dict[str, Any]:
    return svc.loan(principal="1200.00", term=12, pay_on=today)


def _request(svc: Svc, loan_id: str, body: dict[str, Any], who: str = "officer_a", **params: Any) -> Any:
    return svc.world.post(who, f"{LOANS}/{loan_id}/modifications", body, params=params)


def _decide(svc: Svc, loan_id: str, mid: str, action: str, who: str = "manager", body: Any = None) -> Any:
    return svc.world.post(who, f"{LOANS}/{loan_id}/modifications/{mid}/{action}", body or {})


def _posted(svc: Svc, loan_id: str) -> dict[str, int]:
    """Per account: the loan's journal lines (its own entries and its lines in close-of-business entries)."""
    with svc.db.session(writer=False) as session:
        return {code: v for code, v in ledger.loan_balances(session, loan_id).items() if v}


def _books_agree(svc: Svc, loan_id: str, today: date, shown_too: bool = True) -> None:
    svc.trial_balance_is_zero()
    with svc.db.session(writer=False) as session:
        loan = session.scalars(select(Loan).where(Loan.id == loan_id)).one()
        state = project_loan(session, loan, today)
        codes = reconcile.balance_sheet_codes(loan)
        stored = reconcile.expected_balances(loan)
    assert _posted(svc, loan_id) == by_account(role_balances(state.totals), DEFAULT_ACCOUNTS)
    # loanctl verify-ledger's per-loan check: the balance-sheet lines equal the stored balances
    assert {c: v for c, v in _posted(svc, loan_id).items() if c in codes} == stored
    if not shown_too:
        return
    shown = get_loan(svc.world, loan_id)
    assert int(Decimal(shown["balances"]["principal"]) * 100) == state.principal_outstanding
    assert shown["days_past_due"] == state.days_past_due


def test_a_request_is_stored_pending_with_its_preview_and_a_dry_run_stores_nothing(svc: Svc) -> None:
    today = D(2024, 3, 1)
    loan = _loan12(svc, today)
    svc.pay(loan["id"], "106.62", D(2024, 2, 1))
    svc.pay(loan["id"], "106.62", D(2024, 3, 1))
    body = {"type": "reschedule", "new_term": 18}
    dry = _request(svc, loan["id"], body, dry_run="true")
    assert dry.status_code == 200, dry.text
    assert dry.json()["id"] is None
    assert svc.get(f"{LOANS}/{loan['id']}/modifications")["items"] == []
    r = _request(svc, loan["id"], body)
    assert r.status_code == 201, r.text
    mod = r.json()
    assert r.headers["Location"].endswith(mod["id"])
    assert (mod["status"], mod["type"], mod["effective_date"], mod["params"]) == (
        "pending", "reschedule", "2024-03-01", {"new_term": 18})
    assert mod["requested_by"] == svc.world.users["officer_a"]
    # balance after two installments: 1200 - 94.62 - 95.57 = 1009.81, over 16 installments at 1 %:
    # 1009.81 * 0.01 / (1 - 1.01**-16) = 68.6099 -> 68.61; #3 interest 10.10, principal 58.51
    preview = mod["preview"]
    assert preview == dry.json()["preview"]
    assert len(preview["installments"]) == 18
    assert preview["installment_amount"] == "68.61"
    third = preview["installments"][2]
    assert (third["due_date"], third["interest"], third["principal"]) == ("2024-04-01", "10.10", "58.51")
    assert preview["totals"]["principal"] == "1200.00"
    assert preview["maturity_date"] == "2025-07-01"
    assert Decimal(preview["apr_percent"]) - Decimal("12") < Decimal("0.01")
    # nothing applied yet: the loan still has 12 installments
    assert len(svc.get(f"{LOANS}/{loan['id']}/schedule")["installments"]) == 12
    listed = svc.get(f"{LOANS}/{loan['id']}/modifications")
    assert [m["id"] for m in listed["items"]] == [mod["id"]] and listed["next_cursor"] is None


def test_maker_checker_rules(svc: Svc) -> None:
    today = D(2024, 3, 1)
    loan = _loan12(svc, today)
    mod = _request(svc, loan["id"], {"type": "rate_change", "annual_rate_percent": "6"}, who="manager").json()
    # the requester may not approve or reject their own request
    assert_problem(_decide(svc, loan["id"], mod["id"], "approve", who="manager"), 403)
    assert_problem(_decide(svc, loan["id"], mod["id"], "reject", who="manager", body={"reason": "x"}), 403)
    # an officer of another branch does not see the loan at all; an officer of the branch may not approve
    assert_problem(_decide(svc, loan["id"], mod["id"], "approve", who="officer_b"), 404)
    assert_problem(_request(svc, loan["id"], {"type": "re_age"}, who="officer_b"), 404)
    assert_problem(svc.world.get("officer_b", f"{LOANS}/{loan['id']}/modifications"), 404)
    assert_problem(_decide(svc, loan["id"], mod["id"], "approve", who="officer_a"), 403)
    # a second manager approves; approving or rejecting again is a conflict
    svc.world.tokens["manager2"] = svc.world.tokens.get("manager2") or _second_manager(svc)
    r = _decide(svc, loan["id"], mod["id"], "approve", who="manager2")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decided_by_username"] is not None) == ("approved", True)
    assert_problem(_decide(svc, loan["id"], mod["id"], "approve", who="manager2"), 409)
    assert_problem(_decide(svc, loan["id"], mod["id"], "reject", who="manager2", body={"reason": "x"}), 409)
    # the audit trail names the requester and the approver
    trail = svc.get(f"{LOANS}/{loan['id']}/audit")["items"]
    approved = [a for a in trail if a["action"] == "loan.modification_approved"]
    assert len(approved) == 1
    detail = approved[0]["detail"]
    assert detail["requested_by"] != detail["approved_by"]
    # a rejected request changes nothing
    other = _request(svc, loan["id"], {"type": "payment_holiday", "installments": 1}).json()
    r = _decide(svc, loan["id"], other["id"], "reject", body={"reason": "not eligible"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["decision_reason"] == "not eligible"
    # invalid requests
    assert_problem(_request(svc, loan["id"], {"type": "reschedule"}), 422, "new_term")
    assert_problem(_request(svc, loan["id"], {"type": "rate_change"}), 422, "annual_rate_percent")
    assert_problem(_request(svc, loan["id"], {"type": "re_age", "new_term": 3}), 422, "new_term")
    assert_problem(_request(svc, loan["id"], {"type": "re_age", "effective_date": "2024-03-02"}), 422, "effective_date")
    assert_problem(_request(svc, loan["id"], {"type": "payment_holiday", "installments": 1, "interest": "x"}), 422)


def _second_manager(svc: Svc) -> str:
    from app.identity import service as identity
    from app.identity.access import Role
    from tests.conftest import PASSWORD, login, unique

    name = unique("manager2")
    identity.ensure_user(svc.db, name, PASSWORD, Role.manager)
    return login(svc.world.client, name)


def test_a_backdated_rate_change_posts_the_correcting_entry_and_a_later_backdated_payment_recomputes_both(
    svc: Svc,
) -> None:
    today = D(2024, 2, 10)
    loan = _loan12(svc, today)
    svc.world.tokens["manager2"] = svc.world.tokens.get("manager2") or _second_manager(svc)
    before = svc.ledger_balances(loan["id"])
    # 40 days after disbursement, 12 % accrued: #1 fully (12.00) + #2 9/30 of 11.05 = 3.32 (rounded): 15.32
    assert before["1200"] == 1532
    mod = _request(svc, loan["id"], {"type": "rate_change", "annual_rate_percent": "6", "effective_date": "2024-01-01"})
    assert mod.status_code == 201, mod.text
    r = _decide(svc, loan["id"], mod.json()["id"], "approve", who="manager2")
    assert r.status_code == 200, r.text
    # at 6 % from the disbursement: #1 interest 6.00 (1200 * 0.005), annuity 1200 * 0.005 / (1 - 1.005**-12) = 103.28;
    # #2 interest (1200 - 97.28) * 0.005 = 5.51, 9/30 accrued = 1.65 (1.653): receivable 6.00 + 1.65 = 7.65
    after = svc.ledger_balances(loan["id"])
    assert after["1200"] == 765
    assert after["4000"] == -765
    correcting = [e for e in svc.journal(loan["id"]) if e["entry_type"] == "modification"]
    assert len(correcting) == 1 and correcting[0]["effective_date"] == "2024-01-01"
    _books_agree(svc, loan["id"], today)
    # the loan shows the rate now in force (the terms it was booked with stay in its event log)
    assert get_loan(svc.world, loan["id"])["annual_rate_percent"] == "6"
    schedule = svc.get(f"{LOANS}/{loan['id']}/schedule")["installments"]
    # #1 is 9 days overdue on 02-10: the late fee of 15.00 was charged at the end of 02-07 (grace 5 days)
    assert (schedule[0]["interest"], schedule[0]["principal"], schedule[0]["penalties"]) == ("6.00", "97.28", "15.00")
    # #1 paid on its due date at the modified amount (backdated): DPD 0 and the late fee's condition is gone
    svc.pay(loan["id"], "103.28", D(2024, 2, 1))
    shown = get_loan(svc.world, loan["id"])
    assert (shown["days_past_due"], shown["balances"]["penalties"]) == (0, "0.00")
    _books_agree(svc, loan["id"], today)


def test_re_age_of_a_65_dpd_loan_brings_it_current(svc: Svc) -> None:
    # no payment; on 2024-04-05 #1 (due 02-01) is 64 days past due -> use 2024-04-06: 65 DPD
    today = D(2024, 4, 6)
    loan = _loan12(svc, today)
    svc.world.tokens["manager2"] = svc.world.tokens.get("manager2") or _second_manager(svc)
    assert get_loan(svc.world, loan["id"])["days_past_due"] == 65
    mod = _request(svc, loan["id"], {"type": "re_age"}).json()
    # overdue: #1-#3 principal 94.62 + 95.57 + 96.52 = 286.71, interest 12.00 + 11.05 + 10.10 = 33.15;
    # the rebuilt principal is 1200.00 + 33.15 capitalised = 1233.15 over the 9 installments left
    assert mod["preview"]["days_past_due"] == 0
    assert mod["preview"]["balances"]["principal"] == "1233.15"
    r = _decide(svc, loan["id"], mod["id"], "approve")
    assert r.status_code == 200, r.text
    shown = get_loan(svc.world, loan["id"])
    assert (shown["days_past_due"], shown["balances"]["principal"]) == (0, "1233.15")
    # Dr 1100 Cr 1200 by the capitalised interest: the portfolio holds 1233.15
    assert svc.ledger_balances(loan["id"])["1100"] == 123315
    _books_agree(svc, loan["id"], today)


# --- undo ----------------------------------------------------------------------------------------------------


def test_undo_approval_returns_the_application_to_submitted(svc: Svc) -> None:
    from tests.api.helpers_lending import approved_loan

    svc.set_date(START)
    loan = approved_loan(svc.world, principal="1200.00", term=12, product=svc.product)
    assert_problem(svc.world.post("officer_a", f"{LOANS}/{loan['id']}/undo-approval", {}), 403)
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-approval", {})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["version"]) == ("submitted", loan["version"] + 1)
    assert "approve" in r.json()["allowed_actions"]
    problem = assert_problem(svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-approval", {}), 409)
    assert "approve" in problem["allowed_actions"]


def test_undo_disbursal_reverses_the_books_and_only_while_nothing_else_was_posted(svc: Svc) -> None:
    # disbursed 2024-01-01, posted on 2024-01-11: the books hold the disbursement and 10 days of interest
    # (12.00 * 10/30 = 4.00)
    loan = svc.loan(principal="1200.00", term=12, pay_on=D(2024, 1, 11))
    assert svc.ledger_balances(loan["id"]) == {"1000": -120000, "1100": 120000, "1200": 400, "4000": -400}
    dry = svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-disbursal", {}, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    assert get_loan(svc.world, loan["id"])["status"] == "active"
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-disbursal", {})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["disbursement_date"], body["balances"]["principal"]) == ("approved", None, "0.00")
    # every account of the loan is back to zero, by a new entry (the disbursement entry is untouched)
    assert svc.ledger_balances(loan["id"]) == {}
    txs = svc.transactions(loan["id"])
    assert {t["type"] for t in txs} == {"disbursement", "reversal"}
    assert next(t for t in txs if t["type"] == "disbursement")["reversed"] is True
    svc.trial_balance_is_zero()
    # it can be disbursed again, and then a payment makes the undo impossible (409 naming why)
    again = svc.world.post("manager", f"{LOANS}/{loan['id']}/disburse", {"date": "2024-01-11"})
    assert again.status_code == 200, again.text
    svc.pay(loan["id"], "10.00")
    problem = assert_problem(svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-disbursal", {}), 409)
    assert "repayment" in problem["detail"]
    assert "undo_disbursal" not in problem["allowed_actions"]


# --- across close of business ---------------------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Svc]:
    """A database of its own: close of business closes every loan of the database day by day."""
    name = None
    if LEG == "postgresql":
        require_postgres()
        name = create_pg_database("loans_mod_cob")
        url = pg_url(name)
    else:
        url = f"sqlite:///{tmp_path / 'cob.db'}"
    try:
        init_db(url)
        db = Database(url)
        if LEG == "postgresql":
            with db.transaction() as session:
                # PostgreSQL: the 2024 journal partitions exist before anything is posted in 2024 (close of business
                # cannot carve a month's partition out of rows already in the default one)
                partitions.ensure_months(session, START)
        with TestClient(create_app(make_settings(url))) as client:
            world = _svc_world(client, db)
            yield Svc(world, db, make_product(world, late_fee={"amount": "15", "grace_days": 5}))
        db.dispose()
    finally:
        if name is not None:
            drop_pg_database(name)


def _close_through(svc: Svc, day: date) -> None:
    r = svc.world.post("manager", "/api/v1/operations/close-of-business", {"business_date": day.isoformat()})
    assert r.status_code == 200, r.text


def test_a_rate_change_backdated_across_40_days_of_close_of_business(fresh: Svc) -> None:
    svc = fresh
    svc.set_date(START)
    loan = disburse(svc.world, approved_loan(svc.world, principal="1200.00", term=12, product=svc.product)["id"])
    _close_through(svc, D(2024, 2, 9))  # 40 days closed: 01-01 .. 02-09, the business date is now 02-10
    # accrued by close of business at 12 % through the end of 02-09: #1 12.00 + #2 8/30 of 11.05 (2.947 -> 2.95)
    # = 14.95; #1 unpaid 6 days after its due date: late fee 15.00 charged at the end of 02-07
    books = _posted(svc, loan["id"])
    assert (books["1200"], books["4000"], books["1220"], books["4200"]) == (1495, -1495, 1500, -1500)
    entries_before = len(svc.journal(loan["id"]))
    mod = _request(svc, loan["id"], {"type": "rate_change", "annual_rate_percent": "6", "effective_date": "2024-01-01"})
    assert mod.status_code == 201, mod.text
    svc.world.tokens["manager2"] = _second_manager(svc)
    r = _decide(svc, loan["id"], mod.json()["id"], "approve", who="manager2")
    assert r.status_code == 200, r.text
    # at 6 % from the start, projected to the business date 02-10 like every write: #1 6.00 + #2 9/30 of 5.51
    # (1.653 -> 1.65) = 7.65. The closed days' entries stay as they were; one correcting entry takes 14.95 - 7.65
    # = 7.30 back: Dr 4000 Interest income 7.30, Cr 1200 Interest receivable 7.30
    journal = svc.journal(loan["id"])
    assert len(journal) == entries_before + 1
    correcting = journal[-1] if journal[-1]["entry_type"] == "modification" else next(
        e for e in journal if e["entry_type"] == "modification")
    lines = {ln["account_code"]: (ln["debit"], ln["credit"]) for ln in correcting["lines"]}
    assert lines == {"4000": ("7.30", "0.00"), "1200": ("0.00", "7.30")}
    books = _posted(svc, loan["id"])
    assert (books["1200"], books["4000"]) == (765, -765)
    _books_agree(svc, loan["id"], D(2024, 2, 10))
    # close of business goes on from the modified schedule: closing 02-10 adds nothing (the approval already
    # accrued through 02-10), closing 02-11 adds #2's 10/30 of 5.51 (1.837 -> 1.84) - 1.65 = 0.19: 7.84
    _close_through(svc, D(2024, 2, 10))
    assert _posted(svc, loan["id"])["1200"] == 765
    _close_through(svc, D(2024, 2, 11))
    assert _posted(svc, loan["id"])["1200"] == 784
    _books_agree(svc, loan["id"], D(2024, 2, 11), shown_too=False)  # the books hold the days closed, through 02-11


# --- tranches -----------------------------------------------------------------------------------------------


def test_two_tranches_up_to_the_approved_principal(svc: Svc) -> None:
    product = make_product(svc.world, multi_disbursement=True, late_fee={"amount": "15", "grace_days": 5})
    assert product["multi_disbursement"] is True
    svc.set_date(START)
    loan = approved_loan(svc.world, principal="1200.00", term=12, product=product)
    first = disburse(svc.world, loan["id"], amount="600.00")
    assert (first["principal"], first["installment_amount"]) == ("600.00", "53.31")
    svc.set_date(D(2024, 2, 15))
    svc.pay(loan["id"], "53.31", D(2024, 2, 1))
    # more than the 600.00 left of the approved 1200.00 -> 422
    assert_problem(svc.world.post("officer_a", f"{LOANS}/{loan['id']}/disburse", {"amount": "600.01"}), 422, "amount")
    r = svc.world.post("officer_a", f"{LOANS}/{loan['id']}/disburse", {"amount": "600.00"})
    assert r.status_code == 200, r.text
    # 552.69 + 600.00 = 1152.69 re-amortised over #2-#12: 1152.69 * 0.01 / (1 - 1.01**-11) = 111.18
    body = r.json()
    assert (body["status"], body["principal"], body["balances"]["principal"], body["installment_amount"]) == (
        "active", "1200.00", "1152.69", "111.18")
    disbursements = [t for t in svc.transactions(loan["id"]) if t["type"] == "disbursement"]
    assert sorted(t["amount"] for t in disbursements) == ["600.00", "600.00"]
    # nothing is left to disburse; the disbursal can no longer be undone
    assert_problem(svc.world.post("officer_a", f"{LOANS}/{loan['id']}/disburse", {}), 422, "amount")
    assert_problem(svc.world.post("manager", f"{LOANS}/{loan['id']}/undo-disbursal", {}), 409)
    _books_agree(svc, loan["id"], D(2024, 2, 15))


def test_a_single_disbursement_product_refuses_a_second_disbursal(svc: Svc) -> None:
    loan = svc.loan(principal="1200.00", term=12)
    problem = assert_problem(svc.world.post("officer_a", f"{LOANS}/{loan['id']}/disburse", {}), 409)
    assert "disburse" not in problem["allowed_actions"]


# --- frequencies ----------------------------------------------------------------------------------------------


def test_an_every_15_days_loan(svc: Svc) -> None:
    preview = svc.world.post("officer_a", "/api/v1/schedules/preview", {
        "principal": "1000.00", "annual_rate_percent": "12", "term": 6, "frequency": "daily",
        "frequency_interval": 15, "disbursement_date": "2024-01-01", "day_count": "actual/365"})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    # i = 0.12 * 15/365 = 0.0049315; annuity 1000 i / (1 - (1 + i)**-6) = 169.556 -> 169.56;
    # #1 interest 1000 * 0.12 * 15/365 = 4.93; due every 15 days from the disbursement, never chained
    assert body["installment_amount"] == "169.56"
    assert [r["due_date"] for r in body["installments"]] == [
        "2024-01-16", "2024-01-31", "2024-02-15", "2024-03-01", "2024-03-16", "2024-03-31"]
    assert body["installments"][0]["interest"] == "4.93"
    # APR: unit period 15 days, 365/15 of them a year (Reg Z App. J (b)(5)(iv)): within 0.01 of the nominal rate
    assert abs(Decimal(body["apr_percent"]) - 12) < Decimal("0.01")
    assert_problem(svc.world.post("officer_a", "/api/v1/schedules/preview", {
        "principal": "1000.00", "annual_rate_percent": "12", "term": 6, "frequency": "monthly",
        "frequency_interval": 13, "disbursement_date": "2024-01-01"}), 422, "frequency_interval")
    # a product and a loan every 15 days: the loan's schedule follows the same anchor
    product = make_product(svc.world, frequency="daily", frequency_interval=15, day_count="actual/365",
                           min_term=3, max_term=24)
    assert (product["frequency"], product["frequency_interval"]) == ("daily", 15)
    svc.set_date(START)
    loan = disburse(svc.world, approved_loan(svc.world, principal="1000.00", term=6, product=product)["id"])
    assert (loan["frequency"], loan["frequency_interval"], loan["installment_amount"]) == ("daily", 15, "169.56")
    schedule = svc.get(f"{LOANS}/{loan['id']}/schedule")["installments"]
    assert [r["due_date"] for r in schedule] == [r["due_date"] for r in body["installments"]]
    # a one-period holiday moves the open installments 15 days later
    svc.set_date(D(2024, 1, 20))
    mod = _request(svc, loan["id"], {"type": "payment_holiday", "installments": 1, "interest": "waive",
                                     "effective_date": "2024-01-10"}).json()
    assert [r["due_date"] for r in mod["preview"]["installments"]][:2] == ["2024-01-31", "2024-02-15"]
    assert_problem(svc.world.post("admin", "/api/v1/products", {
        **{k: v for k, v in product.items() if k in {"name", "currency", "min_principal", "max_principal",
                                                     "min_term", "max_term", "annual_rate_percent", "amortization",
                                                     "interest_method", "day_count"}},
        "code": "BAD-INTERVAL", "frequency": "monthly", "frequency_interval": 13}), 422, "frequency_interval")
