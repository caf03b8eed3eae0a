"""servicing instruments: what waivers forgave per installment (loan_installments.waived_*), the goodwill
expense account (5100) debited by goodwill credits, product charges (products.charges, copied to loans.charges),
the loan's APR at disbursement (loans.apr_e6), loans.close_per_loan (installment fees: close of business
re-projects the loan), human-readable account numbers (loans.account_no from branches.account_seq, existing
loans numbered per branch in submission order) and loans.paid_through

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAIVED = ("waived_interest", "waived_fees", "waived_penalties")


def upgrade() -> None:
    with op.batch_alter_table("loan_installments") as batch:
        for column in WAIVED:
            batch.add_column(sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
    for table in ("products", "loans"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("charges", sa.JSON(), nullable=True))
    with op.batch_alter_table("loans") as batch:
        batch.add_column(sa.Column("apr_e6", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("close_per_loan", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("account_no", sa.String(48), nullable=True))
        batch.add_column(sa.Column("paid_through", sa.Date(), nullable=True))
    with op.batch_alter_table("branches") as batch:
        batch.add_column(sa.Column("account_seq", sa.Integer(), nullable=False, server_default="0"))
    _number_existing_loans()
    with op.batch_alter_table("loans") as batch:
        batch.create_unique_constraint("uq_loans_account_no", ["account_no"])
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
        [{"code": "5100", "name": "Goodwill expense", "type": "expense", "is_active": True,
          "created_at": datetime.now(UTC)}],
    )


def _number_existing_loans() -> None:
    """Existing loans get account numbers per branch in submission order (paid_through follows on their next
    write; it is null until then)."""
    conn = op.get_bind()
    branches = conn.execute(sa.text("SELECT id, code FROM branches ORDER BY id")).all()
    for branch_id, code in branches:
        loans = conn.execute(
            sa.text("SELECT id FROM loans WHERE branch_id = :b ORDER BY created_at, id"), {"b": branch_id}
        ).all()
        for seq, (loan_id,) in enumerate(loans, 1):
            conn.execute(sa.text("UPDATE loans SET account_no = :n WHERE id = :id"),
                         {"n": f"{code}-{seq:06d}", "id": loan_id})
        conn.execute(sa.text("UPDATE branches SET account_seq = :s WHERE id = :b"), {"s": len(loans), "b": branch_id})


def downgrade() -> None:
    op.execute("DELETE FROM ledger_accounts WHERE code = '5100'")
    with op.batch_alter_table("branches") as batch:
        batch.drop_column("account_seq")
    with op.batch_alter_table("loans") as batch:
        batch.drop_constraint("uq_loans_account_no", type_="unique")
        batch.drop_column("paid_through")
        batch.drop_column("account_no")
        batch.drop_column("close_per_loan")
        batch.drop_column("apr_e6")
    for table in ("loans", "products"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("charges")
    with op.batch_alter_table("loan_installments") as batch:
        for column in reversed(WAIVED):
            batch.drop_column(column)
