"""The write path's SQL budget (issue 15): a current-dated payment is one lock-and-read statement, the pure
projection, and set-based writes — never a scan of the loan's journal history, never a row inserted and then
updated, never one statement per installment. Counted with SQLAlchemy cursor events on both legs."""

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.business_calendar import repository as calendar_repo
from app.database import Database
from app.ledger import repository as ledger_repo
from app.ledger import service as ledger
from app.ledger.entries import EntryDraft, LineDraft
from tests.api.helpers_lending import active_loan, pay
from tests.conftest import LEG, World, unique

# The target is 8. PostgreSQL: the lock (which takes the business date FOR SHARE first, issue 14), then
# one statement of data-modifying CTEs for everything the payment writes (the loan row, its changed installments,
# event and transaction, journal entry and lines, posted balances, audit, idempotency key, outbox:
# app/core/deferred.py). SQLite has no data-modifying CTEs: each table is one statement (in-process calls).
PAYMENT_STATEMENT_BUDGET = 2 if LEG == "postgresql" else 11
# Round trips to PostgreSQL of a whole HTTP payment: BEGIN, the lock, the write, COMMIT — no pre-ping of a
# connection used a moment ago, and the bearer token's user as this worker read it within PRINCIPAL_CACHE_SECONDS
# (when that read is older, one autocommit statement more).
PAYMENT_ROUND_TRIPS = 4


@contextmanager
def statements() -> Iterator[list[tuple[str, bool]]]:
    seen: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool) -> None:
        seen.append((" ".join(statement.split()), executemany))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _payment_statements(seen: list[tuple[str, bool]]) -> list[str]:
    """The statements of the payment's own transaction: not BEGIN, not the bearer token's user lookup."""
    return [s for s, _ in seen if not s.startswith("BEGIN") and not s.startswith("SELECT users.")]


def _post(world: World, loan_id: str, amount: str) -> list[str]:
    with statements() as seen:
        r = world.post("officer_a", f"/api/v1/loans/{loan_id}/payments", {"amount": amount},
                       headers={"Idempotency-Key": unique("stmt-")})
        assert r.status_code == 201, r.text
    return _payment_statements(seen)


def _count(sql: list[str], pattern: str) -> int:
    """How many times a statement or a CTE of one writes what `pattern` names."""
    return sum(len(re.findall(pattern, s)) for s in sql)


def _assert_lean(sql: list[str], extra: int = 0) -> None:
    assert len(sql) <= PAYMENT_STATEMENT_BUDGET + extra, "\n".join(sql)
    assert not any("journal_lines" in s and s.startswith("SELECT") for s in sql), "a write scanned the journal"
    assert _count(sql, r"\bUPDATE loan_transactions\b") == 0, "the transaction row was rewritten"
    assert _count(sql, r"\bINSERT INTO loan_transactions\b") == 1
    assert _count(sql, r"\bUPDATE loan_installments\b") <= 1  # changed rows only, one statement
    assert _count(sql, r"\bUPDATE loans\b") == 1


def test_a_current_dated_payment_stays_within_the_statement_budget(world: World) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    pay(world, loan["id"], "10.00")  # a first payment: the loan has history before the measured one
    _assert_lean(_post(world, loan["id"], "1.00"))


def test_a_prepayment_rewriting_many_installments_is_still_one_installment_statement(world: World) -> None:
    """Paying far ahead (reduce_term) shortens a 36-installment schedule: the dropped installments go in one
    DELETE and the changed ones in one UPDATE, whatever their number; paying installment 1 moves the oldest
    unpaid due date, which the delinquency history records (one row)."""
    loan = active_loan(world, principal="3600.00", term=36)
    sql = _post(world, loan["id"], "2000.00")
    _assert_lean(sql, extra=2)
    assert _count(sql, r"\bINSERT INTO loan_delinquency_history\b") == 1
    assert _count(sql, r"\bDELETE FROM loan_installments\b") == 1


