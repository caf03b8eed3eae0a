"""close of business

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:39:22.488704
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cob_accrual_fractions',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('day_count', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('numerator', sa.BigInteger(), nullable=False),
    sa.Column('denominator', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('business_date', 'day_count', 'period_start', 'due_date', name=op.f('pk_cob_accrual_fractions'))
    )
    op.create_table('cob_chunks',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('chunk_no', sa.Integer(), nullable=False),
    sa.Column('lo', sa.String(length=36), nullable=False),
    sa.Column('hi', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('loans_processed', sa.BigInteger(), nullable=False),
    sa.Column('interest_accrued', sa.BigInteger(), nullable=False),
    sa.Column('late_fees_charged', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_count', sa.BigInteger(), nullable=False),
    sa.Column('done_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('business_date', 'chunk_no', name=op.f('pk_cob_chunks'))
    )
    op.create_table('cob_runs',
    sa.Column('business_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), nullable=False),
    sa.Column('loans_processed', sa.BigInteger(), nullable=False),
    sa.Column('interest_accrued', sa.BigInteger(), nullable=False),
    sa.Column('late_fees_charged', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_count', sa.BigInteger(), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('business_date', name=op.f('pk_cob_runs'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_period_start', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('current_due_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('current_period_interest', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('interest_before_current', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('oldest_unpaid_due_date', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('oldest_unpaid_due_date')
        batch_op.drop_column('interest_before_current')
        batch_op.drop_column('current_period_interest')
        batch_op.drop_column('current_due_date')
        batch_op.drop_column('current_period_start')

    op.drop_table('cob_runs')
    op.drop_table('cob_chunks')
    op.drop_table('cob_accrual_fractions')
