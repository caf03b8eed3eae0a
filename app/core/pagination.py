"""Keyset pagination over time-ordered ids (`WHERE id > :last ORDER BY id LIMIT :n+1`)."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.core.schemas import decode_cursor, encode_cursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def paginate(
    session: Session, stmt: Select[T], id_column: InstrumentedAttribute[Any], cursor: str | None, limit: int
) -> tuple[Sequence[T], str | None]:
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = session.scalars(stmt.order_by(id_column).limit(limit + 1)).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(getattr(rows[-1], "id"))  # noqa: B009
    return rows, None
