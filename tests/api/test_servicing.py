"""Servicing over HTTP on both legs: payments (shape, idempotency, validation, backdating with correcting
journal entries), reversal, payoff, overpayment and refund, write-off and recovery, `as_of`, dry runs, and a
hypothesis state machine that pays, backdates, reverses, pays off and writes off while the books stay true.

These tests move the business date, so they run against a database of their own (module fixture `svc`):
the business date is set directly in the `business_calendar` row (what close of business would do, without
posting accruals), never in the session-wide database other tests share.

The loan used throughout is the golden LOAN3 of tests/unit/test_servicing.py: 1,000.00 at 12 %, 3 monthly
installments of 340.02 (last 340.03), 30/360, disbursed 2024-01-01, late fee 15.00 after 5 grace days.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import inspect, select, text

from app.business_calendar import repository as calendar_repo
from app.database import Database, init_db
from app.domain.postings import by_account, role_balances
from app.identity import service as identity
from app.identity.access import Role
from app.ledger import service as ledger_service
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.loans import reconcile
from app.loans.models import Loan
from app.loans.service import project_loan
from app.main import create_app
from tests.api.helpers_lending import LOANS, approved_loan, disburse, get_loan, make_product, pay
from tests.conftest import (
    LEG,
    PASSWORD,
    World,
    assert_problem,
    create_pg_database,
    drop_pg_database,
    login,
    make_settings,
    pg_url,
    require_postgres,
    unique,
)

D = date
START = D(2024, 1, 1)
PRODUCT_FIELDS = ("name", "currency", "min_principal", "max_principal", "min_term", "max_term", "annual_rate_percent",
                  "min_rate_percent", "max_rate_percent", "frequency", "amortization", "interest_method",
                  "day_count", "late_fee", "allocation_order", "interest_recalculation")
ZERO = {"principal": "0.00", "interest": "0.00", "fees": "0.00", "penalties": "0.00", "total": "0.00"}


@dataclass
class Svc:
    world: World
    db: Database
    product: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def product_with(self, prepayment: str, simple_interest: bool = False) -> dict[str, Any]:
        """The module's product with another prepayment option, or as a simple-interest (daily recalculation,
        actual/365) product (created once per variant)."""
        if prepayment == self.product["prepayment"] and not simple_interest:
            return self.product
        variant = f"{prepayment}:{simple_interest}"
        if variant not in self.variants:
            body = {k: v for k, v in self.product.items() if k in PRODUCT_FIELDS}
            extra = {"day_count": "actual/365", "interest_recalculation": "daily"} if simple_interest else {}
            self.variants[variant] = make_product(self.world, **{**body, "code": unique("SV-"),
                                                                  "prepayment": prepayment, **extra})
        return self.variants[variant]

    def set_date(self, day: date) -> None:
        with self.db.transaction() as session:
            calendar_repo.set_business_date(session, day)

    def loan(
        self,
        principal: str = "1000.00",
        term: int = 3,
        pay_on: date | None = None,
        product: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """LOAN3 approved and disbursed on 2024-01-01, the disbursement posted on the business date `pay_on`
        (default START) so the books already hold the accrual up to that date."""
        self.set_date(START)
        approved = approved_loan(self.world, principal=principal, term=term, product=product or self.product)
        self.set_date(pay_on or START)
        loan = disburse(self.world, approved["id"], date=START.isoformat())
        assert loan["disbursement_date"] == START.isoformat()
        assert loan["installment_amount"] == "340.02" or term != 3
        return loan

    def pay(self, loan_id: str, amount: str, on: date | None = None, **kw: Any) -> dict[str, Any]:
        body = {"date": on.isoformat()} if on else {}
        r = pay(self.world, loan_id, amount, **body, **kw)
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    def get(self, path: str, who: str = "manager", **params: Any) -> Any:
        r = self.world.get(who, path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def transactions(self, loan_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"{LOANS}/{loan_id}/transactions", limit=500)["items"]
        return items

    def journal(self, loan_id: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.get(f"{LOANS}/{loan_id}/journal-entries")["items"]
        return entries

    def ledger_balances(self, loan_id: str) -> dict[str, int]:
        """Per account code: debit − credit over the loan's journal lines, in minor units."""
        out: dict[str, int] = {}
        for entry in self.journal(loan_id):
            for ln in entry["lines"]:
                delta = int(Decimal(ln["debit"]) * 100) - int(Decimal(ln["credit"]) * 100)
                out[ln["account_code"]] = out.get(ln["account_code"], 0) + delta
        return {code: v for code, v in out.items() if v}

    def trial_balance_is_zero(self) -> None:
        tb = self.get("/api/v1/ledger/trial-balance", who="auditor")
        assert tb["total_debit"] == tb["total_credit"], tb

    def row_counts(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}


