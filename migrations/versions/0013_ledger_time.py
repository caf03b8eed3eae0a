"""Ledger time: journal entries and lines get a booking date beside their value date (effective_date), loan
events the business date they were booked on, close-of-business figures per currency, non-accrual (products'
threshold, loans' accrual status and interest in suspense, account 2120); on PostgreSQL a closed day refuses
new journal entries and lines

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = (
    "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
    "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
)

# A day is closed once close of business advanced the business date past it (CONTRACT "Ledger time"): nothing
# may be booked into it any more. Entries are checked row by row (few per statement); lines, which close of
# business inserts by the million, once per statement over the transition table. The application books on the
# business date it read in its transaction, so the only way here is a write that raced a close of business
# past its date: SQLSTATE 40001 (serialization failure), which the API answers 503 + Retry-After — the retry
# reads the new business date and books there.
CLOSED_DAY_ENTRY_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_entry_closed_day() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE today date := (SELECT business_date FROM business_calendar WHERE id = 1);
BEGIN
    IF NEW.booking_date < today THEN
        RAISE EXCEPTION 'journal entry booked on %, a closed day (the business date is %)', NEW.booking_date, today
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NEW;
END;
$$
"""
CLOSED_DAY_LINES_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_lines_closed_day() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    today date := (SELECT business_date FROM business_calendar WHERE id = 1);
    earliest date := (SELECT MIN(booking_date) FROM new_lines);
BEGIN
    IF earliest < today THEN
        RAISE EXCEPTION 'journal lines booked on %, a closed day (the business date is %)', earliest, today
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN NULL;
END;
$$
"""
CLOSED_DAY_TRIGGERS = (
    "CREATE TRIGGER journal_entries_closed_day BEFORE INSERT ON journal_entries "
    "FOR EACH ROW EXECUTE FUNCTION journal_entry_closed_day()",
    "CREATE TRIGGER journal_lines_closed_day AFTER INSERT ON journal_lines REFERENCING NEW TABLE AS new_lines "
    "FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_closed_day()",
)


def _add_booking_date(table: str, postgres: bool) -> None:
    """Existing entries were booked on their value date (the backfill the brief asks for): add, fill, require."""
    if postgres:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")  # the backfill is an UPDATE
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("booking_date", sa.Date(), nullable=True))
    op.execute(f"UPDATE {table} SET booking_date = effective_date")
    with op.batch_alter_table(table) as batch:
        batch.alter_column("booking_date", existing_type=sa.Date(), nullable=False)
    if postgres:
        op.execute(APPEND_ONLY.format(table=table))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    _add_booking_date("journal_entries", postgres)
    _add_booking_date("journal_lines", postgres)
    op.create_index("ix_journal_entries_booking_date", "journal_entries", ["booking_date"])
    op.create_index("ix_journal_lines_account_booking", "journal_lines", ["account_code", "booking_date"])

    with op.batch_alter_table("loan_events") as batch:
        batch.add_column(sa.Column("booked_on", sa.Date(), nullable=True))
    # Events were appended in order, so an event was booked no earlier than any effective date before it.
    op.execute(
        "UPDATE loan_events SET booked_on = (SELECT MAX(e.effective_date) FROM loan_events e "
        "WHERE e.loan_id = loan_events.loan_id AND e.seq <= loan_events.seq)"
    )
    with op.batch_alter_table("loan_events") as batch:
        batch.alter_column("booked_on", existing_type=sa.Date(), nullable=False)

    for table in ("cob_runs", "cob_chunks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("interest_by_currency", sa.JSON(), nullable=False, server_default="{}"))
            batch.add_column(sa.Column("late_fees_by_currency", sa.JSON(), nullable=False, server_default="{}"))

    # Non-accrual: the product's threshold (copied to the loan), the loan's status and its interest in suspense.
    for table in ("products", "loans"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("non_accrual_after_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("accrual_status", sa.String(16), nullable=False, server_default="accruing"))
        batch.add_column(sa.Column("interest_suspended", sa.BigInteger(), nullable=False, server_default="0"))
    accounts = sa.table(
        "ledger_accounts",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("is_active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        accounts,
        [{"code": "2120", "name": "Interest in suspense", "type": "liability", "is_active": True,
          "created_at": datetime.now(UTC)}],
    )

    if postgres:
        op.execute(CLOSED_DAY_ENTRY_FUNCTION)
        op.execute(CLOSED_DAY_LINES_FUNCTION)
        for statement in CLOSED_DAY_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS journal_lines_closed_day ON journal_lines")
        op.execute("DROP TRIGGER IF EXISTS journal_entries_closed_day ON journal_entries")
        op.execute("DROP FUNCTION IF EXISTS journal_lines_closed_day()")
        op.execute("DROP FUNCTION IF EXISTS journal_entry_closed_day()")
    op.execute("DELETE FROM ledger_accounts WHERE code = '2120'")
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("interest_suspended")
        batch.drop_column("accrual_status")
    for table in ("loans", "products"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("non_accrual_after_days")
    for table in ("cob_chunks", "cob_runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("late_fees_by_currency")
            batch.drop_column("interest_by_currency")
    with op.batch_alter_table("loan_events") as batch:
        batch.drop_column("booked_on")
    op.drop_index("ix_journal_lines_account_booking", table_name="journal_lines")
    op.drop_index("ix_journal_entries_booking_date", table_name="journal_entries")
    for table in ("journal_lines", "journal_entries"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("booking_date")
