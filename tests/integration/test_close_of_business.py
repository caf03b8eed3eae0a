"""Close of business: ageing, late fees and accrual on the real database, checked day by day against the
projection (COB and servicing must never disagree), plus idempotent reruns, overlap refusal and crash/resume."""

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.core.orm import utcnow
from app.database import Base, Database
from app.domain.postings import AccountRole, by_account, role_balances
from app.ledger import repository as ledger_repo
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.loans.models import Loan, LoanInstallment
from app.loans.service import project_loan
from app.operations.cob import _owner
from app.operations.models import CobRun
from tests.api.helpers_lending import active_loan, make_product, pay
from tests.conftest import LEG, World, assert_problem, fresh_world

COB = "/api/v1/operations/close-of-business"


def business_date(world: World) -> date:
    return date.fromisoformat(world.get("manager", "/api/v1/operations/business-date").json()["business_date"])


def close(world: World, through: date | None = None) -> dict[str, Any]:
    body = {"business_date": through.isoformat()} if through else {}
    r = world.post("manager", COB, body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def assert_snapshots_match_projection(db: Database, on: date) -> int:
    """Every active loan's stored snapshot, installments and ledger equal the projection as of `on`."""
    checked = 0
    with db.session(writer=False) as session:
        for loan in session.scalars(select(Loan).where(Loan.status == "active")):
            state = project_loan(session, loan, on)
            assert loan.snapshot_date == on
            assert loan.interest_recognized == state.totals.interest_recognized, loan.id
            assert loan.interest_outstanding == state.interest_outstanding, loan.id
            assert loan.interest_prepaid == state.interest_in_advance, loan.id
            assert loan.penalties_outstanding == state.penalties_outstanding, loan.id
            assert loan.principal_outstanding == state.principal_outstanding, loan.id
            assert loan.days_past_due == state.days_past_due, loan.id
            rows = session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id)
                                   .order_by(LoanInstallment.number)).all()
            assert [(r.penalties, r.late_fee_date) for r in rows] == [
                (r.penalties, r.late_fee_date) for r in state.installments]
            target = by_account(role_balances(state.totals), DEFAULT_ACCOUNTS)
            assert ledger_repo.loan_balances(session, loan.id) == target, loan.id
            checked += 1
    return checked


