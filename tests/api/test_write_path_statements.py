"""The write path's SQL budget (issue 15): a current-dated payment is one lock-and-read statement, the pure
projection, and set-based writes — never a scan of the loan's journal history, never a row inserted and then
updated, never one statement per installment. Counted with SQLAlchemy cursor events on both legs."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

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