def _svc_world(client: TestClient, db: Database) -> World:
    """The same cast as conftest's `world`, in this module's own database."""
    w = World(client)
    admin = unique("admin")
    identity.ensure_user(db, admin, PASSWORD, Role.admin)
    w.tokens["admin"] = login(client, admin)
    for code in ("A", "B"):
        r = client.post("/api/v1/branches", json={"code": unique(f"SV{code}"), "name": code}, headers=w.h("admin"))
        assert r.status_code == 201, r.text
        w.branches[code] = r.json()["id"]
    for name, role, branch in (("manager", "manager", "A"), ("officer_a", "officer", "A"),
                               ("officer_b", "officer", "B"), ("auditor", "auditor", "A")):
        username = unique(name.replace("_", ""))
        r = client.post("/api/v1/users", json={"username": username, "password": PASSWORD, "role": role,
                                               "branch_id": w.branches[branch]}, headers=w.h("admin"))
        assert r.status_code == 201, r.text
        w.users[name] = r.json()["id"]
        w.tokens[name] = login(client, username)
    return w


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Svc]:
    name = None
    if LEG == "postgresql":
        require_postgres()
        name = create_pg_database("loans_svc")
        url = pg_url(name)
    else:
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('svc')) / 'svc.db'}"
    try:
        init_db(url)
        db = Database(url)
        with TestClient(create_app(make_settings(url))) as client:
            world = _svc_world(client, db)
            product = make_product(world, late_fee={"amount": "15", "grace_days": 5})
            yield Svc(world, db, product)
        db.dispose()
    finally:
        if name is not None:
            drop_pg_database(name)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


# --- payments: shape, idempotency, validation ---------------------------------------------------------------


def test_a_payment_answers_201_with_the_transaction_and_its_allocation(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    r = pay(svc.world, loan["id"], "340.02", who="officer_a")
    assert r.status_code == 201, r.text
    body = r.json()
    assert "Idempotent-Replayed" not in r.headers
    assert {"transaction_id", "loan_id", "date", "amount", "allocation", "loan_status"} <= set(body)
    assert (body["loan_id"], body["date"], body["amount"], body["loan_status"]) == (
        loan["id"], "2024-02-01", "340.02", "active",
    )
    # installment #1 exactly: interest 10.00, principal 330.02 (penalties -> fees -> interest -> principal)
    assert {k: body["allocation"][k] for k in ("principal", "interest", "fees", "penalties", "overpayment")} == {
        "principal": "330.02", "interest": "10.00", "fees": "0.00", "penalties": "0.00", "overpayment": "0.00",
    }
    [tx] = [t for t in svc.transactions(loan["id"]) if t["type"] == "repayment"]
    assert tx["id"] == body["transaction_id"] and tx["amount"] == "340.02" and tx["reversed"] is False
    assert tx["allocation"]["principal"] == "330.02" and tx["reversal_of"] is None
    current = get_loan(svc.world, loan["id"])
    assert current["balances"]["principal"] == "669.98" and current["days_past_due"] == 0
    assert current["next_due"] == {"date": "2024-03-01", "amount": "340.02"}


def test_the_idempotency_key_is_required(svc: Svc) -> None:
    loan = svc.loan()
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "10.00"})
    assert_problem(r, 422, "Idempotency-Key")
    assert svc.transactions(loan["id"])[-1]["type"] == "disbursement"


