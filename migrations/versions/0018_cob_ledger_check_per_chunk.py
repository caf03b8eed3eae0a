"""Close of business checks each chunk's loans against their posted balances inside the chunk's transaction
(cob_chunks.out_of_balance_ids), and stores the day's result on the run (cob_runs.loans_out_of_balance): the
per-loan ledger check after the close no longer reads every loan again on one connection

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cob_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("out_of_balance_ids", sa.JSON(), nullable=True))
    with op.batch_alter_table("cob_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("loans_out_of_balance", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cob_runs", schema=None) as batch_op:
        batch_op.drop_column("loans_out_of_balance")
    with op.batch_alter_table("cob_chunks", schema=None) as batch_op:
        batch_op.drop_column("out_of_balance_ids")
