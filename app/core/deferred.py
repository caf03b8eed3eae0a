"""Rows a transaction only writes (journal entries and lines, posted-balance deltas, audit records, idempotency
keys, outbox events), written together when it commits. On PostgreSQL they go as ONE statement of data-modifying
CTEs (a payment's whole write is then a handful of statements, issue 15); elsewhere (SQLite has no
data-modifying CTEs) each is written at once, as before. A rollback drops what was queued. Code that reads such
rows back in the same transaction calls `flush` first."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, TypeDecorator, event, insert, text
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
    """Write what is queued now, as one statement whose text depends only on which tables and columns are
    written (never on the number of rows): each table's rows travel as one JSON parameter expanded by
    json_populate_recordset, so SQLAlchemy compiles the statement once and PostgreSQL prepares it once
    (a multi-row VALUES list is compiled anew on every call: that was most of a payment's CPU)."""
    queue: _Queue | None = session.info.pop(_QUEUE, None)
    if queue is None:
        return
    parts: list[str] = []
    params: dict[str, str] = {}
    dialect = session.get_bind().dialect
    q = dialect.identifier_preparer.quote
    for i, (table, rows) in enumerate(queue.inserts):
        names, full = _complete(table, rows)
        parts.append(_recordset_insert(table, names, f"p{i}", q))
        params[f"p{i}"] = _rows_json(table, names, full, dialect)
    for j, (table, (keys, value, deltas)) in enumerate(queue.additions.items()):
        if not deltas:
            continue
        names = [*keys, value]
        rows = [{**dict(zip(keys, key, strict=True)), value: delta} for key, delta in sorted(deltas.items())]
        # rows sorted by key above: one lock order for every writer
        t, v = q(table.name), q(value)
        on_conflict = f" ON CONFLICT ({', '.join(map(q, keys))}) DO UPDATE SET {v} = {t}.{v} + EXCLUDED.{v}"
        parts.append(_recordset_insert(table, names, f"a{j}", q) + on_conflict)
        params[f"a{j}"] = _rows_json(table, names, rows, dialect)
    if not parts:
        return
    ctes = ",\n".join(f"w{n} AS ({part})" for n, part in enumerate(parts))
    session.execute(text(f"WITH {ctes}\nSELECT 1"), params)


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


def _complete(table: Table, rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Every row given the same columns, Python-side defaults filled in (a statement inside a CTE gets none
    from SQLAlchemy)."""
    names = [c.name for c in table.columns if any(c.name in r for r in rows) or _has_default(c)]
    full = [{name: row[name] if name in row else _default(table.columns[name]) for name in names} for row in rows]
    return names, full


def _insert(table: Table, rows: list[dict[str, Any]]) -> Executable:
    """A multi-row INSERT (the non-deferring databases)."""
    return insert(table).values(_complete(table, rows)[1])


def _recordset_insert(table: Table, names: list[str], param: str, q: Callable[[str], str]) -> str:
    # Table and column names come from the ORM metadata (quoted), never from input; the rows are a bound parameter.
    t, columns = q(table.name), ", ".join(map(q, names))
    return (
        f"INSERT INTO {t} ({columns}) SELECT {columns} "  # noqa: S608 (names from metadata)
        f"FROM json_populate_recordset(NULL::{t}, CAST(:{param} AS json))"
    )


def _rows_json(table: Table, names: list[str], rows: list[dict[str, Any]], dialect: Any) -> str:
    """The rows as a JSON array, each value as its column type binds it (TypeDecorators applied)."""
    binders = {
        name: column_type.process_bind_param
        for name in names
        if isinstance(column_type := table.columns[name].type, TypeDecorator)
    }
    out = []
    for row in rows:
        out.append({name: binders[name](value, dialect) if name in binders else value for name, value in row.items()})
    return json.dumps(out, default=_json_value, separators=(",", ":"))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be written through the deferred queue")


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