def test_a_replay_returns_the_first_answer_and_posts_nothing(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 1, 20))
    headers = key()
    first = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "50.00"}, headers=headers)
    assert first.status_code == 201, first.text
    entries = len(svc.journal(loan["id"]))
    again = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "50.00"}, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len([t for t in svc.transactions(loan["id"]) if t["type"] == "repayment"]) == 1
    assert len(svc.journal(loan["id"])) == entries
    other = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "50.01"}, headers=headers)
    assert_problem(other, 422, "Idempotency-Key")
    assert len([t for t in svc.transactions(loan["id"]) if t["type"] == "repayment"]) == 1


def test_payment_dates_must_lie_between_disbursement_and_the_business_date(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    for on in ("2024-02-02", "2023-12-31"):
        assert_problem(pay(svc.world, loan["id"], "10.00", date=on), 422, "date")
    assert svc.pay(loan["id"], "10.00", D(2024, 1, 1))["date"] == "2024-01-01"  # the disbursement day itself


@pytest.mark.parametrize("amount", [0, "0", "0.00", "-1.00", -5, 1.5, "1.234", "abc", "1e5", "NaN", "Infinity", ""])
def test_bad_amounts_are_422(svc: Svc, amount: Any) -> None:
    loan = svc.loan()
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": amount}, headers=key())
    assert_problem(r, 422, "amount")


# --- backdating, reversal, as_of -------------------------------------------------------------------------------


def _lines(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((ln["account_code"], ln["debit"], ln["credit"]) for ln in entry["lines"])


def test_a_backdated_payment_reallocates_later_ones_and_posts_a_correcting_entry(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 20))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    late = svc.pay(loan["id"], "340.02", D(2024, 3, 20))
    # 03-07 fee 15.00 on #2; 03-20: fee 15.00, interest 6.70, principal 318.32
    assert (late["allocation"]["penalties"], late["allocation"]["principal"]) == ("15.00", "318.32")
    journal_before = svc.journal(loan["id"])

    backdated = svc.pay(loan["id"], "340.02", D(2024, 3, 5))
    # 03-05 pays #2 before its fee trigger; 03-20 then pays #3's accrued 3.37 * 19 / 30 = 2.13 and its
    # principal 336.66, closing the loan with 1.23 over (golden scenario in tests/unit/test_servicing.py)
    assert backdated["allocation"]["principal"] == "333.32" and backdated["allocation"]["interest"] == "6.70"
    assert backdated["loan_status"] == "overpaid"
    moved = next(t for t in svc.transactions(loan["id"]) if t["id"] == late["transaction_id"])
    assert {k: moved["allocation"][k] for k in ("principal", "interest", "penalties", "overpayment")} == {
        "principal": "336.66", "interest": "2.13", "penalties": "0.00", "overpayment": "1.23",
    }
    journal_after = svc.journal(loan["id"])
    # history is never edited: the earlier entries are all still there, line for line
    assert journal_after[: len(journal_before)] == journal_before
    [correction] = journal_after[len(journal_before):]
    assert correction["transaction_id"] == backdated["transaction_id"]
    assert correction["effective_date"] == "2024-03-05"
    # target before: cash -319.96, portfolio 351.66, interest receivable 2.13, fee income -15.00;
    # after: cash +20.06, overpayment -1.23 -> Dr cash 340.02, Dr penalty income 15.00 (the fee is reversed),
    # Cr portfolio 351.66, Cr interest receivable 2.13, Cr overpayment liability 1.23
    assert _lines(correction) == [
        ("1000", "340.02", "0.00"),
        ("1100", "0.00", "351.66"),
        ("1200", "0.00", "2.13"),
        ("2100", "0.00", "1.23"),
        ("4200", "15.00", "0.00"),
    ]
    current = get_loan(svc.world, loan["id"])
    assert current["status"] == "overpaid" and current["balances"]["credit"] == "1.23"
    svc.trial_balance_is_zero()


def test_as_of_before_and_after_a_backdated_payment(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 20))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    svc.pay(loan["id"], "340.02", D(2024, 3, 20))
    url = f"{LOANS}/{loan['id']}"
    before = svc.get(url, as_of="2024-03-10")
    # 03-10: #2 unpaid since 03-01 (DPD 9), fee 15.00 from 03-07, interest 6.70 + 3.37 * 9 / 30 = 1.01
    assert (before["as_of"], before["days_past_due"], before["status"]) == ("2024-03-10", 9, "active")
    assert before["balances"] == {"principal": "669.98", "interest": "7.71", "fees": "0.00", "penalties": "15.00",
                                  "interest_in_advance": "0.00", "total": "692.69", "credit": "0.00"}
    svc.pay(loan["id"], "340.02", D(2024, 3, 5))
    after = svc.get(url, as_of="2024-03-10")
    assert after["days_past_due"] == 0
    assert after["balances"] == {"principal": "336.66", "interest": "1.01", "fees": "0.00", "penalties": "0.00",
                                 "interest_in_advance": "0.00", "total": "337.67", "credit": "0.00"}
    assert svc.get(url, as_of="2024-01-16")["balances"]["interest"] == "5.00"


