"""loan_modifications: requested changes of a loan's terms (maker-checker); multi-disbursement products and
loans (tranches); frequency_interval and the daily frequency on products and loans

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_modifications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("loan_version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("requested_by_username", sa.String(length=100), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_by_username", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("event_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loan_modifications_loan_id_id", "loan_modifications", ["loan_id", "id"])
    op.create_index("ix_loan_modifications_status_id", "loan_modifications", ["status", "id"])
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("multi_disbursement", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("frequency_interval", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("frequency_interval", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("multi_disbursement", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("tranches_disbursed", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("loans") as batch:
        batch.drop_column("frequency_interval")
        batch.drop_column("tranches_disbursed")
        batch.drop_column("multi_disbursement")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("frequency_interval")
        batch.drop_column("multi_disbursement")
    op.drop_index("ix_loan_modifications_status_id", table_name="loan_modifications")
    op.drop_index("ix_loan_modifications_loan_id_id", table_name="loan_modifications")
    op.drop_table("loan_modifications")
