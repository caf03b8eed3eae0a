"""loans.insert_seq: a number given to each loan as it is inserted, in insertion order;
close of business splits the active loans into ranges of it (cob_chunks.seq_lo/seq_hi) instead of ranges of
random UUIDs, so a chunk's loans (and the installments and posted balances inserted with them) lie together
on the heap rather than over all of it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A volatile default rewrites the table once, numbering the existing loans in their physical order.
        op.execute("CREATE SEQUENCE loans_insert_seq")
        op.execute("ALTER TABLE loans ADD COLUMN insert_seq BIGINT DEFAULT nextval('loans_insert_seq')")
        op.execute("ALTER SEQUENCE loans_insert_seq OWNED BY loans.insert_seq")
    else:
        # SQLite: the rowid is the physical order; a trigger copies it into every new loan.
        op.execute("ALTER TABLE loans ADD COLUMN insert_seq BIGINT")
        op.execute("UPDATE loans SET insert_seq = rowid")
        op.execute(
            "CREATE TRIGGER loans_insert_seq AFTER INSERT ON loans WHEN NEW.insert_seq IS NULL "
            "BEGIN UPDATE loans SET insert_seq = NEW.rowid WHERE rowid = NEW.rowid; END"
        )
    # A chunk is `insert_seq % 4 = r` of a range (app/operations/cob_sql.py CHUNK_STRIDE): the expression in the
    # index makes it an index condition (else every loan of the range is fetched and 3 in 4 dropped) and gives
    # the planner its statistics (else it guesses 0.5 % of the rows and picks nested loops).
    op.create_index("ix_loans_cob_chunk", "loans", ["status", sa.text("(insert_seq % 4)"), "insert_seq"])
    with op.batch_alter_table("cob_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq_lo", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("seq_hi", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("seq_rem", sa.Integer(), nullable=True))
        batch_op.alter_column("lo", existing_type=sa.String(length=36), nullable=True)
        batch_op.alter_column("hi", existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("cob_chunks", schema=None) as batch_op:
        batch_op.drop_column("seq_rem")
        batch_op.drop_column("seq_hi")
        batch_op.drop_column("seq_lo")
    op.drop_index("ix_loans_cob_chunk", table_name="loans")
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER loans_insert_seq")
    with op.batch_alter_table("loans", schema=None) as batch_op:
        batch_op.drop_column("insert_seq")
