"""Loan modifications with maker-checker (CONTRACT "Modifications"): request (stored `pending` with a preview
from the same projection that will apply it), approve (appends a `modification` event and re-projects the
loan: schedule, balances, DPD, late fees and the correcting journal entry), reject, list."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from app.core.orm import utcnow
from app.core.pagination import paginate
from app.core.schemas import money_out
from app.database import Database
from app.domain.apr import apr_percent
from app.domain.calendar import Frequency
from app.domain.errors import DomainError, InvalidTransition
from app.domain.lifecycle import LoanStatus, actions_allowed
from app.domain.modifications import HolidayInterest, ModificationType, event_fields
from app.domain.money import currency, from_minor
from app.domain.schedule import MAX_RATE_PERCENT, InterestMethod
from app.domain.servicing import InterestRecalculation, LoanState, Modification, period_numbers, project
from app.identity.access import Permission, Principal
from app.loans import engine
from app.loans import repository as repo
from app.loans.engine import unit_of_work
from app.loans.models import Loan, LoanModification
from app.loans.modification_schemas import (
    ModificationIn,
    ModificationOut,
    ModificationPreview,
    PreviewTotals,
)
from app.loans.presenters import installments_out
from app.loans.service import minor_amount
from app.loans.terms import domain_events, loan_terms

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
# Which request fields belong to which type (anything else given is refused, naming the field).
FIELDS: dict[ModificationType, tuple[str, ...]] = {
    ModificationType.reschedule: ("new_term", "new_installment_amount", "new_annual_rate_percent", "new_next_due_date"),
    ModificationType.payment_holiday: ("installments", "interest"),
    ModificationType.rate_change: ("annual_rate_percent",),
    ModificationType.re_age: (),
}
ALL_FIELDS = frozenset(f for fields in FIELDS.values() for f in fields)


@dataclass(frozen=True)
class ModificationResult:
    body: ModificationOut
    stored: bool


def _rate(value: Decimal, field: str) -> Decimal:
    if not 0 <= value <= MAX_RATE_PERCENT:
        raise ValidationFailed.single(field, f"must be from 0 to {MAX_RATE_PERCENT} percent")
    if value != value.quantize(Decimal("0.000001")):
        raise ValidationFailed.single(field, "at most 6 decimals")
    return value.normalize() if value == value.to_integral_value() else value


def _check_loan(loan: Loan) -> None:
    if loan.status != LoanStatus.active.value:
        raise InvalidTransition(loan.status, "modify", actions_allowed(LoanStatus(loan.status), loan.credit_balance))
    if loan.interest_recalculation != InterestRecalculation.none.value:
        raise ValidationFailed.single(
            "type", "modifications of daily-recalculation (simple-interest) loans are not supported"
        )
    if loan.interest_method == InterestMethod.flat.value:
        raise ValidationFailed.single("type", "modifications of flat-interest loans are not supported")


def _event(session: Session, loan: Loan, data: ModificationIn, today: date) -> Modification:
    """Validate the request against the loan and build the domain event it would append."""
    kind = ModificationType(data.type)
    given = {f for f in ALL_FIELDS if getattr(data, f) is not None}
    stray = sorted(given - set(FIELDS[kind]))
    if stray:
        raise ValidationFailed.single(stray[0], f"is not a field of a {kind.value} modification")
    on = data.effective_date or today
    assert loan.disbursement_date is not None
    if on > today:
        raise ValidationFailed.single("effective_date", f"must not be after the business date {today.isoformat()}")
    if on < loan.disbursement_date:
        raise ValidationFailed.single("effective_date", "must not be before the disbursement date")
    seq = loan.event_seq + 1
    if kind == ModificationType.reschedule:
        if not given:
            raise ValidationFailed.single("new_term", "a reschedule needs at least one of " + ", ".join(FIELDS[kind]))
        amount = None
        if data.new_installment_amount is not None:
            amount = minor_amount(data.new_installment_amount, currency(loan.currency), "new_installment_amount")
        rate = None
        if data.new_annual_rate_percent is not None:
            rate = _rate(data.new_annual_rate_percent, "new_annual_rate_percent")
        if data.new_next_due_date is not None and not on < data.new_next_due_date <= on + timedelta(days=366):
            raise ValidationFailed.single("new_next_due_date", "must be after the effective date and within a year")
        if data.new_term is not None:
            _check_term(session, loan, on, data.new_term)
        return Modification(seq, on, kind.value, data.new_term, amount, rate, data.new_next_due_date)
    if kind == ModificationType.payment_holiday:
        if data.installments is None:
            raise ValidationFailed.single("installments", "required: the number of due dates to skip")
        interest = data.interest or HolidayInterest.capitalized.value
        return Modification(seq, on, kind.value, holiday_installments=data.installments, holiday_interest=interest)
    if kind == ModificationType.rate_change:
        if data.annual_rate_percent is None:
            raise ValidationFailed.single("annual_rate_percent", "required: the new nominal annual rate")
        return Modification(
            seq, on, kind.value, annual_rate_percent=_rate(data.annual_rate_percent, "annual_rate_percent")
        )
    return Modification(seq, on, kind.value)


def _check_term(session: Session, loan: Loan, on: date, new_term: int) -> None:
    state = project(loan_terms(loan), domain_events(repo.events(session, loan.id)), on)
    rows = state.installments
    due = [period for r, period in zip(rows, period_numbers(rows), strict=True) if r.due_date <= on]
    least = (max(due) if due else 0) + 1
    if new_term < least:
        raise ValidationFailed.single("new_term", f"must be at least {least}: installments up to {least - 1} are due")


def _params(data: ModificationIn) -> dict[str, str | int | None]:
    out: dict[str, str | int | None] = {}
    for name in FIELDS[ModificationType(data.type)]:
        value = getattr(data, name)
        if value is not None:
            out[name] = value if isinstance(value, int) else str(value)
    if data.type == ModificationType.payment_holiday.value and "interest" not in out:
        out["interest"] = HolidayInterest.capitalized.value
    return out


def preview(session: Session, loan: Loan, mod: Modification, today: date) -> ModificationPreview:
    """The loan as it would stand on the business date with `mod` applied: the projection that approval runs."""
    events = [*domain_events(repo.events(session, loan.id)), mod]
    state = project(loan_terms(loan), events, max(today, mod.date))
    return _preview_out(loan, state)


def _preview_out(loan: Loan, state: LoanState) -> ModificationPreview:
    code = loan.currency
    rows = state.installments
    principal = sum(r.principal for r in rows)
    interest = sum(r.interest for r in rows)
    return ModificationPreview(
        as_of=state.as_of,
        installment_amount=money_out(state.installment_amount, code),
        maturity_date=state.maturity_date,
        installments=installments_out(rows, code, state.as_of),
        totals=PreviewTotals(
            principal=money_out(principal, code),
            interest=money_out(interest, code),
            total=money_out(principal + interest, code),
        ),
        apr_percent=_apr(loan, state),
        balances={
            "principal": money_out(state.principal_outstanding, code),
            "interest": money_out(state.interest_outstanding, code),
            "fees": money_out(state.fees_outstanding, code),
            "penalties": money_out(state.penalties_outstanding, code),
            "total": money_out(state.total_outstanding, code),
        },
        days_past_due=state.days_past_due,
    )


def _apr(loan: Loan, state: LoanState) -> str | None:
    """Reg Z App. J APR of the whole loan as modified: the disbursement against every installment's
    scheduled principal and interest on its due date (unit period = the loan's frequency)."""
    assert loan.disbursed_principal is not None and loan.disbursement_date is not None
    cur = currency(loan.currency)
    payments = [(r.due_date, from_minor(r.principal + r.interest, cur)) for r in state.installments]
    anchor = loan.first_payment_date.day if loan.first_payment_date else None
    try:
        value = apr_percent(
            from_minor(loan.disbursed_principal, cur),
            loan.disbursement_date,
            payments,
            Frequency(loan.frequency),
            anchor_day=anchor,
            interval=loan.frequency_interval,
        )
    except (ArithmeticError, ValueError, DomainError):  # no solution (e.g. payments below the amount financed)
        return None
    return str(value)


def _out(mod: LoanModification) -> ModificationOut:
    return ModificationOut(
        id=mod.id,
        loan_id=mod.loan_id,
        type=mod.type,
        status=mod.status,
        effective_date=mod.effective_date,
        note=mod.note,
        params=mod.params,
        requested_by=mod.requested_by,
        requested_by_username=mod.requested_by_username,
        decided_by=mod.decided_by,
        decided_by_username=mod.decided_by_username,
        decided_at=mod.decided_at,
        decision_reason=mod.decision_reason,
        loan_version=mod.loan_version,
        preview=ModificationPreview.model_validate(mod.preview),
        created_at=mod.created_at,
    )


def request(
    db: Database, principal: Principal, loan_id: str, data: ModificationIn, dry_run: bool
) -> ModificationResult:
    with unit_of_work(db, dry_run) as session:
        loan = engine.load_for_write(session, principal, loan_id, Permission.loans_originate, None)
        _check_loan(loan)
        today = engine.business_date(session)
        mod = _event(session, loan, data, today)
        shown = preview(session, loan, mod, today)
        row = LoanModification(
            loan_id=loan.id,
            type=data.type,
            status=PENDING,
            effective_date=mod.date,
            params=_params(data),
            note=data.note,
            preview=shown.model_dump(mode="json"),
            loan_version=loan.version,
            requested_by=principal.user_id,
            requested_by_username=principal.username,
        )
        if dry_run:
            body = _out_unsaved(row, shown)
            return ModificationResult(body, stored=False)
        session.add(row)
        session.flush()
        audit.record(
            session,
            principal,
            "loan.modification_requested",
            "loan",
            loan.id,
            loan.status,
            loan.status,
            {
                "modification_id": row.id,
                "type": row.type,
                "effective_date": mod.date.isoformat(),
                "requested_by": principal.username,
            },
        )
        session.flush()
        return ModificationResult(_out(row), stored=True)


def _out_unsaved(row: LoanModification, shown: ModificationPreview) -> ModificationOut:
    return ModificationOut(
        id=None,
        loan_id=row.loan_id,
        type=row.type,
        status="preview",
        effective_date=row.effective_date,
        note=row.note,
        params=row.params,
        requested_by=row.requested_by,
        requested_by_username=row.requested_by_username,
        loan_version=row.loan_version,
        preview=shown,
    )


def _load(session: Session, principal: Principal, loan_id: str, mid: str) -> tuple[Loan, LoanModification]:
    loan = engine.load_for_write(session, principal, loan_id, Permission.loans_reschedule, None)
    mod = session.get(LoanModification, mid)
    if mod is None or mod.loan_id != loan.id:
        raise NotFound("modification not found on this loan")
    if mod.status != PENDING:
        raise Conflict(f"this modification is already {mod.status}", allowed_actions=[])
    if mod.requested_by == principal.user_id:
        raise PermissionDenied("a modification is approved or rejected by someone other than its requester")
    return loan, mod


def _stored_request(mod: LoanModification) -> ModificationIn:
    fields: dict[str, Any] = {"type": mod.type, "effective_date": mod.effective_date}
    fields.update({k: v for k, v in mod.params.items() if v is not None})
    return ModificationIn.model_validate(fields)


def approve(
    db: Database, principal: Principal, loan_id: str, mid: str, note: str | None, dry_run: bool
) -> ModificationOut:
    with unit_of_work(db, dry_run) as session:
        loan, mod = _load(session, principal, loan_id, mid)
        _check_loan(loan)
        today = engine.business_date(session)
        event = _event(session, loan, _stored_request(mod), today)
        if loan.version != mod.loan_version:  # the loan changed since the request: show what is applied now
            mod.preview = preview(session, loan, event, today).model_dump(mode="json")
            mod.loan_version = loan.version
        before = loan.status
        appended = engine.append_event(
            session,
            loan,
            principal,
            "modification",
            event.date,
            None,
            {"modification_id": mod.id, "type": mod.type, "event": event_fields(event)},
        )
        engine.reproject(
            session,
            loan,
            today,
            principal,
            "modification",
            event.date,
            description=f"modification: {mod.type}",
            appended=appended,
        )
        _decide(mod, principal, APPROVED, note)
        mod.event_seq = appended.seq
        audit.record(
            session,
            principal,
            "loan.modification_approved",
            "loan",
            loan.id,
            before,
            loan.status,
            {
                "modification_id": mod.id,
                "type": mod.type,
                "effective_date": mod.effective_date.isoformat(),
                "requested_by": mod.requested_by_username,
                "approved_by": principal.username,
            },
        )
        session.flush()
        return _out(mod)


def reject(db: Database, principal: Principal, loan_id: str, mid: str, reason: str, dry_run: bool) -> ModificationOut:
    with unit_of_work(db, dry_run) as session:
        loan, mod = _load(session, principal, loan_id, mid)
        _decide(mod, principal, REJECTED, reason)
        audit.record(
            session,
            principal,
            "loan.modification_rejected",
            "loan",
            loan.id,
            loan.status,
            loan.status,
            {
                "modification_id": mod.id,
                "requested_by": mod.requested_by_username,
                "rejected_by": principal.username,
                "reason": reason,
            },
        )
        session.flush()
        return _out(mod)


def _decide(mod: LoanModification, principal: Principal, status: str, reason: str | None) -> None:
    mod.status = status
    mod.decided_by, mod.decided_by_username = principal.user_id, principal.username
    mod.decided_at = utcnow()
    mod.decision_reason = reason


def list_for_loan(
    db: Database, principal: Principal, loan_id: str, status: str | None, cursor: str | None, limit: int
) -> tuple[list[ModificationOut], str | None]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        loan = repo.get(session, loan_id)
        if loan is None or not principal.can_see_branch(loan.branch_id):
            raise NotFound("loan not found")
        stmt = select(LoanModification).where(LoanModification.loan_id == loan.id)
        if status is not None:
            stmt = stmt.where(LoanModification.status == status)
        rows, next_cursor = paginate(session, stmt, LoanModification.id, cursor, limit)
        return [_out(r) for r in rows], next_cursor


def pending_queue(db: Database, principal: Principal, limit: int = 200) -> list[tuple[Loan, ModificationOut]]:
    """Pending requests across the branches the caller sees (the managers' queue in the console)."""
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        stmt = (
            select(LoanModification, Loan)
            .join(Loan, Loan.id == LoanModification.loan_id)
            .where(LoanModification.status == PENDING)
            .order_by(LoanModification.created_at, LoanModification.id)
            .limit(limit)
        )
        if principal.branch_scope is not None:
            stmt = stmt.where(Loan.branch_id == principal.branch_scope)
        found: Sequence[Any] = session.execute(stmt).all()
        return [(loan, _out(mod)) for mod, loan in found]
