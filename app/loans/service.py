"""Origination use cases: submit, approve, reject, withdraw, disburse; and reads (loan, list, schedule)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.borrowers import repository as borrowers
from app.core.errors import DuplicateValue, FieldError, NotFound, ValidationFailed
from app.core.metrics import LOANS_DISBURSED
from app.core.schemas import money_out
from app.database import Database
from app.domain.errors import DomainValidationError, InvalidTransition
from app.domain.lifecycle import MONEY_STATUSES, LoanAction, LoanStatus, actions_allowed
from app.domain.money import Currency, currency, to_minor
from app.domain.schedule import generate_schedule
from app.domain.servicing import AccrualSegment, Installment, LoanState, payoff_quote, project
from app.idempotency.keys import IdempotentRequest
from app.identity.access import Permission, Principal
from app.ledger.accounts import DEFAULT_ACCOUNTS
from app.loans import engine, idempotent
from app.loans import repository as repo
from app.loans.charges import apply_disbursement_charges
from app.loans.engine import Outcome, unit_of_work
from app.loans.idempotent import MoneyResult
from app.loans.models import Loan, LoanInstallment, LoanTransaction
from app.loans.numbering import next_account_no
from app.loans.schemas import ApproveIn, DisburseIn, LoanCreate, ReasonIn, WithdrawIn
from app.loans.terms import domain_events, loan_terms, schedule_terms
from app.products import repository as products
from app.products.schemas import format_rate, rate_to_e6


def minor_amount(amount: Decimal, cur: Currency, field: str, *, positive: bool = True) -> int:
    """A request amount in minor units, refusing more decimals than the currency has (CONTRACT Money)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > cur.minor_units:
        # Textual, like the contract's "1.500 for USD": a trailing zero beyond the currency's decimals is a typo.
        raise ValidationFailed.single(field, f"at most {cur.minor_units} decimals for {cur.code}")
    try:
        units = to_minor(amount, cur)
    except (DomainValidationError, ValueError, ArithmeticError) as exc:
        raise ValidationFailed.single(field, f"at most {cur.minor_units} decimals for {cur.code}") from exc
    if positive and units <= 0:
        raise ValidationFailed.single(field, "must be greater than 0")
    return units


def money_date(loan: Loan, requested: date | None, today: date, field: str = "date") -> date:
    """A money action's value date: the business date by default, never after it nor before the disbursement."""
    on = requested or today
    if on > today:
        raise ValidationFailed.single(field, f"must not be after the business date {today.isoformat()}")
    if loan.disbursement_date is None or on < loan.disbursement_date:
        raise ValidationFailed.single(field, "must not be before the disbursement date")
    return on


def _check_limits(
    errors: list[FieldError],
    field: str,
    value: int | Decimal,
    low: int | Decimal,
    high: int | Decimal,
    shown_low: str,
    shown_high: str,
) -> None:
    if not low <= value <= high:
        errors.append(FieldError(field, f"must be between {shown_low} and {shown_high} for this product"))