def test_reversing_a_middle_payment_recomputes_and_a_second_reversal_is_409(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 4, 1))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    middle = svc.pay(loan["id"], "340.02", D(2024, 3, 1))
    last = svc.pay(loan["id"], "340.03", D(2024, 4, 1))
    assert last["loan_status"] == "closed"
    url = f"{LOANS}/{loan['id']}/transactions/{middle['transaction_id']}/reverse"
    assert_problem(svc.world.post("officer_a", url, {"reason": "bounced"}), 403)
    r = svc.world.post("manager", url, {"reason": "cheque bounced"})
    assert r.status_code == 200, r.text
    reopened = r.json()
    # without 03-01: fee 15.00 on #2, 04-01 pays fee, interest 6.70 and 318.33 of principal (unit golden)
    assert reopened["status"] == "active" and reopened["days_past_due"] == 31
    assert reopened["balances"]["principal"] == "351.65" and reopened["balances"]["interest"] == "3.37"
    txs = svc.transactions(loan["id"])
    [reversal] = [t for t in txs if t["type"] == "reversal"]
    assert reversal["reversal_of"] == middle["transaction_id"] and reversal["amount"] == "340.02"
    assert next(t for t in txs if t["id"] == middle["transaction_id"])["reversed"] is True
    assert next(t for t in txs if t["id"] == last["transaction_id"])["allocation"]["penalties"] == "15.00"
    assert_problem(svc.world.post("manager", url, {"reason": "again"}), 409)
    assert len([t for t in svc.transactions(loan["id"]) if t["type"] == "reversal"]) == 1
    svc.trial_balance_is_zero()


# --- payoff, overpayment, refund, write-off ---------------------------------------------------------------------


def test_paying_the_payoff_quote_closes_the_loan(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 16))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    quote = svc.get(f"{LOANS}/{loan['id']}/payoff")
    # principal 669.98 + #2 accrued 6.70 * 15 / 30 = 3.35; per diem 669.98 * 12 % / 360 = 0.22
    assert {k: quote[k] for k in ("date", "principal", "interest", "fees", "penalties", "total", "per_diem")} == {
        "date": "2024-02-16", "principal": "669.98", "interest": "3.35", "fees": "0.00", "penalties": "0.00",
        "total": "673.33", "per_diem": "0.22",
    }
    paid = svc.pay(loan["id"], quote["total"])
    assert paid["loan_status"] == "closed" and paid["allocation"]["overpayment"] == "0.00"
    closed = get_loan(svc.world, loan["id"])
    assert closed["status"] == "closed" and closed["closed_on"] == "2024-02-16"
    assert {k: closed["balances"][k] for k in ZERO} == ZERO and closed["balances"]["credit"] == "0.00"
    assert svc.ledger_balances(loan["id"]) == {"1000": 1335, "4000": -1335}


