"""Rows a transaction only writes (journal entries and lines, posted-balance deltas, audit records, idempotency
keys, outbox events), written together when it commits. On PostgreSQL they go as ONE statement of data-modifying
CTEs (a payment's whole write is then a handful of statements, issue 15); elsewhere (SQLite has no
data-modifying CTEs) each is written at once, as before. A rollback drops what was queued. Code that reads such
rows back in the same transaction calls `flush` first."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, event, insert, literal_column, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

_QUEUE = "core.deferred"
_writers: list[Callable[[Session], None]] = []


@dataclass
class _Queue:
    inserts: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    # Additive upserts, merged per key: {table: ((key columns), value column, {key: delta})}.
    additions: dict[Table, tuple[tuple[str, ...], str, dict[tuple[Any, ...], int]]] = field(default_factory=dict)


def deferring(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` into `table` in this transaction (at commit on PostgreSQL, now elsewhere)."""
    if not rows:
        return
    if not deferring(session):
        with session.no_autoflush:  # no ORM row is needed first; they are flushed once, at commit
            session.execute(_insert(table, list(rows)))
        return
    queue: _Queue = session.info.setdefault(_QUEUE, _Queue())
    queue.inserts.append((table, list(rows)))


def add_to(
    session: Session, table: Table, keys: tuple[str, ...], value: str, deltas: dict[tuple[Any, ...], int]
) -> None:
    """Add signed amounts to `table.value` of the rows keyed by `keys` (inserting missing rows): one upsert.
    Deltas queued twice for one key are summed (one statement must not change a row twice)."""
    deltas = {k: d for k, d in deltas.items() if d}
    if not deltas:
        return
    if not deferring(session):
        with session.no_autoflush:
            session.execute(_addition(session, table, keys, value, deltas))
        return
    queue: _Queue = session.info.setdefault(_QUEUE, _Queue())
    known = queue.additions.setdefault(table, (keys, value, {}))[2]
    for key, delta in deltas.items():
        known[key] = known.get(key, 0) + delta


def flush(session: Session) -> None:
    """Write what is queued now (one statement)."""
    queue: _Queue | None = session.info.pop(_QUEUE, None)
    if queue is None:
        return
    statements: list[Executable] = [_insert(t, rows) for t, rows in queue.inserts]
    statements += [
        _addition(session, t, keys, value, deltas) for t, (keys, value, deltas) in queue.additions.items() if deltas
    ]
    if len(statements) == 1:
        session.execute(statements[0])
    elif statements:
        ctes = [s.cte(f"w{i}") for i, s in enumerate(statements)]  # type: ignore[attr-defined]
        session.execute(select(literal_column("1")).add_cte(*ctes))


def before_commit(writer: Callable[[Session], None]) -> None:
    """Run `writer` when a transaction commits, before the queue is written (the outbox renders its events)."""
    _writers.append(writer)


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    for writer in _writers:
        writer(session)
    if _QUEUE in session.info:
        session.flush()  # the ORM's rows first: queued rows may refer to them
        flush(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, _previous: Any) -> None:
    session.info.pop(_QUEUE, None)


def _insert(table: Table, rows: list[dict[str, Any]]) -> Executable:
    """A multi-row INSERT with every row given the same columns (Python-side defaults filled in here: a
    statement inside a CTE gets none from SQLAlchemy)."""
    names = [c.name for c in table.columns if any(c.name in r for r in rows) or _has_default(c)]
    full = []
    for row in rows:
        values = {}
        for name in names:
            if name in row:
                values[name] = row[name]
            else:
                values[name] = _default(table.columns[name])
        full.append(values)
    return insert(table).values(full)


def _has_default(column: Any) -> bool:
    return column.default is not None and not column.default.is_sequence


def _default(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)
    return default.arg if default.is_scalar else None


def _addition(
    session: Session, table: Table, keys: tuple[str, ...], value: str, deltas: dict[tuple[Any, ...], int]
) -> Executable:
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [{**dict(zip(keys, key, strict=True)), value: delta} for key, delta in sorted(deltas.items())]
    stmt = upsert(table).values(rows)  # sorted: one lock order for every writer
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={value: table.c[value] + stmt.excluded[value]})
