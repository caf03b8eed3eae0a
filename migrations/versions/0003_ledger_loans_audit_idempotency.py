"""ledger loans audit idempotency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:33:16.452767
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


JOURNAL_TABLES = ("journal_entries", "journal_lines")

# The journal is append-only: corrections are new (reversing or correcting) entries, never edits.
IMMUTABLE_JOURNAL_FUNCTION = """
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'journal tables are append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""

CHART = (
    ("1000", "Cash / fund source", "asset"),
    ("1100", "Loan portfolio", "asset"),
    ("1200", "Interest receivable", "asset"),
    ("1210", "Fees receivable", "asset"),
    ("1220", "Penalties receivable", "asset"),
    ("2100", "Overpayment liability", "liability"),
    ("4000", "Interest income", "income"),
    ("4100", "Fee income", "income"),
    ("4200", "Penalty income", "income"),
    ("4300", "Recovery income", "income"),
    ("5000", "Loan write-off expense", "expense"),
)


def _seed_chart_of_accounts() -> None:
    """The chart as it stood at this migration (app/ledger/accounts.py CHART must stay a superset)."""
    accounts = sa.table(
        "ledger_accounts",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("is_active", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        accounts,
        [{"code": c, "name": n, "type": t, "is_active": True, "created_at": now} for c, n, t in CHART],
    )


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('before_status', sa.String(length=16), nullable=True),
    sa.Column('after_status', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_object', ['object_type', 'object_id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('user_id', 'key', name='uq_idempotency_keys_user_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_expires_at', ['expires_at'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('entry_type', sa.String(length=32), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('loan_id', sa.String(length=36), nullable=True),
    sa.Column('product_id', sa.String(length=36), nullable=True),
    sa.Column('transaction_id', sa.String(length=36), nullable=True),
    sa.Column('reversal_of', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['reversal_of'], ['journal_entries.id'], name=op.f('fk_journal_entries_reversal_of_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_effective_date'), ['effective_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_ledger_accounts'))
    )
    op.create_table('journal_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.String(length=36), nullable=False),
    sa.Column('account_code', sa.String(length=16), nullable=False),
    sa.Column('loan_id', sa.String(length=36), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('debit', sa.BigInteger(), nullable=False),
    sa.Column('credit', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('(debit = 0) <> (credit = 0)', name=op.f('ck_journal_lines_one_side')),
    sa.CheckConstraint('debit >= 0 AND credit >= 0', name=op.f('ck_journal_lines_non_negative')),
    sa.ForeignKeyConstraint(['account_code'], ['ledger_accounts.code'], name=op.f('fk_journal_lines_account_code_ledger_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_journal_lines_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_lines'))
    )
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.create_index('ix_journal_lines_account_date', ['account_code', 'effective_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_lines_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_journal_lines_loan_account', ['loan_id', 'account_code'], unique=False)

    op.create_table('loans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('branch_id', sa.String(length=36), nullable=False),
    sa.Column('borrower_id', sa.String(length=36), nullable=False),
    sa.Column('product_id', sa.String(length=36), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('requested_principal', sa.BigInteger(), nullable=False),
    sa.Column('approved_principal', sa.BigInteger(), nullable=True),
    sa.Column('disbursed_principal', sa.BigInteger(), nullable=True),
    sa.Column('annual_rate_e6', sa.BigInteger(), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('amortization', sa.String(length=32), nullable=False),
    sa.Column('interest_method', sa.String(length=32), nullable=False),
    sa.Column('day_count', sa.String(length=16), nullable=False),
    sa.Column('grace_principal_periods', sa.Integer(), nullable=False),
    sa.Column('late_fee_amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('late_fee_percent_e6', sa.BigInteger(), nullable=True),
    sa.Column('late_fee_grace_days', sa.Integer(), nullable=False),
    sa.Column('allocation_order', sa.JSON(), nullable=False),
    sa.Column('accounts', sa.JSON(), nullable=False),
    sa.Column('expected_disbursement_date', sa.Date(), nullable=True),
    sa.Column('first_payment_date', sa.Date(), nullable=True),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=True),
    sa.Column('disbursement_date', sa.Date(), nullable=True),
    sa.Column('maturity_date', sa.Date(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('written_off_on', sa.Date(), nullable=True),
    sa.Column('snapshot_date', sa.Date(), nullable=True),
    sa.Column('installment_amount', sa.BigInteger(), nullable=False),
    sa.Column('principal_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('interest_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('fees_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('penalties_outstanding', sa.BigInteger(), nullable=False),
    sa.Column('credit_balance', sa.BigInteger(), nullable=False),
    sa.Column('interest_recognized', sa.BigInteger(), nullable=False),
    sa.Column('days_past_due', sa.Integer(), nullable=False),
    sa.Column('delinquency_bucket', sa.String(length=8), nullable=False),
    sa.Column('next_due_date', sa.Date(), nullable=True),
    sa.Column('next_due_amount', sa.BigInteger(), nullable=True),
    sa.Column('past_maturity', sa.Boolean(), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], name=op.f('fk_loans_borrower_id_borrowers')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_loans_branch_id_branches')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_loans_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
    sa.UniqueConstraint('external_id', name=op.f('uq_loans_external_id'))
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index('ix_loans_branch_status', ['branch_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_loans_product_id'), ['product_id'], unique=False)
        batch_op.create_index('ix_loans_status_id', ['status', 'id'], unique=False)

    op.create_table('loan_delinquency_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.String(length=36), nullable=False),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('from_bucket', sa.String(length=8), nullable=False),
    sa.Column('to_bucket', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_delinquency_history_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_delinquency_history'))
    )
    with op.batch_alter_table('loan_delinquency_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_delinquency_history_loan_id'), ['loan_id'], unique=False)

    op.create_table('loan_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=24), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('transaction_id', sa.String(length=36), nullable=True),
    sa.Column('reversed_by_seq', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_events_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_events')),
    sa.UniqueConstraint('loan_id', 'seq', name='uq_loan_events_loan_seq')
    )
    op.create_table('loan_installments',
    sa.Column('loan_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('principal', sa.BigInteger(), nullable=False),
    sa.Column('interest', sa.BigInteger(), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('penalties', sa.BigInteger(), nullable=False),
    sa.Column('paid_principal', sa.BigInteger(), nullable=False),
    sa.Column('paid_interest', sa.BigInteger(), nullable=False),
    sa.Column('paid_fees', sa.BigInteger(), nullable=False),
    sa.Column('paid_penalties', sa.BigInteger(), nullable=False),
    sa.Column('late_fee_date', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_installments_loan_id_loans')),
    sa.PrimaryKeyConstraint('loan_id', 'number', name=op.f('pk_loan_installments'))
    )
    with op.batch_alter_table('loan_installments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_installments_due_date'), ['due_date'], unique=False)

    op.create_table('loan_transactions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('loan_id', sa.String(length=36), nullable=False),
    sa.Column('event_seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('alloc_principal', sa.BigInteger(), nullable=False),
    sa.Column('alloc_interest', sa.BigInteger(), nullable=False),
    sa.Column('alloc_fees', sa.BigInteger(), nullable=False),
    sa.Column('alloc_penalties', sa.BigInteger(), nullable=False),
    sa.Column('alloc_overpayment', sa.BigInteger(), nullable=False),
    sa.Column('alloc_recovery', sa.BigInteger(), nullable=False),
    sa.Column('reversed', sa.Boolean(), nullable=False),
    sa.Column('reversal_of', sa.String(length=36), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('journal_entry_id', sa.String(length=36), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_transactions_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_transactions')),
    sa.UniqueConstraint('external_id', name=op.f('uq_loan_transactions_external_id'))
    )
    with op.batch_alter_table('loan_transactions', schema=None) as batch_op:
        batch_op.create_index('ix_loan_transactions_loan_id_id', ['loan_id', 'id'], unique=False)

    _seed_chart_of_accounts()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(IMMUTABLE_JOURNAL_FUNCTION)
        for table in JOURNAL_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in JOURNAL_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS journal_append_only()")
    with op.batch_alter_table('loan_transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_loan_transactions_loan_id_id')

    op.drop_table('loan_transactions')
    with op.batch_alter_table('loan_installments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_installments_due_date'))

    op.drop_table('loan_installments')
    op.drop_table('loan_events')
    with op.batch_alter_table('loan_delinquency_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_delinquency_history_loan_id'))

    op.drop_table('loan_delinquency_history')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index('ix_loans_status_id')
        batch_op.drop_index(batch_op.f('ix_loans_product_id'))
        batch_op.drop_index('ix_loans_branch_status')
        batch_op.drop_index(batch_op.f('ix_loans_borrower_id'))

    op.drop_table('loans')
    with op.batch_alter_table('journal_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_lines_loan_account')
        batch_op.drop_index(batch_op.f('ix_journal_lines_entry_id'))
        batch_op.drop_index('ix_journal_lines_account_date')

    op.drop_table('journal_lines')
    op.drop_table('ledger_accounts')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_transaction_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_loan_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_effective_date'))

    op.drop_table('journal_entries')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_expires_at')

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_object')

    op.drop_table('audit_log')
