"""loanctl verify-ledger and seed-demo, run as real subprocesses against a fresh database of the leg (a SQLite file
or a throwaway PostgreSQL database), plus the PostgreSQL guard that makes the journal append-only."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError

from app.business_calendar.repository import business_date
from app.core.orm import utcnow
from app.database import Database, init_db
from app.ledger.models import JournalEntry, JournalLine
from app.loans.models import Loan
from tests.conftest import LEG, PASSWORD, create_pg_database, drop_pg_database, pg_url, require_postgres

postgres_only = pytest.mark.skipif(LEG != "postgresql", reason="PostgreSQL leg only")


def loanctl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    env.pop("ADMIN_PASSWORD", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of this leg; never the session database, which other tests need balanced."""
    if LEG == "postgresql":
        require_postgres()
        name = create_pg_database("loans_cli")
        try:
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        yield f"sqlite:///{tmp_path}/cli.db"


def test_seed_demo_then_verify_ledger_passes_and_a_second_seed_changes_nothing(fresh_url: str) -> None:
    seeded = loanctl(fresh_url, "seed-demo")
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    for role in ("admin", "manager", "officer", "auditor"):
        assert f"demo-{role}" in seeded.stdout
    for status in ("submitted", "approved", "active", "closed", "written_off", "rejected", "withdrawn"):
        assert status in seeded.stdout

    db = Database(fresh_url)
    try:
        with db.session(writer=False) as session:
            statuses = sorted(session.scalars(select(Loan.status)).all())
            counts = session.execute(select(func.count()).select_from(JournalLine)).scalar_one()
    finally:
        db.dispose()
    assert statuses == sorted(["submitted", "approved", "active", "closed", "written_off", "rejected", "withdrawn"])
    assert counts > 0

    verified = loanctl(fresh_url, "verify-ledger")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger OK" in verified.stdout and "USD" in verified.stdout

    again = loanctl(fresh_url, "seed-demo")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already exists" in again.stdout
    db = Database(fresh_url)
    try:
        with db.session(writer=False) as session:
            assert sorted(session.scalars(select(Loan.status)).all()) == statuses
    finally:
        db.dispose()