def submit(db: Database, principal: Principal, data: LoanCreate, dry_run: bool) -> Outcome:
    with unit_of_work(db, dry_run) as session:
        borrower = borrowers.get_borrower(session, data.borrower_id)
        if borrower is None or not principal.can_see_branch(borrower.branch_id):
            raise ValidationFailed.single("borrower_id", "no such borrower")
        principal.require(Permission.loans_originate)
        product = products.get_product(session, data.product_id)
        if product is None or not product.is_active:
            raise ValidationFailed.single("product_id", "no such active product")
        cur = currency(product.currency)
        amount = minor_amount(data.principal, cur, "principal")
        term = (
            data.term if data.term is not None else product.min_term if product.min_term == product.max_term else None
        )
        if term is None:
            raise ValidationFailed.single(
                "term", f"required: this product allows {product.min_term}-{product.max_term}"
            )
        rate_e6 = product.annual_rate_e6 if data.annual_rate_percent is None else rate_to_e6(data.annual_rate_percent)
        errors: list[FieldError] = []
        _check_limits(
            errors,
            "principal",
            amount,
            product.min_principal_minor,
            product.max_principal_minor,
            money_out(product.min_principal_minor, cur.code),
            money_out(product.max_principal_minor, cur.code),
        )
        _check_limits(
            errors, "term", term, product.min_term, product.max_term, str(product.min_term), str(product.max_term)
        )
        _check_limits(
            errors,
            "annual_rate_percent",
            rate_e6,
            product.min_rate_e6,
            product.max_rate_e6,
            format_rate(product.min_rate_e6),
            format_rate(product.max_rate_e6),
        )
        if data.annual_rate_percent is not None and rate_to_e6(
            data.annual_rate_percent
        ) != data.annual_rate_percent.scaleb(6):
            errors.append(FieldError("annual_rate_percent", "at most 6 decimals"))
        if errors:
            raise ValidationFailed(errors)
        today = engine.business_date(session)
        if data.expected_disbursement_date is not None and data.expected_disbursement_date < today:
            raise ValidationFailed.single("expected_disbursement_date", "must not be before the business date")
        if data.external_id is not None:
            existing = repo.by_external_id(session, data.external_id)
            if existing is not None:
                shown = existing.id if principal.can_see_branch(existing.branch_id) else None
                raise DuplicateValue("external_id", shown, "loan")
        loan = Loan(
            branch_id=borrower.branch_id,
            borrower_id=borrower.id,
            product_id=product.id,
            external_id=data.external_id,
            currency=cur.code,
            status=LoanStatus.submitted.value,
            version=1,
            requested_principal=amount,
            annual_rate_e6=rate_e6,
            term=term,
            frequency=product.frequency,
            amortization=product.amortization,
            interest_method=product.interest_method,
            day_count=product.day_count,
            grace_principal_periods=product.grace_principal_periods,
            late_fee_amount_minor=product.late_fee_amount_minor,
            late_fee_percent_e6=product.late_fee_percent_e6,
            late_fee_grace_days=product.late_fee_grace_days,
            allocation_order=list(product.allocation_order),
            prepayment=product.prepayment,
            non_accrual_after_days=product.non_accrual_after_days,
            interest_recalculation=product.interest_recalculation,
            charges=list(product.charges or []),
            account_no=next_account_no(session, borrower.branch_id),
            multi_disbursement=product.multi_disbursement,
            frequency_interval=product.frequency_interval,
            tranches_disbursed=0,
            accounts={role.value: code for role, code in DEFAULT_ACCOUNTS.items()},
            expected_disbursement_date=data.expected_disbursement_date,
            first_payment_date=data.first_payment_date,
            submitted_on=today,
            created_by=principal.user_id,
            event_seq=0,
        )
        _preview_schedule(loan, amount, data.expected_disbursement_date or today)
        session.add(loan)
        try:
            session.flush()
        except IntegrityError as exc:
            raise DuplicateValue("external_id", "", "loan") from exc
        engine.append_event(session, loan, principal, "submitted", today, amount)
        audit.record(session, principal, "loan.submit", "loan", loan.id, None, loan.status)
        session.flush()
        return Outcome(loan, today)


def _preview_schedule(loan: Loan, principal_minor: int, disbursement_date: date) -> list[Installment]:
    """Generate the schedule these terms would give; refuses terms the engine cannot schedule (422)."""
    sched = generate_schedule(schedule_terms(loan, principal_minor, disbursement_date))
    cur = currency(loan.currency)
    return [
        Installment(r.number, r.period_start, r.due_date, to_minor(r.principal, cur), to_minor(r.interest, cur))
        for r in sched.installments
    ]


def approve(
    db: Database, principal: Principal, loan_id: str, data: ApproveIn, version: int | None, dry_run: bool
) -> Outcome:
    with unit_of_work(db, dry_run) as session:
        loan = engine.load_for_write(session, principal, loan_id, Permission.loans_approve, version)
        before = loan.status
        target = engine.check_action(loan, LoanAction.approve)
        approved = loan.requested_principal
        if data.approved_principal is not None:
            approved = minor_amount(data.approved_principal, currency(loan.currency), "approved_principal")
            if approved > loan.requested_principal:
                raise ValidationFailed.single("approved_principal", "must not exceed the requested principal")
            _check_product_minimum(session, loan, approved, "approved_principal")
        today = engine.business_date(session)
        loan.approved_principal, loan.approved_on, loan.status = approved, today, target.value
        loan.version += 1
        engine.append_event(session, loan, principal, "approved", today, approved, {"note": data.note})
        audit.record(
            session,
            principal,
            "loan.approve",
            "loan",
            loan.id,
            before,
            loan.status,
            {"approved_principal": money_out(approved, loan.currency)},
        )
        session.flush()
        return Outcome(loan, today)


def reject(
    db: Database, principal: Principal, loan_id: str, data: ReasonIn, version: int | None, dry_run: bool
) -> Outcome:
    return _close_application(
        db, principal, loan_id, LoanAction.reject, Permission.loans_approve, data.reason, version, dry_run
    )


def withdraw(
    db: Database, principal: Principal, loan_id: str, data: WithdrawIn, version: int | None, dry_run: bool
) -> Outcome:
    return _close_application(
        db, principal, loan_id, LoanAction.withdraw, Permission.loans_originate, data.reason, version, dry_run
    )


