"""Monthly range partitions of journal_lines on PostgreSQL (by effective_date). The table is partitioned by
migration 0005; close of business keeps partitions a few months ahead, and a DEFAULT partition catches
anything outside them (e.g. far backdated entries), so an insert never fails for want of a partition."""

from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

MONTHS_AHEAD = 3


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(first: date) -> str:
    return f"journal_lines_y{first.year:04d}m{first.month:02d}"


def create_month(conn: Connection | Session, first: date, parent: str = "journal_lines") -> None:
    name = partition_name(first)
    nxt = add_months(first, 1)
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} "
            f"FOR VALUES FROM ('{first.isoformat()}') TO ('{nxt.isoformat()}')"
        )
    )
    # The parent's statement trigger does not fire for statements aimed at a partition directly.
    conn.execute(text(f"DROP TRIGGER IF EXISTS {name}_append_only ON {name}"))
    conn.execute(
        text(
            f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {name} "
            "FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only()"
        )
    )


def is_partitioned(conn: Connection | Session) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = 'journal_lines')"
            )
        ).scalar()
    )


def ensure_months(conn: Connection | Session, through: date) -> list[str]:
    """Create the monthly partitions from the latest existing one up to `through` + MONTHS_AHEAD months.
    Past months without a partition stay in DEFAULT (a partition cannot be carved out of rows already there)."""
    if not is_partitioned(conn):
        return []
    existing = {
        r[0]
        for r in conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'journal_lines'"
            )
        )
    }
    created = []
    first = month_start(through)
    for k in range(MONTHS_AHEAD + 1):
        month = add_months(first, k)
        if partition_name(month) not in existing and not _default_holds(conn, month):
            create_month(conn, month)
            created.append(partition_name(month))
    return created


def _default_holds(conn: Connection | Session, first: date) -> bool:
    """Whether DEFAULT already holds lines of that month (e.g. a value date far ahead, or a business date set
    back in a test): such a month stays in DEFAULT, as creating its partition would fail."""
    found = conn.execute(
        text("SELECT 1 FROM journal_lines_default WHERE effective_date >= :lo AND effective_date < :hi LIMIT 1"),
        {"lo": first, "hi": add_months(first, 1)},
    ).first()
    return found is not None
