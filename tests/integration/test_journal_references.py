"""A journal line names an entry and an account that exist, and an account in use stays: foreign keys on
SQLite, a per-statement trigger on PostgreSQL (migration 0019) — the same refusals either way."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.business_calendar import repository as calendar_repo
from app.database import Database
from app.ledger import service as ledger
from app.ledger.entries import EntryDraft, LineDraft
from tests.conftest import LEG, fresh_database

LINE = (
    "INSERT INTO journal_lines (entry_id, account_code, loan_id, currency, effective_date, booking_date, debit, "
    "credit) SELECT {entry}, {account}, NULL, 'USD', booking_date, booking_date, 1, 0 FROM journal_entries LIMIT 1"
)


@pytest.fixture
def db_with_an_entry() -> Database:
    with fresh_database() as url:
        db = Database(url)
        with db.transaction() as session:
            today = calendar_repo.business_date(session)
            ledger.post(session, EntryDraft("adjustment", "USD", today, [LineDraft("1000", 5, 0), LineDraft("4000", 0, 5)]))
        yield db
        db.dispose()


@pytest.mark.parametrize(
    "entry, account, missing",
    [("'no-such-entry'", "'1000'", "no-such-entry"), ("id", "'9999'", "9999")],
    ids=["entry", "account"],
)
def test_a_line_naming_what_does_not_exist_is_refused(
    db_with_an_entry: Database, entry: str, account: str, missing: str
) -> None:
    with db_with_an_entry.engine.begin() as conn, pytest.raises(IntegrityError) as raised:
        conn.execute(text(LINE.format(entry=entry, account=account)))
    if LEG == "postgresql":
        assert raised.value.orig is not None and raised.value.orig.sqlstate == "23503"
        assert missing in str(raised.value.orig)
    with db_with_an_entry.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM journal_lines")).scalar() == 2  # nothing was written


def test_lines_naming_what_exists_are_accepted_in_one_statement(db_with_an_entry: Database) -> None:
    with db_with_an_entry.engine.begin() as conn:
        conn.execute(text(LINE.format(entry="id", account="'1000'")))
    with db_with_an_entry.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM journal_lines")).scalar() == 3


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM ledger_accounts WHERE code = '1000'",
        "UPDATE ledger_accounts SET code = '1001' WHERE code = '1000'",
        "TRUNCATE ledger_accounts",
    ],
)
def test_an_account_in_use_cannot_go_away(db_with_an_entry: Database, statement: str) -> None:
    if LEG != "postgresql" and statement.startswith("TRUNCATE"):
        pytest.skip("SQLite has no TRUNCATE")
    with db_with_an_entry.engine.begin() as conn, pytest.raises((IntegrityError, DBAPIError)):
        conn.execute(text(statement))
    with db_with_an_entry.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM ledger_accounts WHERE code = '1000'")).scalar() == 1


def test_an_account_without_lines_can_be_renamed(db_with_an_entry: Database) -> None:
    with db_with_an_entry.engine.begin() as conn:
        unused = conn.execute(
            text("SELECT code FROM ledger_accounts a WHERE NOT EXISTS "
                 "(SELECT 1 FROM journal_lines l WHERE l.account_code = a.code) ORDER BY code LIMIT 1")
        ).scalar_one()
        conn.execute(text("UPDATE ledger_accounts SET name = 'renamed' WHERE code = :c"), {"c": unused})
        conn.execute(text("UPDATE ledger_accounts SET code = 'X9' WHERE code = :c"), {"c": unused})


@pytest.mark.skipif(LEG != "postgresql", reason="row locks of the per-statement check are PostgreSQL's")
def test_an_account_cannot_be_deleted_under_lines_not_yet_committed(db_with_an_entry: Database) -> None:
    """As with a foreign key: the lines' statement holds its accounts FOR KEY SHARE until it commits, so a
    concurrent delete waits (here: times out) instead of orphaning them, and afterwards finds them."""
    engine = db_with_an_entry.engine
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ledger_accounts (code, name, type, is_active, created_at) "
                          "VALUES ('T77', 'test', 'asset', TRUE, now())"))
    with engine.connect() as writer, engine.connect() as deleter:
        writer.begin()
        writer.execute(text(LINE.format(entry="id", account="'T77'")))  # not committed yet
        deleter.begin()
        deleter.execute(text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            deleter.execute(text("DELETE FROM ledger_accounts WHERE code = 'T77'"))
        deleter.rollback()
        writer.commit()
        with pytest.raises(IntegrityError, match="in use"), deleter.begin():
            deleter.execute(text("DELETE FROM ledger_accounts WHERE code = 'T77'"))
