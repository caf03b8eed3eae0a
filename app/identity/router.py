from typing import Annotated

from fastapi import APIRouter, Form, Response

from app.api.deps import DEFAULT_PAGE_SIZE, ClientAddress, CurrentUser, Cursor, DbDep, Limit, LimiterDep, SettingsDep
from app.core.schemas import Page
from app.identity import service
from app.identity.schemas import BranchCreate, BranchOut, TokenOut, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/api/v1")


@router.post("/auth/token", response_model=TokenOut, tags=["auth"], summary="Sign in (OAuth2 password form)")
def sign_in(
    db: DbDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    client: ClientAddress,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> TokenOut:
    token = service.sign_in(db, settings, limiter, username, password, client)
    return TokenOut(access_token=token.access_token, expires_in=token.expires_in)


@router.get("/users/me", response_model=UserOut, tags=["users"])
def me(db: DbDep, principal: CurrentUser) -> UserOut:
    return UserOut.model_validate(service.get_me(db, principal))


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], summary="Create a user (admin)")
def create_user(db: DbDep, principal: CurrentUser, body: UserCreate, response: Response) -> UserOut:
    user = service.create_user(db, principal, body)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.model_validate(user)


@router.get("/users", response_model=Page[UserOut], tags=["users"], summary="List users (admin)")
def list_users(
    db: DbDep, principal: CurrentUser, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[UserOut]:
    users, next_cursor = service.list_users(db, principal, cursor, limit)
    return Page[UserOut](items=[UserOut.model_validate(u) for u in users], next_cursor=next_cursor)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(db: DbDep, principal: CurrentUser, user_id: str) -> UserOut:
    return UserOut.model_validate(service.get_user(db, principal, user_id))


@router.patch(
    "/users/{user_id}", response_model=UserOut, tags=["users"], summary="Change role, branch, status, password"
)
def update_user(db: DbDep, principal: CurrentUser, user_id: str, body: UserUpdate) -> UserOut:
    return UserOut.model_validate(service.update_user(db, principal, user_id, body))


@router.post(
    "/branches", response_model=BranchOut, status_code=201, tags=["branches"], summary="Create a branch (admin)"
)
def create_branch(db: DbDep, principal: CurrentUser, body: BranchCreate, response: Response) -> BranchOut:
    branch = service.create_branch(db, principal, body)
    response.headers["Location"] = f"/api/v1/branches/{branch.id}"
    return BranchOut.model_validate(branch)


@router.get("/branches", response_model=Page[BranchOut], tags=["branches"])
def list_branches(
    db: DbDep, principal: CurrentUser, limit: Limit = DEFAULT_PAGE_SIZE, cursor: Cursor = None
) -> Page[BranchOut]:
    branches, next_cursor = service.list_branches(db, principal, cursor, limit)
    return Page[BranchOut](items=[BranchOut.model_validate(b) for b in branches], next_cursor=next_cursor)


@router.get("/branches/{branch_id}", response_model=BranchOut, tags=["branches"])
def get_branch(db: DbDep, principal: CurrentUser, branch_id: str) -> BranchOut:
    return BranchOut.model_validate(service.get_branch(db, principal, branch_id))