def test_paying_more_leaves_a_credit_and_a_refund_closes_the_loan(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 1, 16))
    paid = svc.pay(loan["id"], "1200.00")
    # payoff 1000.00 + 5.00 accrued; 195.00 over
    assert paid["loan_status"] == "overpaid" and paid["allocation"]["overpayment"] == "195.00"
    overpaid = get_loan(svc.world, loan["id"])
    assert overpaid["status"] == "overpaid" and overpaid["balances"]["credit"] == "195.00"
    assert svc.ledger_balances(loan["id"]) == {"1000": 20000, "2100": -19500, "4000": -500}
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/refund", {"reason": "return the excess"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["balances"]["credit"] == "0.00"
    assert [t["amount"] for t in svc.transactions(loan["id"]) if t["type"] == "refund"] == ["195.00"]
    assert svc.ledger_balances(loan["id"]) == {"1000": 500, "4000": -500}
    svc.trial_balance_is_zero()


def test_write_off_by_a_manager_then_a_recovery(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 16))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    url = f"{LOANS}/{loan['id']}/write-off"
    assert_problem(svc.world.post("officer_a", url, {"reason": "uncollectable"}), 403)
    r = svc.world.post("manager", url, {"reason": "uncollectable"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "written_off" and r.json()["written_off_on"] == "2024-03-16"
    # written off: principal 669.98 + interest 8.39 + fee 15.00 = 693.37 (unit golden)
    assert [t["amount"] for t in svc.transactions(loan["id"]) if t["type"] == "write_off"] == ["693.37"]
    svc.set_date(D(2024, 3, 20))
    recovery = svc.pay(loan["id"], "50.00")
    assert recovery["loan_status"] == "written_off"
    [tx] = [t for t in svc.transactions(loan["id"]) if t["id"] == recovery["transaction_id"]]
    assert tx["type"] == "recovery" and tx["allocation"]["recovery"] == "50.00"
    [entry] = [e for e in svc.journal(loan["id"]) if e["transaction_id"] == recovery["transaction_id"]]
    assert _lines(entry) == [("1000", "50.00", "0.00"), ("4300", "0.00", "50.00")]
    assert get_loan(svc.world, loan["id"])["status"] == "written_off"
    assert svc.ledger_balances(loan["id"]) == {
        "1000": 34002 + 5000 - 100000, "4000": -1839, "4200": -1500, "4300": -5000, "5000": 69337,
    }
    svc.trial_balance_is_zero()


def test_a_backdated_payment_on_a_written_off_loan_is_still_a_recovery(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 16))
    svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/write-off", {"reason": "uncollectable"})
    assert r.status_code == 200, r.text
    svc.set_date(D(2024, 3, 20))
    paid = svc.pay(loan["id"], "50.00", D(2024, 3, 10))
    [tx] = [t for t in svc.transactions(loan["id"]) if t["id"] == paid["transaction_id"]]
    assert paid["loan_status"] == "written_off"
    assert tx["type"] == "recovery" and tx["allocation"]["recovery"] == "50.00"
    assert svc.ledger_balances(loan["id"])["4300"] == -5000


def test_paying_the_payoff_quote_on_a_late_fee_trigger_day_closes_the_loan(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 7))  # #1 due 02-01 unpaid; DPD 6 > 5 grace days today
    quote = svc.get(f"{LOANS}/{loan['id']}/payoff")
    # the end of today carries the 15.00 fee, but a payment today settles first: the quote leaves it out,
    # principal 1000.00 + interest 10.00 + 6.70 * 6 / 30 = 1.34
    assert svc.get(f"{LOANS}/{loan['id']}")["balances"]["penalties"] == "15.00"
    assert quote["total"] == "1011.34" and quote["penalties"] == "0.00"
    paid = svc.pay(loan["id"], quote["total"])
    assert paid["loan_status"] == "closed" and paid["allocation"]["overpayment"] == "0.00"
    assert get_loan(svc.world, loan["id"])["balances"]["penalties"] == "0.00"


