"""loan_account_balances: fillfactor 80 on PostgreSQL so the daily posted-balance upserts stay HOT

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Close of business adds every active loan's accrual to two of its posted balances a day (receivable and
    # income) without changing the key: free space on each page keeps those heap-only updates, with no new
    # primary-key entries (as loans has, 0007).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loan_account_balances SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loan_account_balances RESET (fillfactor)")
