"""projection checkpoint

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 12:53:02.390077
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('projection_state', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('latest_event_date', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('latest_event_date')
        batch_op.drop_column('projection_state')

