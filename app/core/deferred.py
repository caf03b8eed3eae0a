"""Rows a transaction only writes (journal entries and lines, posted-balance deltas, audit records, idempotency
keys, outbox events, changed installments), written together when it commits. On PostgreSQL they go as ONE
statement of data-modifying CTEs (a payment's whole write is then a handful of statements, issue 15); elsewhere
(SQLite has no data-modifying CTEs) each is written at once, as before. A rollback drops what was queued. Code
that reads such rows back in the same transaction calls `flush` first.

Mapped classes registered with `defer_orm_writes` join that statement too: at commit, their pending objects are
inserted and their changed columns updated by it instead of by the ORM's flush (one round trip and none of the
unit-of-work's per-object bookkeeping). Until then they are ordinary ORM objects, so an autoflush before a query
in the same transaction still writes them the usual way."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, cast

import orjson
from sqlalchemy import Table, TypeDecorator, and_, bindparam, event, insert, inspect, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import get_history, set_committed_value
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import TextClause

_QUEUE = "core.deferred"
_writers: list[Callable[[Session], None]] = []
_orm_inserts: list[type] = []  # mapped classes whose pending objects the queue inserts
_orm_updates: list[type] = []  # mapped classes whose changed columns the queue writes


@dataclass
class _Queue:
    # Rows per (table, columns): the statement's text depends on its shape only, never on the number of rows.
    inserts: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = field(default_factory=dict)
    # Updates per (table, key columns), merged per key: one statement must not change a row twice (PostgreSQL
    # would apply one of two matches, unpredictably).
    updates: dict[tuple[Table, tuple[str, ...]], dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
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
    names, full = _complete(table, list(rows))
    queue: _Queue = session.info.setdefault(_QUEUE, _Queue())
    queue.inserts.setdefault((table, tuple(names)), []).extend(full)


def update_rows(session: Session, table: Table, keys: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> None:
    """Set the columns each row names (besides `keys`) on the row of `table` with those key values (at commit on
    PostgreSQL, now elsewhere). Rows naming different columns are separate updates."""
    if not rows:
        return
    if not deferring(session):
        with session.no_autoflush:
            for names, group in _by_columns(keys, rows).items():
                session.execute(_update(table, keys, names), [_update_params(keys, row) for row in group])
        return
    queue: _Queue = session.info.setdefault(_QUEUE, _Queue())
    if any(t is table for t, _ in queue.inserts):
        # the CTEs of one statement share one snapshot: an update would not see a row queued for insert
        flush(session)
        queue = session.info.setdefault(_QUEUE, _Queue())
    pending = queue.updates.setdefault((table, keys), {})
    for row in rows:
        pending.setdefault(tuple(row[k] for k in keys), {}).update(row)


def defer_orm_writes(inserts: Sequence[type] = (), updates: Sequence[type] = ()) -> None:
    """Write pending objects of the `inserts` classes and changed objects of the `updates` classes with the
    commit's one statement (module doc). Objects other pending ORM rows refer to must not be deferred inserts:
    the ORM's own rows are flushed before the queue."""
    _orm_inserts.extend(c for c in inserts if c not in _orm_inserts)
    _orm_updates.extend(c for c in updates if c not in _orm_updates)


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
    for i, ((table, names), rows) in enumerate(queue.inserts.items()):
        parts.append(_recordset_insert(table, list(names), f"p{i}", q))
        params[f"p{i}"] = _rows_json(table, list(names), rows, dialect)
    updates = [
        (table, keys, names, group)
        for (table, keys), by_key in queue.updates.items()
        # sorted by key: one lock order for every writer
        for names, group in _by_columns(keys, [by_key[k] for k in sorted(by_key)]).items()
    ]
    for u, (table, keys, names, group) in enumerate(updates):
        parts.append(_recordset_update(table, keys, names, f"u{u}", q))
        params[f"u{u}"] = _rows_json(table, [*keys, *names], group, dialect)
    for j, (table, (keys, value, deltas)) in enumerate(queue.additions.items()):
        if not deltas:
            continue
        columns = [*keys, value]
        rows = [{**dict(zip(keys, key, strict=True)), value: delta} for key, delta in sorted(deltas.items())]
        # rows sorted by key above: one lock order for every writer
        t, v = q(table.name), q(value)
        on_conflict = f" ON CONFLICT ({', '.join(map(q, keys))}) DO UPDATE SET {v} = {t}.{v} + EXCLUDED.{v}"
        parts.append(_recordset_insert(table, columns, f"a{j}", q) + on_conflict)
        params[f"a{j}"] = _rows_json(table, columns, rows, dialect)
    if not parts:
        return
    ctes = ",\n".join(f"w{n} AS ({part})" for n, part in enumerate(parts))
    if session.autoflush:  # what an ORM query here would have flushed first (not inside no_autoflush)
        flush_orm(session)
    # on the connection: no autoflush walking the ORM's unit of work again
    session.connection().execute(_statement(f"WITH {ctes}\nSELECT 1"), params)


@lru_cache(maxsize=256)
def _statement(sql: str) -> TextClause:
    """One TextClause per statement text (few shapes): building one parses its bind parameters anew."""
    return text(sql)


