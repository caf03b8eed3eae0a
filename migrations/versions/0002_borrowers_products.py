"""borrowers and products: borrowers (unique national/external IDs, branch and last-name indexes) and
immutable loan products (money in minor units, rates in micro-percent)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:29:51.406397
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('products',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('min_principal_minor', sa.BigInteger(), nullable=False),
    sa.Column('max_principal_minor', sa.BigInteger(), nullable=False),
    sa.Column('min_term', sa.Integer(), nullable=False),
    sa.Column('max_term', sa.Integer(), nullable=False),
    sa.Column('annual_rate_e6', sa.BigInteger(), nullable=False),
    sa.Column('min_rate_e6', sa.BigInteger(), nullable=False),
    sa.Column('max_rate_e6', sa.BigInteger(), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('amortization', sa.String(length=32), nullable=False),
    sa.Column('interest_method', sa.String(length=32), nullable=False),
    sa.Column('day_count', sa.String(length=16), nullable=False),
    sa.Column('grace_principal_periods', sa.Integer(), nullable=False),
    sa.Column('late_fee_amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('late_fee_percent_e6', sa.BigInteger(), nullable=True),
    sa.Column('late_fee_grace_days', sa.Integer(), nullable=False),
    sa.Column('allocation_order', sa.JSON(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('code', name=op.f('uq_products_code'))
    )
    op.create_table('borrowers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('branch_id', sa.String(length=36), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('national_id', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=16), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_borrowers_branch_id_branches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_borrowers')),
    sa.UniqueConstraint('external_id', name=op.f('uq_borrowers_external_id')),
    sa.UniqueConstraint('national_id', name=op.f('uq_borrowers_national_id'))
    )
    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_borrowers_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_borrowers_last_name'), ['last_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_borrowers_last_name'))
        batch_op.drop_index(batch_op.f('ix_borrowers_branch_id'))

    op.drop_table('borrowers')
    op.drop_table('products')
