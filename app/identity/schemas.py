from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.core.schemas import StrictModel
from app.identity.access import Role

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$"


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserCreate(StrictModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-64 characters: letters, digits, . _ @ -")
    password: str = Field(min_length=12, max_length=256, description="At least 12 characters")
    role: Role
    branch_id: str | None = Field(default=None, max_length=36)


class UserUpdate(StrictModel):
    role: Role | None = None
    branch_id: str | None = Field(default=None, max_length=36)
    is_active: StrictBool | None = Field(default=None, description="true or false (not 0/1)")
    password: str | None = Field(default=None, min_length=12, max_length=256)


class UserOut(BaseModel):
    """Never carries the password or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    role: Role
    branch_id: str | None
    is_active: bool
    created_at: datetime


class BranchCreate(StrictModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)


class BranchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    name: str
    created_at: datetime