# --- dry run ------------------------------------------------------------------------------------------------


def test_a_dry_run_payment_writes_nothing_and_leaves_the_key_unused(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 2, 1))
    headers = key()
    counts = svc.row_counts()
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "340.02"}, headers=headers,
                       params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["dry_run"] is True and preview["allocation"]["principal"] == "330.02"
    assert preview["journal_entries"] and preview["loan"]["balances"]["principal"] == "669.98"
    assert svc.row_counts() == counts
    assert get_loan(svc.world, loan["id"])["balances"]["principal"] == "1000.00"
    real = svc.world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "340.02"}, headers=headers)
    assert real.status_code == 201, real.text
    assert "Idempotent-Replayed" not in real.headers


# --- the state machine -------------------------------------------------------------------------------------

MACHINE_TODAY = D(2024, 5, 15)
PREPAYMENT_MODES = ("reduce_term", "reduce_installment", "pay_ahead")  # not a late-fee trigger day of the 6-month loan (those are the 7th)


class ServicingMachine(RuleBasedStateMachine):
    """One 6-month loan per run; after every step the books, the allocations and the snapshot must agree."""

    svc: Svc

    def __init__(self) -> None:
        super().__init__()
        self.loan_id = ""

    @initialize(prepayment=st.sampled_from(PREPAYMENT_MODES), simple_interest=st.booleans())
    def open_loan(self, prepayment: str, simple_interest: bool) -> None:
        product = self.svc.product_with(prepayment, simple_interest)
        self.simple_interest = simple_interest
        self.loan_id = self.svc.loan(term=6, pay_on=MACHINE_TODAY, product=product)["id"]

    @rule(body=st.sampled_from([
        {"type": "re_age"},
        {"type": "rate_change", "annual_rate_percent": "6.5"},
        {"type": "reschedule", "new_term": 9},
        {"type": "reschedule", "new_installment_amount": "150.00"},
        {"type": "payment_holiday", "installments": 2, "interest": "capitalize"},
        {"type": "payment_holiday", "installments": 1, "interest": "spread"},
    ]), days_back=st.integers(0, (MACHINE_TODAY - START).days))
    def modify(self, body: dict[str, Any], days_back: int) -> None:
        """An officer requests a modification (possibly backdated) and a manager approves it (issue 13)."""
        on = D.fromordinal(MACHINE_TODAY.toordinal() - days_back)
        url = f"{LOANS}/{self.loan_id}/modifications"
        r = self.svc.world.post("officer_a", url, {**body, "effective_date": on.isoformat()})
        if self.simple_interest or self.status() != "active":
            assert r.status_code in {409, 422}, r.text
            return
        if r.status_code == 422 and r.json()["errors"][0]["field"] == "new_term":  # installments up to 9 already due
            return
        assert r.status_code == 201, r.text
        approved = self.svc.world.post("manager", f"{url}/{r.json()['id']}/approve", {})
        assert approved.status_code == 200, approved.text

    def status(self) -> str:
        status: str = get_loan(self.svc.world, self.loan_id)["status"]
        return status

    @rule(cents=st.integers(1, 60_000), days_back=st.integers(0, (MACHINE_TODAY - START).days))
    def pay(self, cents: int, days_back: int) -> None:
        on = D.fromordinal(MACHINE_TODAY.toordinal() - days_back)
        r = pay(self.svc.world, self.loan_id, str(Decimal(cents).scaleb(-2)), date=on.isoformat())
        assert r.status_code == 201, r.text

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        live = [t for t in self.svc.transactions(self.loan_id)
                if t["type"] in {"repayment", "recovery"} and not t["reversed"]]
        if not live:
            return
        tx = data.draw(st.sampled_from(live))
        r = self.svc.world.post("manager", f"{LOANS}/{self.loan_id}/transactions/{tx['id']}/reverse",
                                {"reason": "test"})
        assert r.status_code == 200, r.text

    @rule()
    def pay_off(self) -> None:
        if self.status() != "active":
            return
        quote = self.svc.get(f"{LOANS}/{self.loan_id}/payoff")
        paid = self.svc.pay(self.loan_id, quote["total"])
        assert paid["loan_status"] == "closed", (quote, paid)

    @rule()
    def refund(self) -> None:
        """Pay out the credit of an overpaid loan, or of a written-off one whose recovery exceeded the write-off."""
        loan = get_loan(self.svc.world, self.loan_id)
        if Decimal(loan["balances"]["credit"]) == 0:
            return
        r = self.svc.world.post("manager", f"{LOANS}/{self.loan_id}/refund", {"reason": "test"})
        assert r.status_code == 200, r.text
        assert r.json()["balances"]["credit"] == "0.00"

    @rule()
    def write_off(self) -> None:
        if self.status() != "active":
            return
        r = self.svc.world.post("manager", f"{LOANS}/{self.loan_id}/write-off", {"reason": "test"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "written_off"

    @invariant()
    def books_agree_with_the_projection(self) -> None:
        if not self.loan_id:
            return
        self.svc.trial_balance_is_zero()
        shown = get_loan(self.svc.world, self.loan_id)
        with self.svc.db.session(writer=False) as session:
            loan = session.scalars(select(Loan).where(Loan.id == self.loan_id)).one()
            state = project_loan(session, loan, MACHINE_TODAY)
            # per-loan reconciliation (loanctl verify-ledger): its balance-sheet lines equal its stored balances
            posted = ledger_service.loan_balances(session, loan.id)
            codes = reconcile.balance_sheet_codes(loan)
            assert {c: v for c, v in posted.items() if c in codes and v} == reconcile.expected_balances(loan)
        # the loan's journal lines, per account, are exactly the projection's role balances
        target = by_account(role_balances(state.totals), DEFAULT_ACCOUNTS)
        assert self.svc.ledger_balances(self.loan_id) == target
        # a full replay of the event log reproduces the stored snapshot
        cents = {k: int(Decimal(v) * 100) for k, v in shown["balances"].items()}
        assert cents == {
            "principal": state.principal_outstanding,
            "interest": state.interest_outstanding,
            "fees": state.fees_outstanding,
            "penalties": state.penalties_outstanding,
            "interest_in_advance": state.interest_in_advance,
            "total": state.total_outstanding,
            "credit": state.credit,
        }
        assert (shown["status"], shown["days_past_due"]) == (state.status.value, state.days_past_due)
        # every money transaction's allocation sums to its amount
        for tx in self.svc.transactions(self.loan_id):
            if tx["type"] in {"repayment", "recovery"} and not tx["reversed"]:
                parts = sum(Decimal(v) for v in tx["allocation"].values())
                assert parts == Decimal(tx["amount"]), tx


def test_servicing_state_machine(svc: Svc) -> None:
    ServicingMachine.svc = svc
    run_state_machine_as_test(
        ServicingMachine,
        settings=settings(max_examples=20, stateful_step_count=15, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )


def test_simple_interest_over_http_with_its_accrual_segments(svc: Svc) -> None:
    body = {k: v for k, v in svc.product.items() if k in PRODUCT_FIELDS}
    refused = svc.world.post("admin", "/api/v1/products", {**body, "code": unique("SI-"),
                                                            "interest_recalculation": "daily"})
    problem = assert_problem(refused, 422)
    assert {"interest_recalculation", "day_count"} <= {e["field"] for e in problem["errors"]}
    product = make_product(svc.world, **{**body, "code": unique("SI-"), "day_count": "actual/365",
                                         "interest_recalculation": "daily"})
    assert product["interest_recalculation"] == "daily" and product["prepayment"] == "reduce_term"
    loan = svc.loan(pay_on=D(2024, 1, 22), product=product)
    paid = svc.pay(loan["id"], "340.02", D(2024, 1, 22))
    # 21 days on 1000.00: 1000.00 * 12 % * 21 / 365 = 6.9041 -> 6.90 first; principal 340.02 - 6.90 = 333.12
    assert (paid["allocation"]["interest"], paid["allocation"]["principal"]) == ("6.90", "333.12")
    explained = svc.get(f"{LOANS}/{loan['id']}/installments/1/interest")
    # 01-01 -> 01-22 on 1000.00: 6.90 (accrued); 01-22 -> 02-01 on 666.88: 666.88 * 12 % * 10 / 365 = 2.1925
    # -> 2.19 (projected: nothing is known yet after 01-22)
    assert [(s["start"], s["end"], s["days"], s["principal"], s["interest"], s["projected"])
            for s in explained["segments"]] == [
        ("2024-01-01", "2024-01-22", 21, "1000.00", "6.90", False),
        ("2024-01-22", "2024-02-01", 10, "666.88", "2.19", True),
    ]
    schedule = svc.get(f"{LOANS}/{loan['id']}/schedule")["installments"]
    assert schedule[0]["status"] == "paid"
    assert svc.get(f"{LOANS}/{loan['id']}")["balances"]["interest_in_advance"] == "0.00"
    assert_problem(svc.world.get("manager", f"{LOANS}/{loan['id']}/installments/9/interest"), 404)
    svc.trial_balance_is_zero()


def test_a_write_off_item_shows_what_the_projection_writes_off_after_a_reversal(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 3, 16))
    paid = svc.pay(loan["id"], "340.02", D(2024, 2, 1))
    assert svc.world.post("manager", f"{LOANS}/{loan['id']}/write-off", {"reason": "uncollectable"}).status_code == 200
    [wo] = [t for t in svc.transactions(loan["id"]) if t["type"] == "write_off"]
    assert wo["amount"] == "693.37"  # 669.98 + 8.39 + 15.00 (unit golden)
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{paid['transaction_id']}/reverse",
                       {"reason": "cheque bounced"})
    assert r.status_code == 200, r.text
    # without the payment: principal 1000.00 + interest 10.00 + 6.70 + 1.69 = 18.39 + two fees 15.00 = 1048.39
    [wo] = [t for t in svc.transactions(loan["id"]) if t["type"] == "write_off"]
    assert wo["amount"] == "1048.39"
    assert svc.ledger_balances(loan["id"])["5000"] == 104839
    svc.trial_balance_is_zero()


def test_a_repayment_stays_reversible_after_its_overpayment_was_refunded(svc: Svc) -> None:
    loan = svc.loan(pay_on=D(2024, 1, 16))
    paid = svc.pay(loan["id"], "1200.00")  # payoff 1005.00, 195.00 credit
    assert svc.world.post("manager", f"{LOANS}/{loan['id']}/refund", {"reason": "excess"}).status_code == 200
    dry = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{paid['transaction_id']}/reverse",
                         {"reason": "cheque bounced"}, params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    r = svc.world.post("manager", f"{LOANS}/{loan['id']}/transactions/{paid['transaction_id']}/reverse",
                       {"reason": "cheque bounced"})
    assert r.status_code == 200, r.text
    reopened = r.json()
    # the bounced 1200.00 is gone and the 195.00 paid out is owed again with installment 1:
    # principal 1000.00 + 195.00, interest 10.00 * 15 / 30 = 5.00 accrued by 01-16
    assert reopened["status"] == "active"
    assert (reopened["balances"]["principal"], reopened["balances"]["interest"]) == ("1195.00", "5.00")
    assert svc.ledger_balances(loan["id"]) == {"1000": -119500, "1100": 119500, "1200": 500, "4000": -500}
    svc.trial_balance_is_zero()
