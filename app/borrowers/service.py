"""Borrower use cases. Branch scope: officers create, see and change only their own branch's borrowers
(anything else is simply not found); auditors read only; moving a borrower between branches is for
managers and administrators. National IDs are never logged."""

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.borrowers import repository as repo
from app.borrowers.models import Borrower
from app.borrowers.schemas import BorrowerCreate, BorrowerUpdate
from app.business_calendar import repository as calendar_repo
from app.core.config import Settings
from app.core.errors import DuplicateValue, NotFound, PermissionDenied, ValidationFailed
from app.core.logging import get_logger
from app.core.orm import utcnow
from app.database import Database
from app.identity import repository as identity_repo
from app.identity.access import Permission, Principal
from app.loans import repository as loans

log = get_logger("app.borrowers")

MAX_AGE_YEARS = 130


def age_on(born: date, on: date) -> int:
    """Completed years; someone born on 29 February comes of age on 1 March in common years."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check_date_of_birth(born: date | None, business_date: date, min_age_years: int) -> None:
    if born is None:
        return
    if born > business_date:
        raise ValidationFailed.single("date_of_birth", f"must not be after the business date {business_date}")
    age = age_on(born, business_date)
    if age < min_age_years:
        raise ValidationFailed.single(
            "date_of_birth", f"the borrower must be at least {min_age_years} years old on the business date"
        )
    if age > MAX_AGE_YEARS:
        raise ValidationFailed.single("date_of_birth", f"must be within {MAX_AGE_YEARS} years of the business date")


def _require_branch(session: Session, branch_id: str) -> None:
    if identity_repo.get_branch(session, branch_id) is None:
        raise NotFound("branch not found")


def _duplicate(principal: Principal, found: tuple[str, str, str]) -> DuplicateValue:
    field, existing_id, branch_id = found
    return DuplicateValue(field, existing_id if principal.can_see_branch(branch_id) else None, "borrower")


def _raise_if_duplicate(
    session: Session, principal: Principal, national_id: str | None, external_id: str | None, exclude_id: str | None
) -> None:
    duplicate = repo.find_duplicate(session, national_id, external_id, exclude_id)
    if duplicate is not None:
        raise _duplicate(principal, duplicate)


def _duplicate_after_race(
    db: Database,
    principal: Principal,
    exc: IntegrityError,
    national_id: str | None,
    external_id: str | None,
    exclude_id: str | None,
) -> DuplicateValue:
    """A concurrent writer took a unique value between our check and our insert: name it like the check would."""
    with db.session(writer=False) as session:
        duplicate = repo.find_duplicate(session, national_id, external_id, exclude_id)
    if duplicate is None:
        raise exc
    return _duplicate(principal, duplicate)


def create_borrower(db: Database, settings: Settings, principal: Principal, data: BorrowerCreate) -> Borrower:
    principal.require_on(Permission.borrowers_write, data.branch_id, "branch")
    try:
        with db.transaction() as session:
            _require_branch(session, data.branch_id)
            check_date_of_birth(
                data.date_of_birth, calendar_repo.business_date(session), settings.min_borrower_age_years
            )
            _raise_if_duplicate(session, principal, data.national_id, data.external_id, None)
            borrower = Borrower(**data.model_dump())
            session.add(borrower)
            session.flush()
    except IntegrityError as exc:
        raise _duplicate_after_race(db, principal, exc, data.national_id, data.external_id, None) from exc
    log.info("borrower_created", borrower_id=borrower.id, branch_id=borrower.branch_id)
    return borrower


def _apply(borrower: Borrower, changes: dict[str, Any]) -> bool:
    changed = False
    for name, value in changes.items():
        if getattr(borrower, name) != value:
            setattr(borrower, name, value)
            changed = True
    return changed


def update_borrower(
    db: Database, settings: Settings, principal: Principal, borrower_id: str, data: BorrowerUpdate
) -> Borrower:
    changes = data.model_dump(exclude_unset=True)
    try:
        with db.transaction() as session:
            borrower = repo.get_borrower(session, borrower_id)
            if borrower is None:
                raise NotFound("borrower not found")
            principal.require_on(Permission.borrowers_write, borrower.branch_id, "borrower")
            if changes.get("branch_id", borrower.branch_id) != borrower.branch_id:
                if principal.branch_scope is not None:
                    raise PermissionDenied("only a manager or an administrator may move a borrower to another branch")
                _require_branch(session, changes["branch_id"])
            if changes.get("date_of_birth") is not None:
                check_date_of_birth(
                    changes["date_of_birth"], calendar_repo.business_date(session), settings.min_borrower_age_years
                )
            _raise_if_duplicate(session, principal, changes.get("national_id"), changes.get("external_id"), borrower.id)
            moved_from = borrower.branch_id
            if _apply(borrower, changes):
                borrower.updated_at = utcnow()
                session.flush()
            if borrower.branch_id != moved_from:
                moved = loans.move_borrower_loans(session, borrower.id, borrower.branch_id)
                log.info("borrower_moved", borrower_id=borrower.id, branch_id=borrower.branch_id, loans=moved)
    except IntegrityError as exc:
        raise _duplicate_after_race(
            db, principal, exc, changes.get("national_id"), changes.get("external_id"), borrower_id
        ) from exc
    log.info("borrower_updated", borrower_id=borrower.id, fields=sorted(changes))
    return borrower


def get_borrower(db: Database, principal: Principal, borrower_id: str) -> Borrower:
    with db.session(writer=False) as session:
        borrower = repo.get_borrower(session, borrower_id)
        if borrower is None:
            raise NotFound("borrower not found")
        principal.require_on(Permission.read, borrower.branch_id, "borrower")
        return borrower


def list_borrowers(
    db: Database,
    principal: Principal,
    branch_id: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Borrower], str | None]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        return repo.list_borrowers(session, principal.branch_scope, branch_id, q, cursor, limit)
