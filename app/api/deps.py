"""Typed dependencies: the database, settings, the caller, paging. Routers use these aliases only."""

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.core.errors import AuthenticationFailed
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.core.ratelimit import RateLimiter
from app.database import Database
from app.identity import service as identity
from app.identity.access import Principal

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

# Dependencies that only read app state are `async def`: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hand-off (and back) per dependency per request for nothing. Those that touch the database stay
# `def`, so they never block the event loop.


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_read_db(request: Request) -> Database:
    """Reports may read from a replica (DATABASE_READ_URL); everything else reads the primary."""
    db: Database = request.app.state.read_db
    return db


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


DbDep = Annotated[Database, Depends(get_db)]
ReadDbDep = Annotated[Database, Depends(get_read_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


async def current_principal(
    db: DbDep, settings: SettingsDep, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller: from this worker's recent read of the token's user when there is one (no thread hand-off, no
    statement), else read in the thread pool (the database driver blocks)."""
    if not token:
        raise AuthenticationFailed("sign in first: send Authorization: Bearer <token>")
    cached = identity.cached_principal(settings, token)
    if cached is not None:
        return cached
    return await run_in_threadpool(identity.principal_for_token, db, settings, token)


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (default 50, max 500)")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
DEFAULT_PAGE_SIZE = DEFAULT_LIMIT