def test_delinquency_late_fees_and_par_over_95_days() -> None:
    with fresh_world() as (w, db):
        product = make_product(w, late_fee={"amount": "25.00", "grace_days": 5})
        late = active_loan(w, principal="1200.00", term=12, product=product)
        good = active_loan(w, principal="1200.00", term=12, product=product)
        schedule = w.get("manager", f"/api/v1/loans/{good['id']}/schedule").json()["installments"]
        due_dates = {date.fromisoformat(i["due_date"]): i for i in schedule}
        first_due = date.fromisoformat(late["next_due"]["date"])
        dpd_seen: dict[int, date] = {}
        day = business_date(w)
        last = first_due + timedelta(days=95)
        while day <= last:
            if day in due_dates:  # the good borrower pays each installment on its due date
                assert pay(w, good["id"], due_dates[day]["total"]).status_code == 201
            assert close(w)["business_date"] == day.isoformat()
            with db.session(writer=False) as s:
                loan = s.get(Loan, late["id"])
                assert loan is not None
                dpd_seen.setdefault(loan.days_past_due, day)
            day += timedelta(days=1)
        for dpd in (1, 30, 31, 61, 91):
            assert dpd_seen[dpd] == first_due + timedelta(days=dpd), dpd
        assert_snapshots_match_projection(db, last)
        with db.session(writer=False) as s:
            rows = s.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == late["id"])
                             .order_by(LoanInstallment.number)).all()
            passed = [r for r in rows if r.due_date + timedelta(days=6) <= last]
            # One 25.00 fee per installment whose grace ended, charged on due + grace + 1, never twice.
            assert len(passed) in (3, 4)  # 95 days after the first due date span 3-4 due dates + grace
            assert [r.penalties for r in rows] == [2500 if r in passed else 0 for r in rows]
            assert all(r.late_fee_date == r.due_date + timedelta(days=6) for r in passed)
            history = s.execute(text("SELECT to_bucket FROM loan_delinquency_history WHERE loan_id = :l "
                                     "AND to_bucket <> from_bucket ORDER BY id"), {"l": late["id"]}).scalars().all()
            assert history == ["1-30", "31-60", "61-90", "90+"]
        # PAR by hand: the late loan owes all 1200.00 principal with DPD 96; the good one is current.
        paid = [i for d, i in due_dates.items() if d <= last]
        good_principal = Decimal("1200.00") - sum(Decimal(i["principal"]) for i in paid)
        expected = (Decimal("1200.00") / (Decimal("1200.00") + good_principal)).quantize(Decimal("0.0001"))
        report = w.get("manager", "/api/v1/reports/portfolio").json()
        assert report["active_loans"] == 2
        assert Decimal(report["principal_outstanding"]) == Decimal("1200.00") + good_principal
        assert report["par_1"] == report["par_30"] == report["par_90"] == str(expected)
        aging = {b["bucket"]: b for b in w.get("manager", "/api/v1/reports/aging").json()["buckets"]}
        assert aging["90+"]["loans"] == 1 and aging["current"]["loans"] == 1
        csv_text = w.get("manager", "/api/v1/reports/aging?format=csv").text
        assert csv_text.splitlines()[0] == "bucket,loans,principal" and "90+,1,1200.00" in csv_text
        # Paying the arrears brings DPD back to 0.
        arrears = sum(Decimal(i["outstanding"]) for i in
                      w.get("manager", f"/api/v1/loans/{late['id']}/schedule").json()["installments"]
                      if i["status"] == "overdue")
        assert pay(w, late["id"], str(arrears)).status_code == 201
        after = w.get("manager", f"/api/v1/loans/{late['id']}").json()
        assert after["days_past_due"] == 0 and after["delinquency_bucket"] == "current"
        assert w.get("manager", "/api/v1/reports/portfolio").json()["par_1"] == "0.0000"


def test_a_past_dates_par_and_aging_are_what_the_report_said_on_that_date() -> None:
    """One PAR definition (DPD > N) for current and past `as_of`: the day a loan is 1 day late it is not in PAR_1
    (DPD 1 is not > 1), on the next day it is, and asking about those days later gives the same answers."""
    with fresh_world() as (w, db):
        late = active_loan(w, principal="1200.00", term=12)
        good = active_loan(w, principal="1200.00", term=12)
        first_due = date.fromisoformat(late["next_due"]["date"])
        said: dict[date, tuple[dict[str, Any], dict[str, Any]]] = {}
        day = business_date(w)
        while day <= first_due + timedelta(days=32):
            if day == first_due:
                assert pay(w, good["id"], good["next_due"]["amount"]).status_code == 201
            close(w)
            report = w.get("manager", f"/api/v1/reports/portfolio?as_of={day.isoformat()}").json()
            aging = w.get("manager", f"/api/v1/reports/aging?as_of={day.isoformat()}").json()["buckets"]
            said[day] = (report, {b["bucket"]: (b["loans"], b["principal"]) for b in aging})
            day += timedelta(days=1)
        assert said[first_due + timedelta(days=1)][0]["par_1"] == "0.0000"  # DPD 1
        assert said[first_due + timedelta(days=2)][0]["par_1"] != "0.0000"  # DPD 2
        assert said[first_due + timedelta(days=30)][0]["par_30"] == "0.0000"  # DPD 30
        assert said[first_due + timedelta(days=31)][0]["par_30"] != "0.0000"  # DPD 31
        for on, (report, aging) in said.items():
            later = w.get("manager", f"/api/v1/reports/portfolio?as_of={on.isoformat()}").json()
            assert {k: later[k] for k in ("par_1", "par_30", "par_90")} == {
                k: report[k] for k in ("par_1", "par_30", "par_90")}, on
            buckets = w.get("manager", f"/api/v1/reports/aging?as_of={on.isoformat()}").json()["buckets"]
            assert {b["bucket"]: (b["loans"], b["principal"]) for b in buckets} == aging, on
        _ = db


