"""The write path's SQL budget (issue 15): a current-dated payment is one lock-and-read statement, the pure
projection, and set-based writes — never a scan of the loan's journal history, never a row inserted and then
updated, never one statement per installment. Counted with SQLAlchemy cursor events on both legs."""

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

# The target is 8. PostgreSQL: the lock (which takes the business date FOR SHARE first, issue 14), the
# changed installments, the loan, its event and transaction (the ORM's flush), then one statement of
# data-modifying CTEs for everything the payment only writes (journal entry and lines, posted balances, audit,
# idempotency key, outbox). SQLite has no data-modifying CTEs: those five tables are one statement each.
PAYMENT_STATEMENT_BUDGET = 6 if LEG == "postgresql" else 11


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


def _assert_lean(sql: list[str], extra: int = 0) -> None:
    assert len(sql) <= PAYMENT_STATEMENT_BUDGET + extra, "\n".join(sql)
    assert not any("journal_lines" in s and s.startswith("SELECT") for s in sql), "a write scanned the journal"
    assert not any(s.startswith("UPDATE loan_transactions") for s in sql), "the transaction row was rewritten"
    assert sum(s.startswith("INSERT INTO loan_transactions") for s in sql) == 1
    assert sum(s.startswith("UPDATE loan_installments") for s in sql) <= 1  # changed rows only, one statement
    assert sum(s.startswith("UPDATE loans ") for s in sql) == 1


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
    assert sum(s.startswith("INSERT INTO loan_delinquency_history") for s in sql) == 1
    assert sum(s.startswith("DELETE FROM loan_installments") for s in sql) == 1
    assert any(s.startswith("UPDATE loan_installments") or s.startswith("DELETE FROM loan_installments")
               for s in sql)


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
