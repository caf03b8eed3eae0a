"""journal_lines on PostgreSQL: what its foreign keys checked row by row (the line's entry and account exist) is
checked once per statement, set-based, by a trigger over the statement's new lines; ledger accounts in use can
no longer be deleted, renamed or truncated (what the account key's NO ACTION did). A row-by-row reference check
cost two lookups per line: half the time of close of business's insert of a million loans' accrual lines.
Journal entries are append-only (migration 0003), so an entry a line names can never go away.
Also drops ix_journal_lines_account_date: no query reads lines by account and value date (the ledger goes by
booking date, ix_journal_lines_account_booking), and every line paid for it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINE_REFERENCES_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_lines_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
    accounts integer := (SELECT COUNT(DISTINCT account_code) FROM new_lines);
    locked integer;
BEGIN
    SELECT n.entry_id INTO missing FROM (SELECT DISTINCT entry_id FROM new_lines) n
        WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.id = n.entry_id) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal lines name entry %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- FOR KEY SHARE, as a foreign key's check: a concurrent delete or rename of an account waits for this
    -- transaction (and then finds its lines), and one that committed first leaves its row out of the count.
    SELECT COUNT(*) INTO locked FROM (SELECT a.code FROM ledger_accounts a
        WHERE a.code IN (SELECT account_code FROM new_lines) FOR KEY SHARE) held;
    IF locked < accounts THEN
        SELECT n.account_code INTO missing FROM (SELECT DISTINCT account_code FROM new_lines) n
            WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.code = n.account_code) LIMIT 1;
        RAISE EXCEPTION 'journal lines name account %, which does not exist', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$
"""
ACCOUNT_IN_USE_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_account_in_use() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM journal_lines) THEN
            RAISE EXCEPTION 'ledger accounts are in use by journal lines' USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END IF;
    IF (TG_OP = 'DELETE' OR NEW.code IS DISTINCT FROM OLD.code)
        AND EXISTS (SELECT 1 FROM journal_lines WHERE account_code = OLD.code) THEN
        RAISE EXCEPTION 'ledger account % is in use by journal lines', OLD.code
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$
"""


def upgrade() -> None:
    op.drop_index("ix_journal_lines_account_date", table_name="journal_lines")
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite checks its foreign keys in-process, row by row, at no comparable cost
    op.execute("ALTER TABLE journal_lines DROP CONSTRAINT fk_journal_lines_entry_id_journal_entries")
    op.execute("ALTER TABLE journal_lines DROP CONSTRAINT fk_journal_lines_account_code_ledger_accounts")
    op.execute(LINE_REFERENCES_FUNCTION)
    op.execute(
        "CREATE TRIGGER journal_lines_references AFTER INSERT ON journal_lines REFERENCING NEW TABLE AS new_lines "
        "FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_references()"
    )
    op.execute(ACCOUNT_IN_USE_FUNCTION)
    op.execute(
        "CREATE TRIGGER ledger_accounts_in_use BEFORE DELETE OR UPDATE OF code ON ledger_accounts "
        "FOR EACH ROW EXECUTE FUNCTION ledger_account_in_use()"
    )
    op.execute(
        "CREATE TRIGGER ledger_accounts_truncate BEFORE TRUNCATE ON ledger_accounts "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_account_in_use()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_truncate ON ledger_accounts")
        op.execute("DROP TRIGGER IF EXISTS ledger_accounts_in_use ON ledger_accounts")
        op.execute("DROP FUNCTION IF EXISTS ledger_account_in_use()")
        op.execute("DROP TRIGGER IF EXISTS journal_lines_references ON journal_lines")
        op.execute("DROP FUNCTION IF EXISTS journal_lines_references()")
        op.execute(
            "ALTER TABLE journal_lines ADD CONSTRAINT fk_journal_lines_entry_id_journal_entries "
            "FOREIGN KEY (entry_id) REFERENCES journal_entries (id)"
        )
        op.execute(
            "ALTER TABLE journal_lines ADD CONSTRAINT fk_journal_lines_account_code_ledger_accounts "
            "FOREIGN KEY (account_code) REFERENCES ledger_accounts (code)"
        )
    op.create_index("ix_journal_lines_account_date", "journal_lines", ["account_code", "effective_date"])
