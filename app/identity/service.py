"""Identity use cases: sign-in, the caller behind a token, users and branches."""

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import AuthenticationFailed, DuplicateValue, NotFound, ValidationFailed
from app.core.orm import utcnow
from app.core.ratelimit import RateLimiter
from app.core.security import (
    AccessClaims,
    IssuedToken,
    burn_verification_time,
    decode_access_token,
    hash_password,
    issue_access_token,
    verify_password,
)
from app.database import Database
from app.identity import repository as repo
from app.identity.access import Permission, Principal, Role
from app.identity.models import Branch, User
from app.identity.passwords import check_password
from app.identity.schemas import BranchCreate, UserCreate, UserUpdate

BAD_CREDENTIALS = "incorrect username or password"
MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 256


def sign_in(
    db: Database, settings: Settings, limiter: RateLimiter, username: str, password: str, client: str
) -> IssuedToken:
    username = username.strip().lower()
    if (
        not username
        or len(username) > MAX_USERNAME_LENGTH
        or len(password) > MAX_PASSWORD_LENGTH
        or "\x00" in username  # no user has one, and PostgreSQL refuses NUL in text
    ):
        # Cannot name a user; refused before it becomes a rate-limit key (a 1 MB username would be stored).
        raise AuthenticationFailed(BAD_CREDENTIALS)
    limiter.check_login_allowed(username, client)
    with db.session(writer=False) as session:
        user = repo.get_user_by_username(session, username)
        if user is None:
            burn_verification_time(password)
            ok = False
        else:
            ok = verify_password(password, user.password_hash) and user.is_active
    if not ok or user is None:
        limiter.record_login_failure(username, client)
        raise AuthenticationFailed(BAD_CREDENTIALS)
    return issue_access_token(
        user.id,
        settings.secret_key.get_secret_value(),
        settings.algorithm,
        timedelta(minutes=settings.access_token_expire_minutes),
        user.credentials_version,
    )


@dataclass(frozen=True)
class _Holder:
    principal: Principal
    is_active: bool
    credentials_version: int
    read_at: float  # time.monotonic()


# The users behind bearer tokens as last read, per process, by user id (ids are UUIDs: one cache serves every
# database a process talks to). Bounded by the number of users; a change made here is forgotten at once, one
# made by another worker is seen within PRINCIPAL_CACHE_SECONDS.
_holders: dict[str, _Holder] = {}


def _claims(settings: Settings, token: str) -> AccessClaims:
    return decode_access_token(
        token,
        settings.secret_key.get_secret_value(),
        settings.algorithm,
        timedelta(minutes=settings.access_token_expire_minutes),
    )


def _principal_of(holder: _Holder, claims: AccessClaims) -> Principal:
    if not holder.is_active or holder.credentials_version != claims.credentials_version:
        raise AuthenticationFailed("the access token is invalid or expired")
    return holder.principal


def cached_principal(settings: Settings, token: str) -> Principal | None:
    """The caller behind a token from this process's recent reads, without I/O (safe on the event loop): None
    when its user was not read within PRINCIPAL_CACHE_SECONDS. Raises AuthenticationFailed for a token that is
    forged, expired, or whose user was deactivated or changed credentials."""
    claims = _claims(settings, token)
    holder = _holders.get(claims.subject)
    if holder is None or time.monotonic() - holder.read_at >= settings.principal_cache_seconds:
        return None
    return _principal_of(holder, claims)


def principal_for_token(db: Database, settings: Settings, token: str) -> Principal:
    claims = _claims(settings, token)
    with db.single_statement_read() as session:
        user = repo.token_holder(session, claims.subject)
    if user is None:
        _holders.pop(claims.subject, None)
        raise AuthenticationFailed("the access token is invalid or expired")
    holder = _Holder(
        Principal(user.id, user.username, Role(user.role), user.branch_id),
        bool(user.is_active),
        int(user.credentials_version),
        time.monotonic(),
    )
    if settings.principal_cache_seconds > 0:
        _holders[user.id] = holder
    return _principal_of(holder, claims)


def forget_token_holder(user_id: str) -> None:
    """A change to the user (role, branch, active, credentials) applies to this process's next request at once."""
    _holders.pop(user_id, None)


def get_me(db: Database, principal: Principal) -> User:
    with db.session(writer=False) as session:
        user = repo.get_user(session, principal.user_id)
        if user is None:
            raise NotFound("user not found")
        return user


