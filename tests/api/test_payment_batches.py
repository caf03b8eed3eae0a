"""CSV payment batches: 202 with an id, posted by the events worker in chunks, per-row results with reasons,
idempotent by external_id (a re-upload posts nothing), a results CSV; and the 10,000-row file."""

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from app.database import Database
from app.events.worker import run_until_idle
from app.identity.access import Principal, Role
from app.ledger import service as ledger
from app.loans import reconcile, servicing
from app.loans.models import LoanTransaction
from app.loans.schemas import PaymentIn
from tests.api.helpers_lending import active_loan
from tests.api.test_webhooks import worker_settings
from tests.conftest import LEG, World, assert_problem, fresh_world

BATCHES = "/api/v1/payment-batches"


@pytest.fixture(scope="module")
def lender() -> Iterator[tuple[World, Database]]:
    with fresh_world() as pair:
        yield pair


def upload(w: World, text: str, who: str = "officer_a") -> Any:
    return w.client.post(BATCHES, content=text.encode(), headers=w.h(who, **{"Content-Type": "text/csv"}))


def payments(db: Database) -> int:
    with db.session(writer=False) as session:
        return int(session.scalar(select(func.count()).select_from(LoanTransaction).where(
            LoanTransaction.type == "repayment")) or 0)


def test_a_batch_posts_good_rows_fails_bad_ones_alone_and_a_reupload_posts_nothing(
    lender: tuple[World, Database],
) -> None:
    w, db = lender
    a, b = active_loan(w), active_loan(w)
    other_branch = active_loan(w, branch="B")
    text = (
        "loan_id,amount,date,external_id\n"
        f"{a['id']},10.00,,EXT-A-1\n"
        f"{b['id']},20.50,,EXT-B-1\n"
        f"nope,5.00,,EXT-X-1\n"
        f"{a['id']},1e5,,EXT-A-2\n"
        f"{a['id']},12.00,,\n"
        f"{b['id']},3.00,,EXT-B-1\n"
        f"{a['id']},-5,,EXT-A-3\n"
        f"{a['id']},1.001,,EXT-A-4\n"
        f"{a['id']},4.00,2999-01-01,EXT-A-5\n"
        f"{other_branch['id']},4.00,,EXT-OB-1\n"
        f"{a['id']},7.00,,EXT-A-6\n"
    )
    before = payments(db)
    r = upload(w, text)
    assert r.status_code == 202, r.text
    assert r.json()["rows"] == 11 and r.json()["status"] == "processing"
    batch_id = r.json()["id"]
    run_until_idle(db, worker_settings(db, payment_batch_chunk_rows=4), timeout=60)
    got = w.get("officer_a", f"{BATCHES}/{batch_id}").json()
    assert (got["status"], got["succeeded"], got["failed"], got["pending"]) == ("done", 3, 8, 0)
    by_row = {x["row"]: x for x in got["results"]}
    assert [by_row[n]["status"] for n in range(1, 12)] == [
        "succeeded", "succeeded", "failed", "failed", "failed", "failed", "failed", "failed", "failed", "failed",
        "succeeded",
    ]
    assert by_row[3]["error"] == "loan not found"
    assert "amount" in by_row[4]["error"] and "external_id" in by_row[5]["error"]
    assert "repeats row 2" in by_row[6]["error"] and "greater than 0" in by_row[7]["error"]
    assert "decimals" in by_row[8]["error"] and "business date" in by_row[9]["error"]
    assert by_row[10]["error"] == "loan not found", "an officer's batch reaches only its own branch"
    assert payments(db) == before + 3
    tx = w.get("manager", f"/api/v1/loans/{a['id']}/transactions").json()["items"]
    assert {t["external_id"] for t in tx if t["type"] == "repayment"} == {"EXT-A-1", "EXT-A-6"}

    again = upload(w, text)
    run_until_idle(db, worker_settings(db), timeout=60)
    second = w.get("officer_a", f"{BATCHES}/{again.json()['id']}").json()
    assert [x["status"] for x in second["results"] if x["status"] != "failed"] == ["duplicate"] * 3
    assert {x["transaction_id"] for x in second["results"] if x["status"] == "duplicate"} == {
        by_row[1]["transaction_id"], by_row[2]["transaction_id"], by_row[11]["transaction_id"]
    }
    assert payments(db) == before + 3, "a re-upload posts nothing"

    failed = w.get("officer_a", f"{BATCHES}/{batch_id}", params={"status": "failed"}).json()["results"]
    assert len(failed) == 8
    csv_text = w.get("officer_a", f"{BATCHES}/{batch_id}/results.csv")
    assert csv_text.headers["content-type"].startswith("text/csv")
    lines = csv_text.text.splitlines()
    assert lines[0] == "row,loan,amount,date,external_id,status,transaction_id,error" and len(lines) == 12
    # One CSV rule for every download (app/core/csvout.py): a plain number such as -5 stays a number, anything
    # else a spreadsheet would run as a formula gets a leading apostrophe.
    assert ",-5," in lines[7]
    assert all(not cell.startswith(("=", "+", "@")) for line in lines for cell in line.split(","))


