"""journal_lines: monthly range partitions by effective_date (PostgreSQL only)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from alembic import op

from app.ledger import partitions

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    "CREATE INDEX ix_journal_lines_entry_id ON journal_lines (entry_id)",
    "CREATE INDEX ix_journal_lines_loan_account ON journal_lines (loan_id, account_code)",
    "CREATE INDEX ix_journal_lines_account_date ON journal_lines (account_code, effective_date)",
)
FOREIGN_KEYS = (
    "ALTER TABLE journal_lines ADD CONSTRAINT fk_journal_lines_entry_id_journal_entries "
    "FOREIGN KEY (entry_id) REFERENCES journal_entries (id)",
    "ALTER TABLE journal_lines ADD CONSTRAINT fk_journal_lines_account_code_ledger_accounts "
    "FOREIGN KEY (account_code) REFERENCES ledger_accounts (code)",
)
TRIGGER = (
    "CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal_lines "
    "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
)


def _swap(create_sql: str, prepare: Callable[[], None] | None = None) -> None:
    """Build the new journal_lines beside the old one, copy the rows, and take its place (one transaction)."""
    op.execute(create_sql)
    if prepare is not None:
        prepare()
    op.execute("INSERT INTO journal_lines_new SELECT * FROM journal_lines")
    op.execute("ALTER SEQUENCE journal_lines_id_seq OWNED BY NONE")
    op.execute("DROP TABLE journal_lines")
    op.execute("ALTER TABLE journal_lines_new RENAME TO journal_lines")
    op.execute("ALTER TABLE journal_lines RENAME CONSTRAINT journal_lines_new_pkey TO pk_journal_lines")
    op.execute("ALTER SEQUENCE journal_lines_id_seq OWNED BY journal_lines.id")
    for statement in (*INDEXES, *FOREIGN_KEYS, TRIGGER):
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The partition key must be part of the primary key; ids still come from the one sequence.
    _swap(
        "CREATE TABLE journal_lines_new (LIKE journal_lines INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        "PRIMARY KEY (id, effective_date)) PARTITION BY RANGE (effective_date)",
        _create_partitions,
    )


def _create_partitions() -> None:
    conn = op.get_bind()
    this_month = partitions.month_start(datetime.now(UTC).date())
    for k in range(-1, partitions.MONTHS_AHEAD + 1):
        partitions.create_month(conn, partitions.add_months(this_month, k), parent="journal_lines_new")
    conn.exec_driver_sql("CREATE TABLE journal_lines_default PARTITION OF journal_lines_new DEFAULT")
    conn.exec_driver_sql(
        "CREATE TRIGGER journal_lines_default_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON journal_lines_default FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _swap(
        "CREATE TABLE journal_lines_new (LIKE journal_lines INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        "PRIMARY KEY (id))"
    )