def test_seed_demo_with_a_given_password_never_prints_it(fresh_url: str) -> None:
    r = loanctl(fresh_url, "seed-demo", "--password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    existing = loanctl(fresh_url, "create-user", "demo-manager", "--role", "manager", "--password", PASSWORD)
    assert existing.returncode == 1 and "already exists" in existing.stderr
    short = loanctl(fresh_url, "seed-demo", "--password", "short")
    assert short.returncode == 2 and "12 characters" in short.stderr


def test_verify_ledger_on_an_empty_ledger_passes(fresh_url: str) -> None:
    init_db(fresh_url)
    r = loanctl(fresh_url, "verify-ledger")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ledger OK" in r.stdout


def test_verify_ledger_fails_and_lists_an_unbalanced_entry(fresh_url: str) -> None:
    """Written straight into the tables, bypassing ledger.post (the only writer, which refuses this)."""
    init_db(fresh_url)
    db = Database(fresh_url)
    try:
        with db.transaction() as session:
            today = business_date(session)  # booked today: PostgreSQL refuses anything booked into a closed day
            entry_id = session.execute(
                insert(JournalEntry)
                .values(entry_type="manual", currency="USD", effective_date=date(2024, 1, 2), booking_date=today,
                        posted_at=utcnow(), description="tampered")
                .returning(JournalEntry.id)
            ).scalar_one()
            session.execute(insert(JournalLine).values(entry_id=entry_id, account_code="1000", currency="USD",
                                                       effective_date=date(2024, 1, 2), booking_date=today,
                                                       debit=12345, credit=0))
    finally:
        db.dispose()
    r = loanctl(fresh_url, "verify-ledger")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"entry {entry_id} does not balance" in r.stderr
    assert "USD: total debits 12345 != total credits 0" in r.stderr


def test_verify_ledger_on_an_unmigrated_database_is_a_clear_error(fresh_url: str) -> None:
    r = loanctl(fresh_url, "verify-ledger")
    assert r.returncode == 2 and "migrated" in r.stderr, r.stdout + r.stderr


@pytest.fixture(scope="module")
def seeded_pg_url() -> Iterator[str]:
    require_postgres()
    name = create_pg_database("loans_cli")
    try:
        url = pg_url(name)
        assert loanctl(url, "seed-demo").returncode == 0
        yield url
    finally:
        drop_pg_database(name)


@postgres_only
@pytest.mark.parametrize("statement", [
    "UPDATE journal_lines SET debit = debit + 1 WHERE debit > 0",
    "DELETE FROM journal_lines",
    "TRUNCATE journal_lines",
    "UPDATE journal_entries SET description = 'edited'",
    "DELETE FROM journal_entries",
])
def test_postgres_refuses_to_edit_the_journal(seeded_pg_url: str, statement: str) -> None:
    db = Database(seeded_pg_url)
    try:
        with db.session(writer=False) as session:
            before = session.execute(select(func.count()).select_from(JournalLine)).scalar_one()
        with pytest.raises(DBAPIError, match="append-only"), db.transaction() as session:
            session.execute(text(statement))
        with db.session(writer=False) as session:
            assert session.execute(select(func.count()).select_from(JournalLine)).scalar_one() == before > 0
    finally:
        db.dispose()


def test_verify_ledger_names_a_loan_whose_lines_differ_from_its_balances(fresh_url: str) -> None:
    """A balanced entry that double-books a day's accrual on one loan: the books balance, the loan does not."""
    seeded = loanctl(fresh_url, "seed-demo")
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    db = Database(fresh_url)
    try:
        with db.transaction() as session:
            loan_id = session.scalars(select(Loan.id).where(Loan.status == "active").order_by(Loan.id)).first()
            today = business_date(session)
            entry_id = session.execute(
                insert(JournalEntry)
                .values(entry_type="accrual", currency="USD", effective_date=date(2024, 1, 2), booking_date=today,
                        posted_at=utcnow(), description="the same day's accrual again")
                .returning(JournalEntry.id)
            ).scalar_one()
            for code, debit, credit in (("1200", 307, 0), ("4000", 0, 307)):
                session.execute(insert(JournalLine).values(entry_id=entry_id, account_code=code, loan_id=loan_id,
                                                           currency="USD", effective_date=date(2024, 1, 2),
                                                           booking_date=today, debit=debit, credit=credit))
    finally:
        db.dispose()
    r = loanctl(fresh_url, "verify-ledger")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"loan {loan_id}: account 1200 holds" in r.stderr and "does not balance" not in r.stderr


def test_verify_ledger_names_a_posted_balance_that_differs_from_the_journal(fresh_url: str) -> None:
    """Posted balances are what every write reads instead of summing the journal: a drift between the two is
    named per loan and account, and verify-ledger fails."""
    seeded = loanctl(fresh_url, "seed-demo")
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert loanctl(fresh_url, "verify-ledger").returncode == 0
    db = Database(fresh_url)
    try:
        with db.transaction() as session:
            loan_id = session.scalars(select(Loan.id).where(Loan.status == "active").order_by(Loan.id)).first()
            journal = session.execute(
                select(func.sum(JournalLine.debit - JournalLine.credit))
                .where(JournalLine.loan_id == loan_id, JournalLine.account_code == "1100")
            ).scalar_one()
            posted = session.execute(
                text("SELECT balance FROM loan_account_balances WHERE loan_id = :l AND account_code = '1100'"),
                {"l": loan_id},
            ).scalar_one()
            assert posted == journal > 0  # kept equal by every writer, close of business included
            session.execute(
                text("UPDATE loan_account_balances SET balance = balance + 1 WHERE loan_id = :l "
                     "AND account_code = '1100'"),
                {"l": loan_id},
            )
    finally:
        db.dispose()
    r = loanctl(fresh_url, "verify-ledger")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"loan {loan_id}: account 1100 has posted balance" in r.stderr