def _close_application(
    db: Database,
    principal: Principal,
    loan_id: str,
    action: LoanAction,
    permission: Permission,
    reason: str | None,
    version: int | None,
    dry_run: bool,
) -> Outcome:
    with unit_of_work(db, dry_run) as session:
        loan = engine.load_for_write(session, principal, loan_id, permission, version)
        before = loan.status
        loan.status = engine.check_action(loan, action).value
        loan.version += 1
        today = engine.business_date(session)
        engine.append_event(session, loan, principal, loan.status, today, None, {"reason": reason})
        audit.record(
            session, principal, f"loan.{action.value}", "loan", loan.id, before, loan.status, {"reason": reason}
        )
        session.flush()
        return Outcome(loan, today)


def disburse(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: DisburseIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = idempotent.begin(
            session, principal, loan_id, Permission.loans_originate, request, version, dry_run
        )
        if replay is not None:
            return replay
        before = loan.status
        if loan.status == LoanStatus.active.value and loan.multi_disbursement:
            from app.loans import tranches  # it imports this module

            return tranches.disburse_tranche(session, principal, loan, data, dry_run)
        engine.check_action(loan, LoanAction.disburse)
        today = engine.business_date(session)
        on = data.date or today
        if on > today:
            raise ValidationFailed.single("date", f"must not be after the business date {today.isoformat()}")
        if loan.approved_on is not None and on < loan.approved_on:
            raise ValidationFailed.single("date", f"must not be before the approval on {loan.approved_on.isoformat()}")
        approved = loan.approved_principal or loan.requested_principal
        amount = approved if data.amount is None else minor_amount(data.amount, currency(loan.currency), "amount")
        if amount > approved:
            raise ValidationFailed.single("amount", "must not exceed the approved principal")
        _check_product_minimum(session, loan, amount, "amount")
        if loan.first_payment_date is not None and loan.first_payment_date <= on:
            raise ValidationFailed.single("date", "must be before the loan's first_payment_date")
        loan.disbursed_principal, loan.disbursement_date = amount, on
        try:
            generate_schedule(schedule_terms(loan, amount, on))
        except DomainValidationError as exc:
            raise ValidationFailed.single("date" if "date" in exc.field else "amount", exc.message) from exc
        deducted = apply_disbursement_charges(loan)
        tx = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="disbursement",
            date=on,
            amount=amount,
            created_by=principal.user_id,
        )
        engine.record_transaction(session, loan, principal, tx, "disbursed", amount)
        state, draft = engine.reproject(
            session, loan, today, principal, "disbursement", on, tx.id, description="loan disbursement"
        )
        audit.record(
            session,
            principal,
            "loan.disburse",
            "loan",
            loan.id,
            before,
            loan.status,
            {
                "amount": money_out(amount, loan.currency),
                "date": on.isoformat(),
                "paid_out": money_out(amount - deducted, loan.currency),
            },
        )
        session.flush()
        if not dry_run:
            LOANS_DISBURSED.inc()
        return idempotent.action_result(loan, today, state, draft, tx, dry_run)

    return idempotent.run_idempotent(db, request, run, dry_run, ttl)


def _check_product_minimum(session: Session, loan: Loan, amount: int, field: str) -> None:
    """Approved and disbursed amounts stay within the product's limits like the requested one (CONTRACT)."""
    product = products.get_product(session, loan.product_id)
    if product is not None and amount < product.min_principal_minor:
        minimum = money_out(product.min_principal_minor, loan.currency)
        raise ValidationFailed.single(field, f"must be at least {minimum} for this product")


# --- reads ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoanView:
    loan: Loan
    as_of: date
    state: LoanState | None  # None: read straight from the snapshot
    status: str


def _visible(session: Session, principal: Principal, loan_id: str) -> Loan:
    principal.require(Permission.read)
    loan = repo.get(session, loan_id)
    if loan is None or not principal.can_see_branch(loan.branch_id):
        raise NotFound("loan not found")
    return loan


def project_loan(
    session: Session, loan: Loan, as_of: date, payoff: bool = False, known_at: date | None = None
) -> LoanState:
    """The loan at the end of `as_of` replayed from its whole event log."""
    events = domain_events(repo.events(session, loan.id), known_at)
    return (payoff_quote if payoff else project)(loan_terms(loan), events, as_of)


def loan_as_of(session: Session, loan: Loan, as_of: date) -> LoanState:
    """The loan at the end of `as_of` (value basis, the event log as now known): resumed from the newest stored
    state on or before `as_of` that is still valid, else replayed from the start — the same result."""
    log = repo.events(session, loan.id)
    terms = loan_terms(loan)
    state, _ = engine.from_checkpoint(session, loan, terms, log, as_of)
    return state if state is not None else project(terms, domain_events(log), as_of)


