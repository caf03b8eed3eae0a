from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit, SettingsDep
from app.borrowers import service
from app.borrowers.schemas import NO_CONTROL_CHARACTERS, BorrowerCreate, BorrowerOut, BorrowerUpdate
from app.core.schemas import Page

router = APIRouter(prefix="/api/v1", tags=["borrowers"])

BranchFilter = Annotated[
    str | None, Query(max_length=36, pattern=NO_CONTROL_CHARACTERS, description="Only borrowers of this branch")
]
Search = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=NO_CONTROL_CHARACTERS,
        description="Case-insensitive prefix of the full name (either order), the external ID or the national ID "
        "(separators ignored)",
    ),
]


@router.post(
    "/borrowers",
    response_model=BorrowerOut,
    status_code=201,
    summary="Register a borrower",
    description="Officers register borrowers in their own branch only (another branch is not found). National and "
    "external IDs are unique (409 names the field and the existing borrower). The date of birth is checked "
    "against the business date and the minimum borrower age.",
)
def create_borrower(
    db: DbDep, settings: SettingsDep, principal: CurrentUser, body: BorrowerCreate, response: Response
) -> BorrowerOut:
    borrower = service.create_borrower(db, settings, principal, body)
    response.headers["Location"] = f"/api/v1/borrowers/{borrower.id}"
    return BorrowerOut.model_validate(borrower)


@router.get("/borrowers", response_model=Page[BorrowerOut], summary="List and search borrowers")
def list_borrowers(
    db: DbDep,
    principal: CurrentUser,
    branch_id: BranchFilter = None,
    q: Search = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[BorrowerOut]:
    borrowers, next_cursor = service.list_borrowers(db, principal, branch_id, q, cursor, limit)
    return Page[BorrowerOut](items=[BorrowerOut.model_validate(b) for b in borrowers], next_cursor=next_cursor)


@router.get("/borrowers/{borrower_id}", response_model=BorrowerOut, summary="One borrower")
def get_borrower(db: DbDep, principal: CurrentUser, borrower_id: str) -> BorrowerOut:
    return BorrowerOut.model_validate(service.get_borrower(db, principal, borrower_id))


@router.patch(
    "/borrowers/{borrower_id}",
    response_model=BorrowerOut,
    summary="Change a borrower",
    description="Partial update: only the fields sent change, `null` clears an optional field. Changing "
    "`branch_id` moves the borrower to another branch and is for managers and administrators (officers: 403).",
)
def update_borrower(
    db: DbDep, settings: SettingsDep, principal: CurrentUser, borrower_id: str, body: BorrowerUpdate
) -> BorrowerOut:
    return BorrowerOut.model_validate(service.update_borrower(db, settings, principal, borrower_id, body))
