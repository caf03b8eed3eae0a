"""servicing options: prepayment mode and interest recalculation on products and loans; interest received in
advance (loans.interest_prepaid, account 2110)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("products", "loans"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("prepayment", sa.String(24), nullable=False, server_default="reduce_term"))
            batch.add_column(sa.Column("interest_recalculation", sa.String(8), nullable=False, server_default="none"))
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("interest_prepaid", sa.BigInteger(), nullable=False, server_default="0"))
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
        [{"code": "2110", "name": "Interest received in advance", "type": "liability", "is_active": True,
          "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.execute("DELETE FROM ledger_accounts WHERE code = '2110'")
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("interest_prepaid")
    for table in ("loans", "products"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("interest_recalculation")
            batch.drop_column("prepayment")
