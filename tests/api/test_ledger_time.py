"""Ledger time (CONTRACT "Ledger time") on both legs: booking date vs value date, closed days that never change,
complete per-loan journals, `?basis=value` reports and `?known_at=` loan reads.

The backdating story of issue 14: a 1,000.00 loan at 12 % over 3 months (30/360, installments 340.02, the first
due 2025-02-01), late fee 25.00 after 6 grace days (charged at the end of 02-08, DPD 7 > 6). Close of business
runs every day from 01-01 through 02-11; on 02-12 a payment dated 02-05 is entered. Before ledger time it was
booked as one entry dated 02-05 that also undid the 02-08 late fee and moved later accruals, rewriting closed
days. Now: every closed day's trial balance is unchanged, the correcting entry is booked on 02-12 with value date
02-05, loans `?as_of=` show the recomputed history and `?known_at=` the view of the time.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from app.business_calendar import repository as calendar_repo
from app.database import Database
from app.ledger import service as ledger
from app.ledger.entries import EntryDraft, LineDraft
from app.ledger.service import ClosedDay
from app.loans import reconcile
from app.loans.models import Loan
from app.operations import cob
from app.operations.models import CobChunk, CobRun
from tests.api.helpers_lending import LOANS, active_loan, make_product, pay
from tests.conftest import LEG, World, assert_problem, fresh_world

D = date
LEDGER = "/api/v1/ledger"
COB = "/api/v1/operations/close-of-business"
START = D(2025, 1, 1)


def set_date(db: Database, day: date) -> None:
    with db.transaction() as session:
        calendar_repo.set_business_date(session, day)


def close(w: World, through: date) -> dict[str, Any]:
    r = w.post("manager", COB, {"business_date": through.isoformat()})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def get(w: World, path: str, **params: Any) -> Any:
    r = w.get("manager", path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def trial_balance(w: World, on: date) -> dict[str, tuple[str, str]]:
    tb = get(w, f"{LEDGER}/trial-balance", as_of=on.isoformat())
    assert tb["total_debit"] == tb["total_credit"], tb
    return {a["code"]: (a["debit"], a["credit"]) for a in tb["accounts"]}


def balance(tb: dict[str, tuple[str, str]], code: str) -> Decimal:
    debit, credit = tb[code]
    return Decimal(debit) - Decimal(credit)


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def journal_sums(entries: list[dict[str, Any]], loan_id: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for entry in entries:
        for line in entry["lines"]:
            assert line["loan_id"] == loan_id, entry  # an entry shows only this loan's lines
            sums[line["account_code"]] = sums.get(line["account_code"], Decimal(0)) + Decimal(line["debit"]) - Decimal(
                line["credit"])
    return {code: v for code, v in sums.items() if v}


@pytest.fixture(scope="module")
def story() -> Iterator[tuple[World, Database, dict[str, Any]]]:
    """The issue's loan and a neighbour of the same product (so the close-of-business entries are shared), closed
    through 02-11; the trial balance of every closed day is recorded before the backdated payment."""
    with fresh_world() as (w, db):
        set_date(db, START)
        product = make_product(w, late_fee={"amount": "25.00", "grace_days": 6})
        loan = active_loan(w, principal="1000.00", term=3, product=product)
        other = active_loan(w, principal="2000.00", term=3, product=product)
        assert loan["installment_amount"] == "340.02" and loan["next_due"]["date"] == "2025-02-01"
        close(w, D(2025, 2, 11))
        tbs = {day: trial_balance(w, day) for day in days(START, D(2025, 2, 11))}
        before = {
            "tbs": tbs,
            "portfolio": get(w, "/api/v1/reports/portfolio", as_of="2025-02-05"),
            "portfolio_0211": get(w, "/api/v1/reports/portfolio", as_of="2025-02-11"),
            "aging": get(w, "/api/v1/reports/aging", as_of="2025-02-10"),
            "loan_0210": get(w, f"{LOANS}/{loan['id']}", as_of="2025-02-10"),
            "other": other,
            "loan": loan,
        }
        yield w, db, before


def test_a_backdated_payment_leaves_every_closed_day_unchanged(story: tuple[World, Database, dict[str, Any]]) -> None:
    w, _db, before = story
    loan = before["loan"]
    # Before the payment: the fee was charged at the end of 02-08; on 02-10 the loan is 9 days past due.
    assert before["loan_0210"]["balances"]["penalties"] == "25.00" and before["loan_0210"]["days_past_due"] == 9
    assert balance(before["tbs"][D(2025, 2, 8)], "1220") == Decimal("50.00")  # both loans' fees
    assert balance(before["tbs"][D(2025, 2, 7)], "1220") == 0

    paid = pay(w, loan["id"], "340.02", date="2025-02-05")
    assert paid.status_code == 201, paid.text
    tx_id = paid.json()["transaction_id"]

    # 1. Every closed day's trial balance is what it was (the issue: 02-06 lost the fee, 1200 moved by 2.80).
    for day, tb in before["tbs"].items():
        assert trial_balance(w, day) == tb, day
    # 2. The correction is booked today (02-12) with the payment's date as value date.
    entries = get(w, f"{LEDGER}/journal-entries", loan_id=loan["id"], limit=500)["items"]
    correction = next(e for e in entries if e["transaction_id"] == tx_id)
    assert correction["booking_date"] == "2025-02-12" and correction["value_date"] == "2025-02-05"
    assert correction["effective_date"] == "2025-02-05"
    # Its lines: cash in 340.02; the late fee and the fee income undone (25.00 each way) — today.
    lines = {(ln["account_code"], ln["debit"], ln["credit"]) for ln in correction["lines"]}
    assert ("1000", "340.02", "0.00") in lines and ("4200", "25.00", "0.00") in lines
    assert ("1220", "0.00", "25.00") in lines
    # Journal listing by booking date: the correction is in 02-12, not in 02-05.
    on_0205 = get(w, f"{LEDGER}/journal-entries", loan_id=loan["id"], **{"from": "2025-02-05", "to": "2025-02-05"})
    assert tx_id not in {e["transaction_id"] for e in on_0205["items"]}
    on_0212 = get(w, f"{LEDGER}/journal-entries", loan_id=loan["id"], **{"from": "2025-02-12", "to": "2025-02-12"})
    assert tx_id in {e["transaction_id"] for e in on_0212["items"]}
    # 3. Today's trial balance carries the correction: only the neighbour's fee is still receivable.
    today = trial_balance(w, D(2025, 2, 12))
    assert balance(today, "1220") == Decimal("25.00")
    # 4. Reports by booking date are unchanged for a closed day; ?basis=value recomputes it.
    assert get(w, "/api/v1/reports/portfolio", as_of="2025-02-05") == before["portfolio"]
    assert get(w, "/api/v1/reports/portfolio", as_of="2025-02-11") == before["portfolio_0211"]  # yesterday too
    assert get(w, "/api/v1/reports/aging", as_of="2025-02-10") == before["aging"]
    value = get(w, "/api/v1/reports/portfolio", as_of="2025-02-05", basis="value")
    as_of_0205 = [get(w, f"{LOANS}/{i}", as_of="2025-02-05") for i in (loan["id"], before["other"]["id"])]
    # loan: 1000.00 − 330.02 principal of installment 1 (340.02 − 10.00 interest) = 669.98; neighbour 2000.00
    assert as_of_0205[0]["balances"]["principal"] == "669.98"
    assert Decimal(value["principal_outstanding"]) == sum(Decimal(x["balances"]["principal"]) for x in as_of_0205)
    assert value["principal_outstanding"] == "2669.98" and value["source"] == "recomputed"
    assert before["portfolio"]["principal_outstanding"] == "3000.00"
    aging_value = {b["bucket"]: b for b in get(w, "/api/v1/reports/aging", as_of="2025-02-10", basis="value")["buckets"]}
    assert aging_value["current"]["loans"] == 1 and aging_value["1-30"]["loans"] == 1
    assert_problem(w.get("manager", "/api/v1/reports/portfolio", params={"basis": "cash"}), 422, "basis")
    # 5. The loan ?as_of=02-10 is recomputed (no fee, not late); ?known_at=02-11 is what we said then.
    now = get(w, f"{LOANS}/{loan['id']}", as_of="2025-02-10")
    assert now["balances"]["penalties"] == "0.00" and now["days_past_due"] == 0
    then = get(w, f"{LOANS}/{loan['id']}", as_of="2025-02-10", known_at="2025-02-11")
    assert then["balances"] == before["loan_0210"]["balances"] and then["days_past_due"] == 9
    assert get(w, f"{LOANS}/{loan['id']}", as_of="2025-02-10", known_at="2025-02-12")["balances"] == now["balances"]
    sched_then = get(w, f"{LOANS}/{loan['id']}/schedule", as_of="2025-02-10", known_at="2025-02-11")
    sched_now = get(w, f"{LOANS}/{loan['id']}/schedule", as_of="2025-02-10")
    assert sched_then["installments"][0]["status"] == "overdue" and sched_now["installments"][0]["status"] == "paid"
    txs_then = get(w, f"{LOANS}/{loan['id']}/transactions", known_at="2025-02-11")["items"]
    assert [t["type"] for t in txs_then] == ["disbursement"]
    assert tx_id in {t["id"] for t in get(w, f"{LOANS}/{loan['id']}/transactions")["items"]}
    assert_problem(w.get("manager", f"{LOANS}/{loan['id']}", params={"known_at": "2025-03-01"}), 422, "known_at")

    # 6. Reversing the payment today: closed days still unchanged, the reversal booked today as well.
    r = w.post("manager", f"{LOANS}/{loan['id']}/transactions/{tx_id}/reverse", {"reason": "bounced"})
    assert r.status_code in (200, 201), r.text
    for day, tb in before["tbs"].items():
        assert trial_balance(w, day) == tb, day
    entries = get(w, f"{LEDGER}/journal-entries", loan_id=loan["id"], limit=500)["items"]
    assert all(e["booking_date"] == "2025-02-12" for e in entries if e["booking_date"] > "2025-02-11")
    assert get(w, f"{LOANS}/{loan['id']}")["balances"]["penalties"] == "25.00"  # the fee is owed again
    # The loan as known at 02-12 before... and after: the reversal is booked on 02-12, so known_at=02-12 shows it.
    assert get(w, f"{LOANS}/{loan['id']}", as_of="2025-02-10", known_at="2025-02-12")["days_past_due"] == 9


def test_a_loans_journal_holds_its_close_of_business_lines_and_explains_its_balances(
    story: tuple[World, Database, dict[str, Any]],
) -> None:
    w, db, before = story
    for loan in (before["loan"], before["other"]):
        entries = get(w, f"{LOANS}/{loan['id']}/journal-entries")["items"]
        kinds = {e["entry_type"] for e in entries}
        assert {"disbursement", "accrual", "late_fee"} <= kinds
        assert [e["booking_date"] for e in entries] == sorted(e["booking_date"] for e in entries)
        current = get(w, f"{LOANS}/{loan['id']}")
        sums = journal_sums(entries, loan["id"])
        b = current["balances"]
        assert sums.get("1100", Decimal(0)) == Decimal(b["principal"])
        assert sums.get("1220", Decimal(0)) == Decimal(b["penalties"])
        # Interest receivable as booked: the stored snapshot (GET also counts today's accrual, booked tonight).
        with db.session(writer=False) as session:
            stored = session.get(Loan, loan["id"])
            assert stored is not None
            assert sums.get("1200", Decimal(0)) == Decimal(stored.interest_outstanding) / 100
        # The ledger listing filtered by loan shows the same entries, each with only that loan's lines.
        listed = get(w, f"{LEDGER}/journal-entries", loan_id=loan["id"], limit=500)["items"]
        assert {e["id"] for e in listed} == {e["id"] for e in entries}
        assert journal_sums(listed, loan["id"]) == sums
    with db.session(writer=False) as session:
        assert list(reconcile.mismatches(session)) == []


def test_transactions_include_accruals_and_late_fee_charges(story: tuple[World, Database, dict[str, Any]]) -> None:
    w, _db, before = story
    other = before["other"]
    plain = get(w, f"{LOANS}/{other['id']}/transactions")["items"]
    items = get(w, f"{LOANS}/{other['id']}/transactions", include="accruals", limit=500)["items"]
    assert [t for t in items if t["type"] not in ("accrual", "charge")] == plain
    charges = [t for t in items if t["type"] == "charge"]
    assert [(t["date"], t["amount"]) for t in charges] == [("2025-02-08", "25.00")]
    accruals = [t for t in items if t["type"] == "accrual"]
    # 2,000.00 at 12 %, 30/360: 20.00 for January (30 accruing days; the 31st adds nothing) + 10 days of February
    # (20.00 × 10/30 = 6.67, recognised day by day, rounded half-up on the running total).
    assert sum(Decimal(t["amount"]) for t in accruals if t["date"] < "2025-02-01") == Decimal("20.00")
    assert [t["date"] for t in items] == sorted(t["date"] for t in items)
    # Paging through the merged list gives the same items.
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"include": "accruals", "limit": 7, **({"cursor": cursor} if cursor else {})}
        page = get(w, f"{LOANS}/{other['id']}/transactions", **params)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == items
    assert_problem(w.get("manager", f"{LOANS}/{other['id']}/transactions", params={"include": "all"}), 422, "include")


def test_nothing_is_booked_into_a_closed_day(story: tuple[World, Database, dict[str, Any]]) -> None:
    _w, db, _before = story
    draft = EntryDraft("test", "USD", D(2025, 2, 5), [LineDraft("1000", 100, 0), LineDraft("4000", 0, 100)],
                       booking_date=D(2025, 2, 5))
    with db.transaction() as session, pytest.raises(ClosedDay):
        ledger.post(session, draft)
    with db.transaction() as session, pytest.raises(ClosedDay):
        ledger.post_entries_from_select(
            session, entries=[ledger.SetEntry("", "00000000-0000-5000-8000-000000000001", "USD", None, "late")],
            entry_type="accrual", effective_date=D(2025, 2, 5), lines_sql="SELECT '' AS entry_key, '1000' AS "
            "account_code, NULL AS loan_id, 1 AS debit, 0 AS credit", params={})


@pytest.mark.skipif(LEG != "postgresql", reason="the database-level guard is a PostgreSQL trigger")
@pytest.mark.parametrize("statement", [
    "INSERT INTO journal_entries (id, entry_type, currency, effective_date, booking_date, posted_at, description) "
    "VALUES ('00000000-0000-5000-8000-0000000000aa', 't', 'USD', '2025-02-12', '2025-02-05', now(), '')",
    "INSERT INTO journal_lines (entry_id, account_code, currency, effective_date, booking_date, debit, credit) "
    "SELECT id, '1000', 'USD', '2025-02-05', '2025-02-05', 1, 0 FROM journal_entries LIMIT 1",
    "UPDATE journal_entries SET booking_date = booking_date",
    "DELETE FROM journal_lines WHERE booking_date < '2025-02-06'",
])
def test_postgres_refuses_to_book_into_or_edit_a_closed_day(
    story: tuple[World, Database, dict[str, Any]], statement: str
) -> None:
    _w, db, _before = story
    # Booking into a closed day is SQLSTATE 40001 (a write that raced close of business: the API answers 503 and
    # the retry books on the new business date); editing is refused as before.
    expected = OperationalError if statement.startswith("INSERT") else DBAPIError
    with db.engine.connect() as conn, pytest.raises(expected, match=r"closed day|append-only"):
        conn.execute(text(statement))


@pytest.mark.skipif(LEG != "postgresql", reason="the database-level guard is a PostgreSQL trigger")
def test_postgres_accepts_entries_booked_today(story: tuple[World, Database, dict[str, Any]]) -> None:
    _w, db, _before = story
    with db.engine.connect() as conn:
        today = conn.execute(text("SELECT business_date FROM business_calendar")).scalar_one()
        conn.execute(text(
            "INSERT INTO journal_entries (id, entry_type, currency, effective_date, booking_date, posted_at, "
            "description) VALUES ('00000000-0000-5000-8000-0000000000bb', 't', 'USD', '2025-02-01', :d, now(), '')"),
            {"d": today})
        conn.rollback()


# --- property: a closed day's trial balance never changes -----------------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("close"), st.integers(1, 12)),
        st.tuples(st.just("pay"), st.integers(0, 40), st.sampled_from(["25.00", "340.02", "700.00"])),
        st.tuples(st.just("reverse"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=6,
)


def test_closed_days_never_change_under_backdating_reversals_and_closes() -> None:
    """Random backdated payments, reversals and closes of business on fresh loans: after every step the trial
    balance of every closed day equals what it was when the day closed, and every loan's ledger equals its
    balances (verify-ledger's per-loan check)."""
    with fresh_world() as (w, db):
        set_date(db, START)
        product = make_product(w, late_fee={"amount": "15.00", "grace_days": 3})
        recorded: dict[date, dict[str, tuple[str, str]]] = {}
        today = [START]

        def close_days(n: int) -> None:
            through = today[0] + timedelta(days=n - 1)
            close(w, through)
            for day in days(today[0], through):
                recorded[day] = trial_balance(w, day)
            today[0] = through + timedelta(days=1)

        @settings(max_examples=6, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(ops=OPS)
        def run(ops: list[tuple[Any, ...]]) -> None:
            loan = active_loan(w, principal="1000.00", term=3, product=product)
            opened = today[0]
            payments: list[str] = []
            close_days(3)
            for op in ops:
                if op[0] == "close":
                    close_days(op[1])
                elif op[0] == "pay":
                    on = max(opened, today[0] - timedelta(days=op[1]))
                    r = pay(w, loan["id"], op[2], date=on.isoformat())
                    assert r.status_code in (201, 409, 422), r.text
                    if r.status_code == 201:
                        payments.append(r.json()["transaction_id"])
                elif payments:
                    tx = payments.pop(op[1] % len(payments))
                    r = w.post("manager", f"{LOANS}/{loan['id']}/transactions/{tx}/reverse", {"reason": "test"})
                    assert r.status_code in (200, 201, 409), r.text
                for day, tb in recorded.items():
                    assert trial_balance(w, day) == tb, (day, op)
            with db.session(writer=False) as session:
                assert [str(m) for m in reconcile.mismatches(session)] == []

        run()


# --- close of business per currency ----------------------------------------------------------------------------

CURRENCY_PRODUCTS = {
    # 1,200 at 12 %, 30/360: 12 a month, 0.40 (40 yen, 0.400 dinar) a day.
    "USD": {"min_principal": "100.00", "max_principal": "10000.00", "principal": "1200.00"},
    "JPY": {"min_principal": "100", "max_principal": "10000000", "principal": "120000"},
    "KWD": {"min_principal": "100.000", "max_principal": "10000.000", "principal": "1200.000"},
}


def test_close_of_business_figures_are_per_currency_and_totalled_over_the_days_closed() -> None:
    with fresh_world() as (w, db):
        with db.session(writer=False) as session:
            start = calendar_repo.business_date(session).replace(day=1)  # days 1-3: no 31st (30/360 accrues 0)
        set_date(db, start)
        for code, spec in CURRENCY_PRODUCTS.items():
            product = make_product(w, currency=code, min_principal=spec["min_principal"],
                                   max_principal=spec["max_principal"])
            active_loan(w, principal=spec["principal"], term=12, product=product)
        result = close(w, start + timedelta(days=2))
        # The disbursement day accrues nothing (no day of the period has elapsed at its end under 30/360), the next
        # two 0.40 / 40 yen / 0.400 dinar each — never added across currencies (the issue: "12.53").
        assert result["interest_accrued"] == {"JPY": "80", "KWD": "0.800", "USD": "0.80"}
        assert result["late_fees_charged"] == {}
        day = {"JPY": "40", "KWD": "0.400", "USD": "0.40"}
        assert [d["interest_accrued"] for d in result["days"]] == [{"JPY": "0", "KWD": "0.000", "USD": "0.00"}, day, day]
        assert result["business_date"] == (start + timedelta(days=2)).isoformat()
        assert result["new_business_date"] == (start + timedelta(days=3)).isoformat()
        # The journal agrees: per currency, the accrual booked on those days credits interest income that much.
        for code, expected in (("USD", "0.80"), ("JPY", "80"), ("KWD", "0.800")):
            tb = get(w, f"{LEDGER}/trial-balance", as_of=(start + timedelta(days=2)).isoformat(), currency=code)
            income = next(a for a in tb["accounts"] if a["code"] == "4000")
            assert income["credit"] == expected, code
        # Closing a closed day again answers the stored figures.
        again = close(w, start + timedelta(days=1))
        assert again["already_closed"] is True and again["interest_accrued"] == day
        metrics = w.client.get("/metrics").text
        assert 'close_of_business_interest_accrued_minor_total{currency="JPY"}' in metrics
        assert "ledger_loans_out_of_balance 0.0" in metrics


def test_the_per_loan_ledger_check_is_exported_after_close_of_business() -> None:
    """A balanced entry that books one loan's accrual twice: the books balance, the loan does not; after the next
    close of business the gauge says so (and `loanctl verify-ledger` names the loan, tests/integration)."""
    with fresh_world() as (w, db):
        loan = active_loan(w, principal="1200.00", term=12)
        close(w, date.fromisoformat(get(w, "/api/v1/operations/business-date")["business_date"]))
        assert "ledger_loans_out_of_balance 0.0" in w.client.get("/metrics").text
        with db.transaction() as session:
            today = calendar_repo.business_date(session)
            ledger.post(session, EntryDraft("accrual", "USD", today, [LineDraft("1200", 40, 0, loan["id"]),
                                                                      LineDraft("4000", 0, 40, loan["id"])]))
        close(w, today)
        assert "ledger_loans_out_of_balance 1.0" in w.client.get("/metrics").text
        with db.session(writer=False) as session:
            assert [m.loan_id for m in reconcile.mismatches(session)] == [loan["id"]]


def test_the_ledger_check_after_close_of_business_covers_loans_no_chunk_closes() -> None:
    """Chunks check their active loans; the check after the close covers the rest (an overpaid loan here), and a
    loan a chunk found that left `active` before the close finished is counted once."""
    with fresh_world() as (w, db):
        active = active_loan(w, principal="1200.00", term=12)
        paid = active_loan(w, principal="600.00", term=6)
        assert pay(w, paid["id"], "700.00").status_code == 201
        with db.transaction() as session:
            today = calendar_repo.business_date(session)
            assert session.get(Loan, paid["id"]).status == "overpaid"
            # Balanced entries that book a loan's receivable without its snapshot: the books balance, the loans don't.
            for loan_id in (active["id"], paid["id"]):
                ledger.post(session, EntryDraft("accrual", "USD", today, [LineDraft("1200", 40, 0, loan_id),
                                                                          LineDraft("4000", 0, 40, loan_id)]))
        result = close(w, today)
        assert "ledger_loans_out_of_balance 2.0" in w.client.get("/metrics").text, result
        with db.session(writer=False) as session:
            run = session.get(CobRun, today)
            chunks = session.scalars(select(CobChunk).where(CobChunk.business_date == today)).all()
            assert run is not None and run.loans_out_of_balance == 2
            assert sorted(i for c in chunks for i in c.out_of_balance_ids or []) == [active["id"]]
            # As if a chunk had found the overpaid loan while it was still active: still one loan, not two.
            found_while_active = CobChunk(seq_hi=chunks[0].seq_hi, out_of_balance_ids=[paid["id"]])
            assert cob._ledger_check(session, today, [*chunks, found_while_active]) == sorted(
                [active["id"], paid["id"]]
            )


def test_a_chunk_with_re_projected_loans_checks_both_kinds() -> None:
    """A chunk holding a fixed-schedule loan (closed set-based) and a daily-recalculation one (re-projected one by
    one): the fixed loan's double-booked accrual is found; the re-projected loan's is corrected by its
    re-projection, which posts what its balances lack. On PostgreSQL that correction and the new snapshot wait for
    the commit: the chunk's check, which ran before it, named the corrected loan until it wrote them first."""
    with fresh_world() as (w, db):
        fixed = active_loan(w, principal="1200.00", term=12)
        daily_product = make_product(w, day_count="actual/365", interest_recalculation="daily")
        daily = active_loan(w, principal="1200.00", term=12, product=daily_product)
        with db.transaction() as session:
            today = calendar_repo.business_date(session)
            for loan_id in (fixed["id"], daily["id"]):
                ledger.post(session, EntryDraft("accrual", "USD", today, [LineDraft("1200", 40, 0, loan_id),
                                                                          LineDraft("4000", 0, 40, loan_id)]))
        close(w, today)
        with db.session(writer=False) as session:
            chunks = session.scalars(select(CobChunk).where(CobChunk.business_date == today)).all()
            assert sorted(i for c in chunks for i in c.out_of_balance_ids or []) == [fixed["id"]]
            assert session.get(CobRun, today).loans_out_of_balance == 1
            assert [m.loan_id for m in reconcile.mismatches(session)] == [fixed["id"]]


def test_console_ledger_and_loan_pages_go_by_booking_date(story: tuple[World, Database, dict[str, Any]]) -> None:
    from tests.api.test_console import Console, username

    w, _db, before = story
    auditor = Console(w.client)
    assert auditor.login(username(w, "auditor")).status_code == 200
    page = auditor.get("/console/ledger", params={"as_of": "2025-02-06", "date_from": "2025-02-08",
                                                   "date_to": "2025-02-08"})
    assert page.status_code == 200, page.text[:300]
    assert "Trial balance at the end of 2025-02-06 (USD)" in page.text
    assert "<th scope=\"row\">1100</th><td>Loan portfolio</td><td>asset</td><td class=\"num\">3000.00</td>" in page.text
    # The 02-08 late-fee entry: booked 02-08, value date 02-08, one line per loan.
    assert "<th scope=\"row\">2025-02-08</th><td>2025-02-08</td><td>late_fee" in page.text
    assert auditor.get("/console/ledger", params={"as_of": "bad"}).status_code == 400
    officer = Console(w.client)
    assert officer.login(username(w, "officer_a")).status_code == 200
    assert officer.get("/console/ledger").status_code == 403
    # The loan page's journal holds the loan's close-of-business lines, with booking and value dates.
    loan_page = auditor.get(f"/console/loans/{before['other']['id']}")
    assert loan_page.status_code == 200
    assert "interest accrual 2025-01-02" in loan_page.text and "late fees 2025-02-08" in loan_page.text
