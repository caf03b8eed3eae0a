"""loans.accounts as jsonb on PostgreSQL: close of business reads a loan's account for each role it posts or
checks (up to eleven per loan a day) with `->>`, which re-parses a `json` value every time and looks a key up
in a parsed `jsonb` one. Rewrites the loans table once.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans ALTER COLUMN accounts TYPE jsonb USING accounts::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE loans ALTER COLUMN accounts TYPE json USING accounts::json")