@pytest.mark.skipif(LEG != "postgresql", reason="counts PostgreSQL protocol messages (libpq trace)")
def test_a_payment_over_http_is_four_round_trips_to_postgresql(world: World, db: Database) -> None:
    """Every Query or Sync message the app sends while serving one payment, read from libpq's trace of the
    app's connections: a regression here (a pre-ping, a transaction around the token's user, a statement more)
    costs every payment a round trip."""
    loan = active_loan(world, principal="1200.00", term=12)
    pay(world, loan["id"], "10.00")
    engine = world.client.app.state.db.engine
    settings = world.client.app.state.settings
    cache_seconds, settings.principal_cache_seconds = settings.principal_cache_seconds, 3600.0
    assert world.get("officer_a", "/api/v1/users/me").status_code == 200  # this worker has read officer_a
    traced: list[Any] = []
    with tempfile.TemporaryFile("w+") as trace:

        def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())
            traced.append(dbapi_connection)

        event.listen(engine.pool, "checkout", on_checkout)
        try:
            r = world.post("officer_a", f"/api/v1/loans/{loan['id']}/payments", {"amount": "1.00"},
                           headers={"Idempotency-Key": unique("rt-")})
        finally:
            settings.principal_cache_seconds = cache_seconds
            event.remove(engine.pool, "checkout", on_checkout)
            for connection in traced:
                connection.pgconn.untrace()
        assert r.status_code == 201, r.text
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines()]
    messages = [fields[3] for fields in sent if len(fields) > 3 and fields[1] == "F"]
    assert traced, "no connection was checked out"
    assert messages.count("Query") + messages.count("Sync") <= PAYMENT_ROUND_TRIPS, messages


def test_postings_queued_in_one_transaction_add_up_and_a_rollback_writes_none(world: World, db: Database) -> None:
    """Two postings on the same loan accounts in one transaction: their balance deltas are merged into one upsert
    (PostgreSQL: one statement must not change a row twice), the posted balances equal the journal; a rolled
    back transaction leaves neither entries nor balances."""
    loan = active_loan(world, principal="1200.00", term=12)
    accounts = ("1200", "1210")  # two asset accounts: moving 3.00 from one to the other, twice, then back once
    with db.session(writer=False) as session:
        before = ledger.loan_balances(session, loan["id"])
        today = calendar_repo.business_date(session)

    def draft(debit: str, credit: str, amount: int) -> EntryDraft:
        lines = [LineDraft(debit, amount, 0, loan["id"]), LineDraft(credit, 0, amount, loan["id"])]
        return EntryDraft("adjustment", loan["currency"], today, lines, loan_id=loan["id"])

    with statements() as seen, db.transaction() as session:
        ledger.post(session, draft(accounts[0], accounts[1], 300), today)
        ledger.post(session, draft(accounts[0], accounts[1], 300), today)
        ledger.post(session, draft(accounts[1], accounts[0], 300), today)
    upserts = [s for s, _ in seen if "INSERT INTO loan_account_balances" in s]
    assert len(upserts) == (1 if LEG == "postgresql" else 3)
    with pytest.raises(RuntimeError), db.transaction() as session:
        ledger.post(session, draft(accounts[0], accounts[1], 700), today)
        raise RuntimeError("rolled back")
    with db.session(writer=False) as session:
        after = ledger.loan_balances(session, loan["id"])
        assert after.get(accounts[0], 0) == before.get(accounts[0], 0) + 300
        assert after.get(accounts[1], 0) == before.get(accounts[1], 0) - 300
        assert ledger_repo.posted_balance_mismatches(session, "", "~") == []


def test_queued_updates_of_one_row_merge_and_never_miss_a_row_queued_for_insert(world: World, db: Database) -> None:
    """Two updates of one installment naming different columns are one row of one UPDATE (PostgreSQL applies
    only one of two matches of a row in a statement); an update of a row still queued for insert writes the queue
    first (the CTEs of one statement share a snapshot, so the update would not see it). Both legs end equal."""
    from sqlalchemy import Table, select

    from app.core import deferred
    from app.loans.models import LoanInstallment

    loan = active_loan(world, principal="1200.00", term=12)
    table = LoanInstallment.__table__
    assert isinstance(table, Table)
    with db.session(writer=False) as session:
        last = session.execute(select(table).where(table.c.loan_id == loan["id"]).order_by(table.c.number.desc())).first()
    assert last is not None
    extra = {**last._asdict(), "number": last.number + 1, "due_date": last.due_date.replace(year=last.due_date.year + 1)}
    with statements() as seen, db.transaction() as session:
        deferred.update_rows(session, table, ("loan_id", "number"), [{"loan_id": loan["id"], "number": 1, "fees": 7}])
        deferred.update_rows(session, table, ("loan_id", "number"),
                             [{"loan_id": loan["id"], "number": 1, "penalties": 11, "fees": 8}])
        deferred.insert_rows(session, table, [extra])
        deferred.update_rows(session, table, ("loan_id", "number"),
                             [{"loan_id": loan["id"], "number": extra["number"], "fees": 5}])
    with db.session(writer=False) as session:
        rows = {r.number: r for r in session.execute(select(table).where(table.c.loan_id == loan["id"]))}
    assert (rows[1].fees, rows[1].penalties) == (8, 11)
    assert rows[extra["number"]].fees == 5
    if LEG == "postgresql":
        written = [s for s, _ in seen if "loan_installments" in s]
        assert len(written) == 2, written  # the insert (with the first updates), then the late update
        assert _count(written, r"\bUPDATE loan_installments\b") == 2
