"""The write path's outbox bookkeeping (issue 15): each loan keeps its outbox sequence (loans.outbox_seq, no
max() per write), and the delivery worker fans outbox events out to webhook endpoints (outbox_events.fanned_out)
instead of the writer's transaction

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("outbox_seq", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE loans SET outbox_seq = COALESCE((SELECT MAX(o.sequence) FROM outbox_events o "
        "WHERE o.stream = loans.id), 0)"
    )
    # Events written before this revision already have their deliveries.
    with op.batch_alter_table("outbox_events") as batch:
        batch.add_column(sa.Column("fanned_out", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.create_index("ix_outbox_events_fan_out", ["fanned_out", "id"], unique=False)
    with op.batch_alter_table("outbox_events") as batch:
        batch.alter_column("fanned_out", server_default=sa.false())


def downgrade() -> None:
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_index("ix_outbox_events_fan_out")
        batch.drop_column("fanned_out")
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("outbox_seq")
