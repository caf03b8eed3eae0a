from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, func, or_, select
from sqlalchemy.orm import Session

from app.borrowers.models import Borrower
from app.borrowers.schemas import compact_national_id
from app.core.pagination import paginate

_LIKE_ESCAPE = "\\"


def get_borrower(session: Session, borrower_id: str) -> Borrower | None:
    if "\x00" in borrower_id:  # no such id can exist, and PostgreSQL refuses NUL in text parameters
        return None
    return session.get(Borrower, borrower_id)


def find_duplicate(
    session: Session, national_id: str | None, external_id: str | None, exclude_id: str | None = None
) -> tuple[str, str, str] | None:
    """(field, existing id, its branch) of another borrower holding one of these unique values, national ID first."""
    for field, column, value in (
        ("national_id", Borrower.national_id, national_id),
        ("external_id", Borrower.external_id, external_id),
    ):
        if value is None:
            continue
        stmt = select(Borrower.id, Borrower.branch_id).where(column == value)
        if exclude_id is not None:
            stmt = stmt.where(Borrower.id != exclude_id)
        existing = session.execute(stmt.limit(1)).first()
        if existing is not None:
            return field, existing[0], existing[1]
    return None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column: SQLColumnExpression[Any], text: str) -> ColumnElement[bool]:
    return column.like(_escape_like(text) + "%", escape=_LIKE_ESCAPE)


def _search(q: str) -> ColumnElement[bool]:
    """Case-insensitive prefix match on the full name in either order, the external ID and the national ID
    (separators ignored, as stored)."""
    text = " ".join(q.split()).lower()
    conditions = [
        _prefix(func.lower(Borrower.first_name + " " + Borrower.last_name), text),
        _prefix(func.lower(Borrower.last_name + " " + Borrower.first_name), text),
        _prefix(func.lower(Borrower.external_id), text),
    ]
    national_id = compact_national_id(q)
    if national_id:
        conditions.append(_prefix(Borrower.national_id, national_id))
    return or_(*conditions)


def list_borrowers(
    session: Session,
    only_branch: str | None,
    branch_id: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Borrower], str | None]:
    stmt = select(Borrower)
    if only_branch is not None:
        stmt = stmt.where(Borrower.branch_id == only_branch)
    if branch_id is not None:
        stmt = stmt.where(Borrower.branch_id == branch_id)
    if q is not None and q.strip():
        stmt = stmt.where(_search(q))
    return paginate(session, stmt, Borrower.id, cursor, limit)
