"""journal_lines is range-partitioned by month on PostgreSQL: inserts land in the right partition, a far
backdated line lands in DEFAULT, partitions stay append-only, and close of business creates months ahead."""

from datetime import date

import pytest
from sqlalchemy import text

from app.database import Database
from app.ledger import partitions
from app.ledger import service as ledger
from app.ledger.entries import EntryDraft, LineDraft
from tests.conftest import LEG, fresh_database

pytestmark = pytest.mark.skipif(LEG != "postgresql", reason="partitioning is a PostgreSQL feature")


def _post(db: Database, on: date) -> str:
    with db.transaction() as s:
        return ledger.post(s, EntryDraft("test", "USD", on, [LineDraft("1000", 100, 0), LineDraft("4000", 0, 100)]))


def _partitions_of(db: Database, entry_id: str) -> set[str]:
    with db.session(writer=False) as s:
        rows = s.execute(text("SELECT DISTINCT tableoid::regclass::text FROM journal_lines WHERE entry_id = :e"),
                         {"e": entry_id}).scalars().all()
    return set(rows)


def test_lines_land_in_their_month_and_far_dates_in_default() -> None:
    with fresh_database() as url:
        db = Database(url)
        try:
            with db.transaction() as s:
                partitions.ensure_months(s, date(2031, 1, 15))
            jan, feb = _post(db, date(2031, 1, 31)), _post(db, date(2031, 2, 1))
            old = _post(db, date(1999, 12, 31))
            assert _partitions_of(db, jan) == {"journal_lines_y2031m01"}
            assert _partitions_of(db, feb) == {"journal_lines_y2031m02"}
            assert _partitions_of(db, old) == {"journal_lines_default"}
            problems = ledger.verify(db)
            assert problems == []
            with db.session(writer=False) as s:
                total = s.execute(text("SELECT SUM(debit) - SUM(credit) FROM journal_lines")).scalar_one()
            assert total == 0
        finally:
            db.dispose()


@pytest.mark.parametrize("statement", [
    "UPDATE journal_lines SET debit = debit",
    "DELETE FROM journal_lines",
    "UPDATE journal_lines_y2031m01 SET debit = debit",
    "DELETE FROM journal_lines_default",
    "TRUNCATE journal_lines_y2031m01",
])
def test_partitions_are_append_only(statement: str) -> None:
    with fresh_database() as url:
        db = Database(url)
        try:
            with db.transaction() as s:
                partitions.ensure_months(s, date(2031, 1, 1))
            _post(db, date(2031, 1, 10))
            with pytest.raises(Exception, match="append-only"), db.transaction() as s:
                s.execute(text(statement))
        finally:
            db.dispose()
