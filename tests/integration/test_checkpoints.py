"""Stored projection states (issue 15: a backdated payment on a loan with a long history costs the events since
the latest state before its date, not the whole log): the result always equals a full replay, and a state an
event or a reversal reaches back before is never used."""

from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select, text

from app.domain.postings import by_account, role_balances
from app.domain.servicing import project
from app.ledger import repository as ledger_repo
from app.loans import engine
from app.loans import service as loan_service
from app.loans.models import Loan, LoanInstallment
from app.loans.service import loan_as_of, project_loan
from tests.api.helpers_lending import active_loan, make_product, pay
from tests.conftest import World, fresh_world

COB = "/api/v1/operations/close-of-business"


def _today(w: World) -> date:
    return date.fromisoformat(w.get("manager", "/api/v1/operations/business-date").json()["business_date"])


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])  # SQLite: text


def _assert_equals_full_replay(db: Any, loan_id: str) -> None:
    with db.session(writer=False) as s:
        loan = s.get(Loan, loan_id)
        assert loan is not None and loan.snapshot_date is not None
        state = project_loan(s, loan, loan.snapshot_date)  # the whole event log, from the start
        assert (loan.principal_outstanding, loan.interest_outstanding, loan.interest_prepaid,
                loan.penalties_outstanding, loan.days_past_due, loan.status) == (
            state.principal_outstanding, state.interest_outstanding, state.interest_in_advance,
            state.penalties_outstanding, state.days_past_due, state.status.value)
        rows = s.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                         .order_by(LoanInstallment.number)).all()
        assert [(r.due_date, r.principal, r.interest, r.penalties, r.paid_principal, r.paid_interest)
                for r in rows] == [(r.due_date, r.principal, r.interest, r.penalties, r.paid_principal,
                                    r.paid_interest) for r in state.installments]
        target = by_account(role_balances(state.totals), engine.accounts_of(loan))
        assert ledger_repo.loan_balances(s, loan_id) == target == ledger_repo.posted_loan_balances(s, loan_id)


def test_a_backdated_payment_resumes_from_a_stored_state_and_equals_a_full_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with fresh_world() as (w, db):
        product = make_product(w, frequency="weekly", max_term=104, day_count="actual/365",
                               late_fee={"amount": "5.00", "grace_days": 2})
        loan = active_loan(w, principal="5000.00", term=104, product=product)
        start = _today(w)
        for n in range(90):  # payments every third day, some short of the installment: fees and arrears too
            if n % 3 == 0:
                assert pay(w, loan["id"], "20.00" if n % 9 else "35.00").status_code == 201
            assert w.post("manager", COB, {}).status_code == 200
        with db.session(writer=False) as s:
            stored = [_day(d) for d in s.execute(text(
                "SELECT as_of FROM loan_checkpoints WHERE loan_id = :l ORDER BY as_of"), {"l": loan["id"]}).scalars()]
        assert 3 <= len(stored) <= engine.CHECKPOINTS_KEPT
        assert all((later - earlier) >= engine.CHECKPOINT_SPACING
                   for earlier, later in pairwise(stored))

        def no_full_replay(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a backdated payment after a stored state replayed the whole log")

        # Reads of a past date resume from a stored state too, and equal the full replay.
        with db.session(writer=False) as s:
            found = s.get(Loan, loan["id"])
            assert found is not None
            for day in (start + timedelta(days=n) for n in range(0, 95, 4)):
                resumed, replayed = loan_as_of(s, found, day), project_loan(s, found, day)
                assert (resumed.totals, resumed.installments, resumed.days_past_due, resumed.status) == (
                    replayed.totals, replayed.installments, replayed.days_past_due, replayed.status), day
        monkeypatch.setattr(engine, "project", no_full_replay)
        monkeypatch.setattr(loan_service, "project", no_full_replay)
        with db.session(writer=False) as s:
            found = s.get(Loan, loan["id"])
            assert found is not None
            loan_as_of(s, found, stored[-1] + timedelta(days=1))  # after a stored state: no full replay
        monkeypatch.setattr(loan_service, "project", project)
        back = _today(w) - timedelta(days=20)
        r = pay(w, loan["id"], "50.00", date=back.isoformat())
        assert r.status_code == 201, r.text
        monkeypatch.setattr(engine, "project", project)
        _assert_equals_full_replay(db, loan["id"])
        with db.session(writer=False) as s:
            left = [_day(d) for d in s.execute(text("SELECT as_of FROM loan_checkpoints WHERE loan_id = :l"),
                                               {"l": loan["id"]}).scalars()]
        # States from the backdated date on did not know the payment: dropped, and today's state stored.
        assert all(d < back or d == _today(w) for d in left)

        # A reversal of a payment older than every stored state: none is valid, the log is replayed.
        txs = w.get("manager", f"/api/v1/loans/{loan['id']}/transactions?limit=200").json()["items"]
        first = next(t for t in txs if t["type"] == "repayment" and date.fromisoformat(t["date"]) == start)
        r = w.post("manager", f"/api/v1/loans/{loan['id']}/transactions/{first['id']}/reverse", {"reason": "test"})
        assert r.status_code == 200, r.text
        _assert_equals_full_replay(db, loan["id"])
        assert pay(w, loan["id"], "10.00", date=(_today(w) - timedelta(days=3)).isoformat()).status_code == 201
        _assert_equals_full_replay(db, loan["id"])
