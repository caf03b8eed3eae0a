"""HTTP for loan modifications (maker-checker) and the undo actions: parse, authorise, call the service."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit
from app.core.schemas import Page
from app.loans import modifications, undo
from app.loans.action_routes import ERRORS, DryRun, LifecycleAction, add_lifecycle_actions
from app.loans.modification_schemas import DecisionIn, ModificationIn, ModificationOut, RejectIn

router = APIRouter(prefix="/api/v1/loans", tags=["modifications"])


@router.post(
    "/{loan_id}/modifications",
    status_code=201,
    response_model=ModificationOut,
    responses={**ERRORS, 200: {"model": ModificationOut, "description": "Dry run: the preview, nothing stored"}},
    summary="Request a modification (officer or above); stored pending with its preview",
)
def request_modification(
    db: DbDep, principal: CurrentUser, loan_id: str, body: ModificationIn, response: Response, dry_run: DryRun = False
) -> ModificationOut | JSONResponse:
    result = modifications.request(db, principal, loan_id, body, dry_run)
    if not result.stored:
        return JSONResponse(result.body.model_dump(mode="json"), status_code=200)
    response.headers["Location"] = f"/api/v1/loans/{loan_id}/modifications/{result.body.id}"
    return result.body


@router.get(
    "/{loan_id}/modifications",
    response_model=Page[ModificationOut],
    responses=ERRORS,
    summary="A loan's modification requests",
)
def list_modifications(
    db: DbDep,
    principal: CurrentUser,
    loan_id: str,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[ModificationOut]:
    items, next_cursor = modifications.list_for_loan(db, principal, loan_id, status, cursor, limit)
    return Page[ModificationOut](items=items, next_cursor=next_cursor)


@router.post(
    "/{loan_id}/modifications/{modification_id}/approve",
    response_model=ModificationOut,
    responses=ERRORS,
    summary="Approve and apply a modification (manager, not its requester)",
)
def approve_modification(
    db: DbDep,
    principal: CurrentUser,
    loan_id: str,
    modification_id: str,
    body: DecisionIn | None = None,
    dry_run: DryRun = False,
) -> ModificationOut:
    note = body.note if body is not None else None
    return modifications.approve(db, principal, loan_id, modification_id, note, dry_run)


@router.post(
    "/{loan_id}/modifications/{modification_id}/reject",
    response_model=ModificationOut,
    responses=ERRORS,
    summary="Reject a modification (manager, not its requester)",
)
def reject_modification(
    db: DbDep, principal: CurrentUser, loan_id: str, modification_id: str, body: RejectIn, dry_run: DryRun = False
) -> ModificationOut:
    return modifications.reject(db, principal, loan_id, modification_id, body.reason, dry_run)


add_lifecycle_actions(
    router,
    [
        LifecycleAction(
            "undo_approval",
            "undo-approval",
            None,
            lambda db, principal, loan_id, _, version, dry_run: undo.undo_approval(
                db, principal, loan_id, version, dry_run
            ),
            "Undo the approval (manager): approved -> submitted",
            ("loans",),
        ),
        LifecycleAction(
            "undo_disbursal",
            "undo-disbursal",
            None,
            lambda db, principal, loan_id, _, version, dry_run: undo.undo_disbursal(
                db, principal, loan_id, version, dry_run
            ),
            "Undo the disbursal (manager): active -> approved, while the disbursement is the only money transaction",
            ("loans",),
        ),
    ],
)
