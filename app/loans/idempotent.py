"""Money-moving loan actions share one shape: lock the loan, replay a stored answer for a known
Idempotency-Key, otherwise act and store the answer under the key in the same transaction."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import RequestInFlight
from app.database import Database
from app.domain.servicing import LoanState
from app.idempotency import keys as idempotency
from app.idempotency.keys import IdempotentRequest
from app.identity.access import Permission, Principal
from app.ledger.entries import EntryDraft
from app.loans import engine
from app.loans.engine import Outcome, unit_of_work
from app.loans.models import Loan, LoanTransaction
from app.loans.presenters import dry_run_out, loan_out


@dataclass
class MoneyResult:
    """A money-moving answer: the HTTP status and body to send (and store under the idempotency key)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    outcome: Outcome | None = field(default=None, repr=False)


def run_idempotent(
    db: Database,
    request: IdempotentRequest | None,
    run: Callable[[Session], MoneyResult],
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    try:
        with unit_of_work(db, dry_run) as session:
            result = run(session)
            if request is not None and not dry_run and not result.replayed:
                idempotency.store(session, request, result.status, result.body, ttl)
            return result
    except IntegrityError as exc:
        if request is None:
            raise
        # Same key used concurrently on another loan: whoever committed first owns it.
        with db.session(writer=False) as session:
            stored = idempotency.lookup(session, request)
        if stored is None:
            raise RequestInFlight("a request with this Idempotency-Key is still being processed") from exc
        return MoneyResult(stored.status, stored.body, replayed=True)


def begin(
    session: Session,
    principal: Principal,
    loan_id: str,
    permission: Permission,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
) -> tuple[Loan, MoneyResult | None]:
    """Lock and authorise; then either the stored answer for this key (a replay) or None (go ahead).
    The version check comes after the replay: a retried request must replay even though the loan moved on."""
    locked = engine.lock_for_write(session, principal, loan_id, permission, None, None if dry_run else request)
    if request is not None and not dry_run:
        stored = idempotency.stored_response(locked.stored_response, request)
        if stored is not None:
            return locked.loan, MoneyResult(stored.status, stored.body, replayed=True)
    engine.check_version(locked.loan, version)
    return locked.loan, None


def action_result(
    loan: Loan,
    today: date,
    state: LoanState | None,
    draft: EntryDraft | None,
    tx: LoanTransaction | None,
    dry_run: bool,
    more: list[EntryDraft] | None = None,
) -> MoneyResult:
    entries = ([draft] if draft else []) + (more or [])
    outcome = Outcome(loan, today, state, entries, tx)
    if dry_run:
        return MoneyResult(200, dry_run_out(loan, today, state, entries).model_dump(mode="json"), outcome=outcome)
    return MoneyResult(200, loan_out(loan, today).model_dump(mode="json"), outcome=outcome)