def _check_known_at(today: date, as_of: date | None, known_at: date) -> date:
    """`?known_at=K` (CONTRACT "Ledger time"): K is a business date that has begun; `as_of` defaults to K."""
    if known_at > today:
        raise ValidationFailed.single("known_at", f"must not be after the business date {today.isoformat()}")
    return as_of or known_at


def get_loan(
    db: Database, principal: Principal, loan_id: str, as_of: date | None, known_at: date | None = None
) -> LoanView:
    with db.session(writer=False) as session:
        loan = _visible(session, principal, loan_id)
        today = engine.business_date(session)
        disbursed = LoanStatus(loan.status) in MONEY_STATUSES and loan.disbursement_date is not None
        if known_at is not None:
            return _known_view(session, loan, _check_known_at(today, as_of, known_at), known_at, disbursed)
        if as_of is None:
            if not disbursed or loan.snapshot_date == today:
                return LoanView(loan, today, None, loan.status)
            as_of = today
        if not disbursed:
            return LoanView(loan, as_of, None, loan.status)
        assert loan.disbursement_date is not None
        if as_of < loan.disbursement_date:
            return LoanView(loan, as_of, None, LoanStatus.approved.value)
        state = loan_as_of(session, loan, as_of)
        return LoanView(loan, as_of, state, state.status.value)


def _known_view(session: Session, loan: Loan, as_of: date, known_at: date, disbursed: bool) -> LoanView:
    """The loan at the end of `as_of` as the system knew it at the end of business date `known_at`."""
    if not disbursed or loan.disbursement_date is None or as_of < loan.disbursement_date:
        return LoanView(loan, as_of, None, LoanStatus.approved.value if disbursed else loan.status)
    if not repo.disbursed_by(session, loan.id, known_at):
        return LoanView(loan, as_of, None, LoanStatus.approved.value)
    state = project_loan(session, loan, as_of, known_at=known_at)
    return LoanView(loan, as_of, state, state.status.value)


def list_loans(
    db: Database,
    principal: Principal,
    status: str | None,
    borrower_id: str | None,
    branch_id: str | None,
    cursor: str | None,
    limit: int,
    account_no: str | None = None,
    q: str | None = None,
) -> tuple[Sequence[Loan], str | None]:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        return repo.list_loans(
            session, principal.branch_scope, status, borrower_id, branch_id, cursor, limit, account_no, q
        )


@dataclass(frozen=True)
class InstallmentInterest:
    loan: Loan
    row: Installment
    segments: list[AccrualSegment]


def installment_interest(db: Database, principal: Principal, loan_id: str, number: int) -> InstallmentInterest:
    """The accrual behind installment `number` as of the business date (a full replay of the event log)."""
    with db.session(writer=False) as session:
        loan = _visible(session, principal, loan_id)
        if loan.disbursement_date is None:
            raise InvalidTransition(
                loan.status, "explain the interest of", actions_allowed(LoanStatus(loan.status), loan.credit_balance)
            )
        state = project_loan(session, loan, max(engine.business_date(session), loan.disbursement_date))
        row = next((r for r in state.installments if r.number == number), None)
        if row is None:
            raise NotFound(f"the loan has no installment {number}")
        segments = [s for s in state.accrual_segments if row.period_start <= s.start < row.due_date]
        if not state.accrual_segments:
            opening = sum(r.principal for r in state.installments if r.number >= number)
            segments = [AccrualSegment(row.period_start, row.due_date, opening, row.interest)]
        return InstallmentInterest(loan, row, segments)


def schedule(
    db: Database, principal: Principal, loan_id: str, as_of: date | None, known_at: date | None = None
) -> tuple[Loan, date, list[Installment] | Sequence[LoanInstallment]]:
    with db.session(writer=False) as session:
        loan = _visible(session, principal, loan_id)
        today = engine.business_date(session)
        if loan.disbursement_date is None:
            principal_minor = loan.approved_principal or loan.requested_principal
            return loan, today, _preview_schedule(loan, principal_minor, loan.expected_disbursement_date or today)
        if known_at is not None:
            on = _check_known_at(today, as_of, known_at)
            state = project_loan(session, loan, max(on, loan.disbursement_date), known_at=known_at)
            return loan, on, list(state.installments)
        if as_of is None and loan.snapshot_date == today:
            return loan, today, repo.installment_states(session, loan.id)  # Core rows: no ORM objects to build
        on = as_of or today
        return loan, on, list(loan_as_of(session, loan, max(on, loan.disbursement_date)).installments)
