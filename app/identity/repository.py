from collections.abc import Sequence

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from app.core.pagination import paginate
from app.identity.models import Branch, User


def get_user(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


# What a request's bearer token needs of its user (Core: no ORM object per request).
_TOKEN_HOLDER = select(
    User.id, User.username, User.role, User.branch_id, User.is_active, User.credentials_version
).where(User.id == bindparam("user_id"))


def token_holder(session: Session, user_id: str) -> Row[str, str, str, str | None, bool, int] | None:
    return session.connection().execute(_TOKEN_HOLDER, {"user_id": user_id}).first()


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).first()


def list_users(session: Session, cursor: str | None, limit: int) -> tuple[Sequence[User], str | None]:
    return paginate(session, select(User), User.id, cursor, limit)


def get_branch(session: Session, branch_id: str) -> Branch | None:
    return session.get(Branch, branch_id)


def get_branch_by_code(session: Session, code: str) -> Branch | None:
    return session.scalars(select(Branch).where(Branch.code == code)).first()


def list_branches(
    session: Session, only_branch: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[Branch], str | None]:
    stmt = select(Branch)
    if only_branch is not None:
        stmt = stmt.where(Branch.id == only_branch)
    return paginate(session, stmt, Branch.id, cursor, limit)


def any_user(session: Session) -> bool:
    return session.scalars(select(User.id).limit(1)).first() is not None