def test_cob_agrees_with_the_projection_every_day() -> None:
    with fresh_world() as (w, db):
        products = [
            make_product(w, late_fee={"amount": "10.00", "grace_days": 3}),
            make_product(w, frequency="weekly", day_count="actual/365", max_term=52,
                         late_fee={"percent_of_overdue": "5", "grace_days": 0}),
            make_product(w, day_count="actual/360", amortization="equal_principal"),
            make_product(w, day_count="actual/actual", frequency="biweekly", max_term=30),
        ]
        loans = [active_loan(w, principal=p, term=t, product=prod)
                 for prod, p, t in zip(products, ("1000.00", "523.17", "2500.00", "777.77"), (6, 10, 12, 8),
                                       strict=True)]
        start = business_date(w)
        for n in range(45):
            if n == 10:
                assert pay(w, loans[0]["id"], "120.00").status_code == 201
            if n == 20:
                assert pay(w, loans[2]["id"], "900.00").status_code == 201  # prepayment
            if n == 30:  # backdated
                r = pay(w, loans[1]["id"], "40.00", date=(start + timedelta(days=12)).isoformat())
                assert r.status_code == 201, r.text
            on = business_date(w)
            close(w)
            assert assert_snapshots_match_projection(db, on) == 4
        tb = w.get("auditor", "/api/v1/ledger/trial-balance").json()
        assert tb["total_debit"] == tb["total_credit"]


def _counts(db: Database) -> dict[str, int]:
    with db.session(writer=False) as s:
        return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in Base.metadata.sorted_tables}


def test_closing_a_closed_day_again_changes_nothing() -> None:
    with fresh_world() as (w, db):
        active_loan(w)
        day = business_date(w)
        first = close(w)
        before = _counts(db)
        again = close(w, day)
        assert again["already_closed"] is True
        assert again["loans_processed"] == first["loans_processed"]
        assert _counts(db) == before
        assert business_date(w) == day + timedelta(days=1)
        assert_problem(w.post("manager", COB, {"business_date": (day + timedelta(days=400)).isoformat()}), 422,
                       "business_date")
        assert_problem(w.post("officer_a", COB, {}), 403)


def test_a_second_concurrent_start_is_refused() -> None:
    with fresh_world() as (w, db):
        active_loan(w)
        day = business_date(w)
        with db.transaction() as s:  # another live process holds the run
            s.add(CobRun(business_date=day, status="running", owner=_owner(), heartbeat_at=utcnow(),
                         started_at=utcnow()))
        import app.operations.cob as cob

        original = cob._owner
        cob._owner = lambda: "elsewhere:1"  # type: ignore[assignment]
        try:
            assert_problem(w.post("manager", COB, {}), 409)
        finally:
            cob._owner = original  # type: ignore[assignment]


def _cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **env})


@pytest.mark.skipif(LEG != "sqlite", reason="copies the database file; the PostgreSQL leg covers SKIP LOCKED claims")
def test_kill_9_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Any) -> None:
    with fresh_world() as (w, db):
        for _ in range(6):
            active_loan(w)
        url = str(db.engine.url)
        source = url.removeprefix("sqlite:///")
        db.dispose()
        with sqlite3.connect(source) as raw:  # fold the WAL into the file before copying it
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        copy = tmp_path / "copy.db"
        shutil.copy(source, copy)
        copy_url = f"sqlite:///{copy}"
        crashed = _cli(url, "close-day", "--chunk-size", "1", COB_FAULT_AFTER_CHUNKS="3")
        assert crashed.returncode == -9, crashed.stderr
        resumed = _cli(url, "close-day", "--chunk-size", "1")
        assert resumed.returncode == 0, resumed.stderr
        clean = _cli(copy_url, "close-day", "--chunk-size", "1")
        assert clean.returncode == 0, clean.stderr
        assert _fingerprint(url) == _fingerprint(copy_url)