def before_commit(writer: Callable[[Session], None]) -> None:
    """Run `writer` when a transaction commits, before the queue is written (the outbox renders its events)."""
    _writers.append(writer)


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    for writer in _writers:
        writer(session)
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, _previous: Any) -> None:
    session.info.pop(_QUEUE, None)


def write_pending(session: Session) -> None:
    """Write now what this transaction has queued or changed so far, registered ORM objects included, for SQL
    that reads those rows back before the commit; the commit ends with it."""
    take_orm_writes(session)
    flush_orm(session)  # the ORM's rows first: queued rows may refer to them
    flush(session)


def take_orm_writes(session: Session) -> None:
    """Queue the registered classes' pending objects as inserts (their Python-side defaults filled in on the
    object; persistent without a flush when their key is known, else detached with their attributes readable)
    and their changed columns as updates by primary key (the object then unchanged, as after a flush).
    PostgreSQL only; elsewhere the ORM writes them."""
    if not (_orm_inserts or _orm_updates) or not deferring(session):
        return
    inserted, updated = tuple(_orm_inserts), tuple(_orm_updates)
    for obj in [o for o in session.new if isinstance(o, inserted)]:
        state = inspect(obj)
        row: dict[str, Any] = {}
        for prop in state.mapper.column_attrs:
            column = prop.columns[0]
            if prop.key in state.dict:
                row[column.name] = state.dict[prop.key]
            elif _has_default(column):  # the ORM's default at insert, also kept on the object
                row[column.name] = _default(column)
                set_committed_value(obj, prop.key, row[column.name])
            elif column.server_default is None and column.autoincrement is not True:
                set_committed_value(obj, prop.key, None)  # stored as NULL: nothing left to load
        session.expunge(obj)
        insert_rows(session, cast(Table, state.mapper.local_table), [row])
        if None not in state.mapper.primary_key_from_instance(obj):
            # persistent from here on (session.get finds it, nothing to flush); a row whose key the database
            # assigns stays detached
            make_transient_to_detached(obj)
            session.add(obj)
    for obj in [o for o in session.dirty if isinstance(o, updated)]:
        state = inspect(obj)
        columns = _column_names(state.mapper)
        # committed_state holds the attributes set since the object was loaded or last written
        changed = {
            key: columns[key]
            for key in list(state.committed_state)
            if key in columns and get_history(obj, key).has_changes()
        }
        if not changed:
            continue
        keys = tuple(c.name for c in state.mapper.primary_key)
        identity = state.identity
        assert identity is not None  # a dirty object is persistent
        row = {**dict(zip(keys, identity, strict=True)), **{name: state.dict[key] for key, name in changed.items()}}
        update_rows(session, cast(Table, state.mapper.local_table), keys, [row])
        # Unchanged from here on, as after an ORM flush (every changed column is queued above): otherwise the
        # commit's own flush walks its unit of work for this object and finds nothing to write (SQLAlchemy
        # offers no public call for this; the version is pinned).
        state._commit_all(state.dict, session.identity_map)


def flush_orm(session: Session) -> None:
    """The ORM's flush, skipped when nothing is left for it (a flush walks its unit of work over every object
    flagged as modified, even one whose attributes were set back to what is stored)."""
    if session.new or session.deleted or any(session.is_modified(obj) for obj in session.dirty):
        session.flush()


@cache
def _column_names(mapper: Any) -> dict[str, str]:
    """Attribute key → column name of a mapper's column attributes."""
    return {prop.key: prop.columns[0].name for prop in mapper.column_attrs}


def _by_columns(keys: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(n for n in row if n not in keys)), []).append(row)
    return groups


def _update(table: Table, keys: tuple[str, ...], names: tuple[str, ...]) -> Executable:
    """An UPDATE by key run once per row (the non-deferring databases)."""
    match = and_(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
    return update(table).where(match).values({n: bindparam(f"set_{n}") for n in names})


def _update_params(keys: tuple[str, ...], row: dict[str, Any]) -> dict[str, Any]:
    return {(f"key_{n}" if n in keys else f"set_{n}"): v for n, v in row.items()}


def _recordset_update(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], param: str, q: Callable[[str], str]
) -> str:
    # Names come from the ORM metadata (quoted), never from input; the rows are a bound parameter.
    t = q(table.name)
    sets = ", ".join(f"{q(n)} = j.{q(n)}" for n in names)
    match = " AND ".join(f"{t}.{q(k)} = j.{q(k)}" for k in keys)
    return (
        f"UPDATE {t} SET {sets} FROM json_populate_recordset(NULL::{t}, CAST(:{param} AS json)) j "  # noqa: S608
        f"WHERE {match}"
    )


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
    if binders:
        rows = [
            {name: binders[name](value, dialect) if name in binders else value for name, value in row.items()}
            for row in rows
        ]
    return orjson.dumps(rows, default=_json_value).decode()


def _json_value(value: Any) -> Any:
    """What orjson does not serialise itself (it writes dates and datetimes as ISO 8601)."""
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
