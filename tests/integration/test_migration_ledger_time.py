"""Migration 0013 on a database with a journal: existing entries and lines are booked on their value date, the
journal stays append-only on PostgreSQL, and nothing can be booked into a closed day afterwards."""

import sqlalchemy as sa
from alembic import command

from app.database import alembic_config
from tests.conftest import LEG, drop_pg_database
from tests.integration.test_migrations import _fresh_url

ENTRY = "00000000-0000-5000-8000-00000000e001"


def test_existing_entries_are_booked_on_their_value_date(tmp_path: object) -> None:
    url, name = _fresh_url(tmp_path)
    try:
        cfg = alembic_config(url)
        command.upgrade(cfg, "0010")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO journal_entries (id, entry_type, currency, effective_date, posted_at, description) "
                "VALUES (:id, 'disbursement', 'USD', '2024-01-05', CURRENT_TIMESTAMP, '')"), {"id": ENTRY})
            conn.execute(sa.text(
                "INSERT INTO journal_lines (entry_id, account_code, currency, effective_date, debit, credit) VALUES "
                "(:id, '1100', 'USD', '2024-01-05', 500, 0), (:id, '1000', 'USD', '2024-01-05', 0, 500)"),
                {"id": ENTRY})
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            entry = conn.execute(sa.text("SELECT booking_date, effective_date FROM journal_entries")).one()
            assert str(entry[0]) == str(entry[1]) == "2024-01-05"
            lines = conn.execute(sa.text("SELECT DISTINCT booking_date FROM journal_lines")).scalars().all()
            assert [str(d) for d in lines] == ["2024-01-05"]
            assert conn.execute(sa.text("SELECT name FROM ledger_accounts WHERE code = '2120'")).scalar_one() \
                == "Interest in suspense"
        if LEG == "postgresql":
            for statement in ("UPDATE journal_lines SET debit = debit", "UPDATE journal_entries SET description = ''"):
                with engine.connect() as conn:
                    try:
                        conn.execute(sa.text(statement))
                    except sa.exc.DBAPIError as exc:
                        assert "append-only" in str(exc)
                    else:
                        raise AssertionError(f"{statement} was allowed")
        engine.dispose()
    finally:
        if name:
            drop_pg_database(name)
