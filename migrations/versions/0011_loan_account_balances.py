"""loan_account_balances: posted balances per loan and account, maintained by every ledger writer (the write
path reads them instead of summing the loan's journal lines); backfilled from the journal.
loan_delinquency_history.overdue_since: past reports derive DPD like current ones (PAR_N = DPD > N).
loan_checkpoints: recent projection states, so a backdated event resumes instead of replaying the log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_account_balances",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("account_code", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("loan_id", "account_code", name=op.f("pk_loan_account_balances")),
    )
    op.execute(
        "INSERT INTO loan_account_balances (loan_id, account_code, balance) "
        "SELECT loan_id, account_code, SUM(debit - credit) FROM journal_lines WHERE loan_id IS NOT NULL "
        "GROUP BY loan_id, account_code"
    )


    with op.batch_alter_table("loan_delinquency_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overdue_since", sa.Date(), nullable=True))
    op.create_table(
        "loan_checkpoints",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("terms_key", sa.String(length=32), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_loan_checkpoints_loan_id_loans")),
        sa.PrimaryKeyConstraint("loan_id", "as_of", name=op.f("pk_loan_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("loan_checkpoints")
    with op.batch_alter_table("loan_delinquency_history", schema=None) as batch_op:
        batch_op.drop_column("overdue_since")
    op.drop_table("loan_account_balances")