def _check_branch_assignment(session: Session, role: Role, branch_id: str | None) -> None:
    if branch_id is not None and repo.get_branch(session, branch_id) is None:
        raise ValidationFailed.single("branch_id", "no branch with this id")
    if role == Role.officer and branch_id is None:
        raise ValidationFailed.single("branch_id", "an officer must belong to a branch")


def create_user(db: Database, principal: Principal, data: UserCreate) -> User:
    principal.require(Permission.users_admin)
    username = data.username.lower()
    check_password(data.password, username)
    with db.transaction() as session:
        _check_branch_assignment(session, data.role, data.branch_id)
        existing = repo.get_user_by_username(session, username)
        if existing is not None:
            raise DuplicateValue("username", existing.id, "user")
        user = User(
            username=username,
            password_hash=hash_password(data.password),
            role=data.role.value,
            branch_id=data.branch_id,
            is_active=True,
        )
        session.add(user)
        try:
            session.flush()
        except IntegrityError as exc:
            raise DuplicateValue("username", "", "user") from exc
        return user


def update_user(db: Database, principal: Principal, user_id: str, data: UserUpdate) -> User:
    principal.require(Permission.users_admin)
    with db.transaction() as session:
        user = repo.get_user(session, user_id)
        if user is None:
            raise NotFound("user not found")
        role = data.role or Role(user.role)
        branch_id = data.branch_id if "branch_id" in data.model_fields_set else user.branch_id
        _check_branch_assignment(session, role, branch_id)
        if user.id == principal.user_id and (data.is_active is False or role != Role.admin):
            raise ValidationFailed.single("role", "an administrator cannot demote or disable themselves")
        user.role, user.branch_id = role.value, branch_id
        revoke = (data.is_active is False and user.is_active) or data.password is not None
        if data.is_active is not None:
            user.is_active = data.is_active
        if data.password is not None:
            check_password(data.password, user.username)
            user.password_hash = hash_password(data.password)
        if revoke:
            user.credentials_version += 1
        user.updated_at = utcnow()
    forget_token_holder(user.id)  # after the commit: a request in between reads the old row and caches it
    return user


def list_users(db: Database, principal: Principal, cursor: str | None, limit: int) -> tuple[Sequence[User], str | None]:
    principal.require(Permission.users_admin)
    with db.session(writer=False) as session:
        return repo.list_users(session, cursor, limit)


def get_user(db: Database, principal: Principal, user_id: str) -> User:
    principal.require(Permission.users_admin)
    with db.session(writer=False) as session:
        user = repo.get_user(session, user_id)
        if user is None:
            raise NotFound("user not found")
        return user


def create_branch(db: Database, principal: Principal, data: BranchCreate) -> Branch:
    principal.require(Permission.branches_admin)
    with db.transaction() as session:
        existing = repo.get_branch_by_code(session, data.code)
        if existing is not None:
            raise DuplicateValue("code", existing.id, "branch")
        branch = Branch(code=data.code, name=data.name)
        session.add(branch)
        try:
            session.flush()
        except IntegrityError as exc:
            raise DuplicateValue("code", "", "branch") from exc
        return branch


def list_branches(
    db: Database, principal: Principal, cursor: str | None, limit: int
) -> tuple[Sequence[Branch], str | None]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        return repo.list_branches(session, principal.branch_scope, cursor, limit)


def get_branch(db: Database, principal: Principal, branch_id: str) -> Branch:
    with db.session(writer=False) as session:
        branch = repo.get_branch(session, branch_id)
        if branch is None or not principal.can_see_branch(branch.id):
            raise NotFound("branch not found")
        return branch


def get_branch_by_code(db: Database, code: str) -> Branch | None:
    with db.session(writer=False) as session:
        return repo.get_branch_by_code(session, code)


def ensure_user(
    db: Database, username: str, password: str, role: Role, branch_code: str | None = None
) -> tuple[User, bool]:
    """Operator path (CLI, bootstrap): create the user unless it exists. Returns (user, created)."""
    username = username.strip().lower()
    with db.transaction() as session:
        existing = repo.get_user_by_username(session, username)
        if existing is not None:
            return existing, False
        check_password(password, username)
        branch_id = None
        if branch_code is not None:
            branch = repo.get_branch_by_code(session, branch_code)
            if branch is None:
                raise ValidationFailed.single("branch", f"no branch with code {branch_code!r}")
            branch_id = branch.id
        _check_branch_assignment(session, role, branch_id)
        user = User(username=username, password_hash=hash_password(password), role=role.value, branch_id=branch_id)
        session.add(user)
        session.flush()
        return user, True


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def has_users(db: Database) -> bool:
    with db.session(writer=False) as session:
        return repo.any_user(session)