def _fingerprint(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        with db.session(writer=False) as s:
            loans = s.execute(text(
                "SELECT id, interest_recognized, interest_outstanding, penalties_outstanding, days_past_due, "
                "snapshot_date, version FROM loans ORDER BY id")).all()
            lines = s.execute(text("SELECT account_code, SUM(debit), SUM(credit), COUNT(*) FROM journal_lines "
                                   "GROUP BY account_code ORDER BY account_code")).all()
            bd = s.execute(text("SELECT business_date FROM business_calendar")).scalar_one()
        return {"loans": [tuple(r) for r in loans], "lines": [tuple(r) for r in lines], "business_date": bd,
                "counts": _counts(db)}
    finally:
        db.dispose()


@pytest.mark.skipif(LEG != "postgresql", reason="worker processes claim chunks with SKIP LOCKED on PostgreSQL")
def test_two_worker_processes_close_a_day_like_one() -> None:
    from app.operations.cob import close_through

    with fresh_world() as (w, db):
        for principal in ("1000.00", "2500.00", "777.77", "1200.00", "3100.00", "150.00"):
            active_loan(w, principal=principal)
        on = business_date(w)
        [result] = close_through(db, on, workers=2, chunk_size=1)
        assert result.loans_processed == 6
        assert assert_snapshots_match_projection(db, on) == 6
        with db.session(writer=False) as s:
            done_by = s.execute(text("SELECT COUNT(DISTINCT done_by) FROM cob_chunks")).scalar_one()
        assert done_by >= 1
        assert business_date(w) == on + timedelta(days=1)


def test_an_installment_paid_before_its_due_date_never_falls_due_and_its_interest_accrues_from_the_advance() -> None:
    """Issue 11, defect 1, as close of business sees it: 1200.00 x 12 at 12 %, 30/360, late fee 10.00 after 5
    grace days. Installment 1 (106.62 = interest 12.00 + principal 94.62) paid 5 days before its due date;
    closing through 6 days after the due date used to give DPD 7, a 10.00 fee and 212.84 due."""
    with fresh_world() as (w, db):
        product = make_product(w, late_fee={"amount": "10.00", "grace_days": 5})
        ahead = make_product(w, late_fee={"amount": "10.00", "grace_days": 5}, prepayment="pay_ahead")
        loan = active_loan(w, principal="1200.00", term=12, product=product)
        paid_ahead = active_loan(w, principal="1200.00", term=12, product=ahead)
        first_due = date.fromisoformat(loan["next_due"]["date"])
        close(w, first_due - timedelta(days=6))  # business date now 5 days before the due date
        assert pay(w, loan["id"], "106.62").status_code == 201
        # three installments at once on a pay_ahead loan: #1, #2, #3 paid as scheduled, interest in advance
        assert pay(w, paid_ahead["id"], "319.86").status_code == 201
        day = business_date(w)
        while day <= first_due + timedelta(days=6):
            close(w, day)
            assert assert_snapshots_match_projection(db, day) == 2
            day += timedelta(days=1)
        shown = w.get("manager", f"/api/v1/loans/{loan['id']}").json()
        assert (shown["days_past_due"], shown["balances"]["penalties"]) == (0, "0.00")
        # the business date is now 7 days after the due date (where the defect showed DPD 7). #1's interest
        # 12.00 accrued in full out of the advance by its due date; #2 (interest 1105.38 * 1 % = 11.05) has
        # accrued 7 of 30 days: 11.05 * 7 / 30 = 2.578 -> 2.58
        assert (shown["balances"]["interest"], shown["balances"]["interest_in_advance"]) == ("2.58", "0.00")
        assert shown["next_due"]["amount"] == "106.62"
        schedule = w.get("manager", f"/api/v1/loans/{loan['id']}/schedule").json()["installments"]
        assert schedule[0]["status"] == "paid" and schedule[1]["status"] == "pending"
        ahead_now = w.get("manager", f"/api/v1/loans/{paid_ahead['id']}").json()
        # #2 (11.05) is paid but only 2.58 of it has accrued: 8.47 in advance; #3's 10.10 all in advance
        assert ahead_now["balances"]["interest_in_advance"] == "18.57" and ahead_now["days_past_due"] == 0
        with db.session(writer=False) as session:
            balances = ledger_repo.loan_balances(session, loan["id"])
        # the books hold what close of business posted through the last closed day (6 days: 2.21)
        assert balances.get("2110", 0) == 0 and balances["1200"] == 221


def test_simple_interest_loans_accrue_on_the_actual_principal_through_close_of_business() -> None:
    """A daily-recalculation loan next to a fixed one: close of business re-projects it every day, so its
    snapshot, installments and ledger equal the projection daily, early and late payments included."""
    with fresh_world() as (w, db):
        daily = make_product(w, day_count="actual/365", interest_recalculation="daily",
                             late_fee={"amount": "10.00", "grace_days": 5})
        fixed = make_product(w, day_count="actual/365", late_fee={"amount": "10.00", "grace_days": 5})
        simple = active_loan(w, principal="1200.00", term=12, product=daily)
        other = active_loan(w, principal="1200.00", term=12, product=fixed)
        first_due = date.fromisoformat(simple["next_due"]["date"])
        close(w, first_due - timedelta(days=11))
        # 10 days early: interest accrued to today first, the rest of the installment is principal
        paid = pay(w, simple["id"], simple["next_due"]["amount"])
        assert paid.status_code == 201, paid.text
        assert pay(w, other["id"], other["next_due"]["amount"]).status_code == 201
        day = business_date(w)
        while day <= first_due + timedelta(days=40):
            close(w, day)
            assert assert_snapshots_match_projection(db, day) == 2
            day += timedelta(days=1)
        shown = w.get("manager", f"/api/v1/loans/{simple['id']}").json()
        # installment 2 was not paid: 10 days past grace, the late fee is charged once, DPD counts from its due
        assert shown["days_past_due"] > 5 and shown["balances"]["penalties"] == "10.00"
        # the payment took the simple interest of its days only: 1200.00 * 12 % * days / 365, half-up
        days = (first_due - timedelta(days=10) - date.fromisoformat(simple["disbursement_date"])).days
        expected = (Decimal("1200.00") * Decimal("0.12") * days / 365).quantize(Decimal("0.01"), "ROUND_HALF_UP")
        allocation = paid.json()["allocation"]
        assert Decimal(allocation["interest"]) == expected
        assert Decimal(allocation["principal"]) == Decimal(simple["next_due"]["amount"]) - expected
        entries = w.get("manager", f"/api/v1/loans/{simple['id']}/journal-entries").json()["items"]
        assert {e["entry_type"] for e in entries} >= {"disbursement", "repayment", "accrual"}


def test_close_of_business_posts_to_each_loans_own_accounts() -> None:
    """The set-based accrual and late fees read the loan's account mapping, like the online path: a loan whose
    penalties go to another receivable gets its late fee there, and its lines still equal its projection."""
    with fresh_world() as (w, db):
        product = make_product(w, late_fee={"amount": "25.00", "grace_days": 0})
        loan = active_loan(w, principal="1200.00", term=12, product=product)
        with db.transaction() as s:
            row = s.get(Loan, loan["id"])
            assert row is not None
            row.accounts = {**row.accounts, "penalties_receivable": "1210", "interest_income": "4100"}
        first_due = date.fromisoformat(loan["next_due"]["date"])
        close(w, first_due + timedelta(days=2))
        with db.session(writer=False) as s:
            lines = s.execute(text(
                "SELECT e.entry_type, jl.account_code, SUM(jl.debit - jl.credit) FROM journal_lines jl "
                "JOIN journal_entries e ON e.id = jl.entry_id WHERE jl.loan_id = :l AND e.entry_type IN "
                "('late_fee', 'accrual') GROUP BY e.entry_type, jl.account_code"), {"l": loan["id"]}).all()
            codes = {(kind, code) for kind, code, _ in lines}
            assert ("late_fee", "1210") in codes and ("late_fee", "1220") not in codes
            assert ("accrual", "4100") in codes and ("accrual", "4000") not in codes
            stored = s.get(Loan, loan["id"])
            assert stored is not None
            state = project_loan(s, stored, first_due + timedelta(days=2))
            mapping = {**DEFAULT_ACCOUNTS}
            mapping.update({AccountRole(k): v for k, v in stored.accounts.items()})
            assert ledger_repo.loan_balances(s, loan["id"]) == by_account(role_balances(state.totals), mapping)
            assert ledger_repo.posted_loan_balances(s, loan["id"]) == ledger_repo.loan_balances(s, loan["id"])