def test_a_loans_rows_post_in_one_transaction_or_not_at_all(lender: tuple[World, Database]) -> None:
    """The grouped path the worker uses: every payment of the group, or (one of them failing) none."""
    w, db = lender
    loan = active_loan(w)
    manager = Principal(w.users["manager"], "manager", Role.manager, w.branches["A"])
    before = payments(db)
    ok = [PaymentIn(amount=Decimal("2.00"), external_id=f"GRP-{n}") for n in range(3)]
    future = PaymentIn(amount=Decimal("2.00"), date=date(2999, 1, 1), external_id="GRP-F")
    assert servicing.record_payments(db, manager, loan["id"], [*ok[:2], future, ok[2]]) is None
    assert payments(db) == before, "a failing group writes nothing"
    ids = servicing.record_payments(db, manager, loan["id"], ok)
    assert ids is not None and len(set(ids)) == 3 and payments(db) == before + 3
    # Posted in the given order: the answered ids are the payments' in order, and so are their events.
    # (The transactions list pages by id, a random UUID: its order says nothing about posting order.)
    body = w.get("manager", f"/api/v1/loans/{loan['id']}/transactions").json()
    assert sorted(t["external_id"] for t in body["items"] if t["type"] == "repayment") == ["GRP-0", "GRP-1", "GRP-2"]
    with db.session(writer=False) as session:
        posted = {
            tx_id: (external_id, seq)
            for tx_id, external_id, seq in session.execute(
                select(LoanTransaction.id, LoanTransaction.external_id, LoanTransaction.event_seq).where(
                    LoanTransaction.id.in_(ids)
                )
            )
        }
    assert [posted[i][0] for i in ids] == ["GRP-0", "GRP-1", "GRP-2"]
    assert [posted[i][1] for i in ids] == sorted(posted[i][1] for i in ids)
    assert w.get("manager", f"/api/v1/loans/{loan['id']}").json()["version"] == loan["version"] + 3
    with db.session(writer=False) as session:
        assert [str(m) for m in reconcile.mismatches(session)] == [], "each payment's entry matches the loan"
    assert ledger.verify(db) == [], "posted balances equal the journal"


def test_bad_files_and_access(lender: tuple[World, Database]) -> None:
    w, _ = lender
    assert_problem(upload(w, "loan_id,amount\nx,1\n"), 422, "header")
    assert_problem(upload(w, "loan_id,amount,external_id\n"), 422, "body")
    assert_problem(upload(w, ""), 422)
    r = w.client.post(BATCHES, content=b"\xff\xfe\x00bad", headers=w.h("officer_a", **{"Content-Type": "text/csv"}))
    assert_problem(r, 422, "body")
    assert_problem(upload(w, "loan_id,amount,external_id\nx,1,e\n", who="auditor"), 403)
    ok = upload(w, "loan_id,amount,external_id\nx,1,e-access\n")
    assert ok.status_code == 202
    assert_problem(w.get("officer_b", f"{BATCHES}/{ok.json()['id']}"), 404)
    assert w.get("manager", f"{BATCHES}/{ok.json()['id']}").status_code == 200
    assert_problem(w.get("manager", f"{BATCHES}/nope"), 404)
    listed = w.get("officer_a", BATCHES).json()
    assert ok.json()["id"] in [b["id"] for b in listed["items"]] and listed["next_cursor"] is None
    assert ok.json()["id"] not in [b["id"] for b in w.get("officer_b", BATCHES).json()["items"]]
    assert_problem(w.get("manager", f"{BATCHES}/{ok.json()['id']}", params={"status": "weird"}), 422)
    big = "loan_id,amount,external_id\n" + "x" * (9 * 1024 * 1024)
    assert_problem(upload(w, big), 413)


# The full file on the SQLite leg; the PostgreSQL leg posts a tenth of it (same shape, 1 % bad rows) to keep
# the suite's wall time reasonable — every row is a full payment transaction (see the benchmark for rates).
TOTAL = 10_000 if LEG == "sqlite" else 1_000


def test_ten_thousand_rows_with_a_hundred_bad_ones() -> None:
    good, n_bad = TOTAL - TOTAL // 100, TOTAL // 100
    with fresh_world() as (w, db):
        loans = [active_loan(w, principal="9000.00", term=24)["id"] for _ in range(50)]
        lines = ["loan_id,amount,date,external_id"]
        bad: set[int] = set()
        for n in range(1, TOTAL + 1):
            if n % 100 == 0:
                bad.add(n)
                lines.append(f"{loans[n % 50]},abc,,BIG-{n}")
            else:
                lines.append(f"{loans[n % 50]},1.00,,BIG-{n}")
        text = "\n".join(lines) + "\n"
        r = upload(w, text, who="manager")
        assert r.status_code == 202 and r.json()["rows"] == TOTAL
        started = time.perf_counter()
        run_until_idle(db, worker_settings(db, payment_batch_chunk_rows=500), timeout=600)
        elapsed = time.perf_counter() - started
        got = w.get("manager", f"{BATCHES}/{r.json()['id']}").json()
        assert (got["status"], got["succeeded"], got["failed"]) == ("done", good, n_bad), elapsed
        assert {x["row"] for x in got["results"] if x["status"] == "failed"} == bad
        assert all("amount" in x["error"] for x in got["results"] if x["status"] == "failed")
        assert payments(db) == good
        again = upload(w, text, who="manager")
        run_until_idle(db, worker_settings(db, payment_batch_chunk_rows=2_000), timeout=600)
        second = w.get("manager", f"{BATCHES}/{again.json()['id']}").json()
        assert (second["succeeded"], second["failed"]) == (good, n_bad)
        assert {x["status"] for x in second["results"]} == {"duplicate", "failed"}
        assert payments(db) == good, "the re-upload posted nothing"
        print(f"\n{TOTAL}-row batch posted in {elapsed:.1f} s ({good / elapsed:.0f} rows/s)")
