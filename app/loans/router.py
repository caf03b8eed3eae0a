from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit, SettingsDep
from app.core.schemas import Page, money_out
from app.domain.lifecycle import LoanStatus
from app.ledger.schemas import JournalEntryOut, journal_entry_out
from app.loans import presenters, service, servicing, timeline
from app.loans.action_routes import (
    ACTION_RESPONSES,
    ERRORS,
    DryRun,
    IfMatch,
    LifecycleAction,
    MoneyAction,
    OptionalKey,
    add_lifecycle_actions,
    add_money_actions,
    idempotent_request,
    money_response,
    version_of,
)
from app.loans.instrument_schemas import ReverseIn
from app.loans.schemas import (
    AccrualSegmentOut,
    ApproveIn,
    AuditOut,
    DisburseIn,
    DryRunOut,
    InstallmentInterestOut,
    LoanCreate,
    LoanOut,
    PaymentIn,
    PaymentOut,
    PayoffOut,
    ReasonIn,
    RefundIn,
    ScheduleOut,
    TransactionOut,
    WithdrawIn,
    WriteOffIn,
)
from app.payments import quotes
from app.products.schemas import format_rate

router = APIRouter(prefix="/api/v1/loans", tags=["loans"])

KnownAt = Annotated[
    date | None,
    Query(description="as the system knew it at the end of this business date (events booked later left out)"),
]


@router.post(
    "",
    status_code=201,
    response_model=LoanOut,
    summary="Submit a loan application",
    responses={**ERRORS, 200: {"model": DryRunOut, "description": "Dry run"}},
)
def submit(
    db: DbDep, principal: CurrentUser, body: LoanCreate, response: Response, dry_run: DryRun = False
) -> LoanOut | DryRunOut | JSONResponse:
    outcome = service.submit(db, principal, body, dry_run)
    if dry_run:
        out = presenters.dry_run_out(outcome.loan, outcome.business_date, None, [])
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    response.headers["Location"] = f"/api/v1/loans/{outcome.loan.id}"
    response.headers["ETag"] = f'"{outcome.loan.version}"'
    return presenters.loan_out(outcome.loan, outcome.business_date)


@router.get("", response_model=Page[LoanOut], summary="List loans (officers see their branch)")
def list_loans(
    db: DbDep,
    principal: CurrentUser,
    status: Annotated[LoanStatus | None, Query(description="Only loans in this status")] = None,
    borrower_id: Annotated[str | None, Query(max_length=36)] = None,
    branch_id: Annotated[str | None, Query(max_length=36)] = None,
    account_no: Annotated[str | None, Query(max_length=48, description="Exact account number, e.g. HQ-000123")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Text in the account number or borrower's name")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[LoanOut]:
    loans, next_cursor = service.list_loans(db, principal, status, borrower_id, branch_id, cursor, limit, account_no, q)
    from app.business_calendar.service import business_date

    today = business_date(db)
    return Page[LoanOut](
        items=[presenters.loan_out(ln, ln.snapshot_date or today) for ln in loans], next_cursor=next_cursor
    )


@router.get("/{loan_id}", response_model=LoanOut, responses=ERRORS, summary="A loan (optionally as of a date)")
def get_loan(
    db: DbDep,
    principal: CurrentUser,
    loan_id: str,
    response: Response,
    as_of: date | None = None,
    known_at: KnownAt = None,
) -> LoanOut:
    view = service.get_loan(db, principal, loan_id, as_of, known_at)
    response.headers["ETag"] = f'"{view.loan.version}"'
    return presenters.loan_out(view.loan, view.as_of, view.state, view.status)


@router.get(
    "/{loan_id}/installments/{number}/interest",
    response_model=InstallmentInterestOut,
    responses=ERRORS,
    summary="How an installment's interest accrues (simple interest: segment by segment)",
)
def get_installment_interest(
    db: DbDep, principal: CurrentUser, loan_id: str, number: Annotated[int, Path(ge=1, le=1200)]
) -> InstallmentInterestOut:
    found = service.installment_interest(db, principal, loan_id, number)
    loan, c = found.loan, found.loan.currency
    return InstallmentInterestOut(
        loan_id=loan.id,
        number=found.row.number,
        period_start=found.row.period_start,
        due_date=found.row.due_date,
        interest_recalculation=loan.interest_recalculation,
        annual_rate_percent=format_rate(loan.annual_rate_e6),
        day_count=loan.day_count,
        interest=money_out(found.row.interest, c),
        segments=[
            AccrualSegmentOut(
                start=s.start,
                end=s.end,
                days=(s.end - s.start).days,
                principal=money_out(s.principal, c),
                interest=money_out(s.interest, c),
                projected=s.projected,
            )
            for s in found.segments
        ],
    )


@router.get("/{loan_id}/schedule", response_model=ScheduleOut, responses=ERRORS, summary="Repayment schedule")
def get_schedule(
    db: DbDep, principal: CurrentUser, loan_id: str, as_of: date | None = None, known_at: KnownAt = None
) -> Response:
    loan, on, rows = service.schedule(db, principal, loan_id, as_of, known_at)
    # Serialised straight from plain data (the response_model above documents it; a test checks the two agree).
    return Response(presenters.schedule_json(loan, on, rows), media_type="application/json")


add_lifecycle_actions(
    router,
    [
        LifecycleAction("approve", "approve", ApproveIn, service.approve, "Approve (manager)"),
        LifecycleAction("reject", "reject", ReasonIn, service.reject, "Reject (manager)"),
        LifecycleAction("withdraw", "withdraw", WithdrawIn, service.withdraw, "Withdraw the application"),
    ],
)
add_money_actions(
    router,
    [
        MoneyAction(
            "disburse",
            "disburse",
            DisburseIn,
            service.disburse,
            "Disburse (generates the schedule, posts Dr portfolio / Cr fund source)",
        )
    ],
)


@router.post(
    "/{loan_id}/payments",
    status_code=201,
    response_model=PaymentOut,
    summary="Record a repayment",
    responses={**ERRORS, 200: {"model": DryRunOut, "description": "Dry run"}},
)
def record_payment(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    body: PaymentIn,
    request: Request,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", max_length=200, description="Required: replays return the first answer")
    ],
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    req = idempotent_request(principal, idempotency_key, request, body.model_dump(mode="json"), dry_run)
    ttl = timedelta(hours=settings.idempotency_key_ttl_hours)
    if body.payoff_quote_id is not None:
        quotes.check_payment(db, principal, loan_id, body.payoff_quote_id, body.amount, body.date, req)
    return money_response(
        servicing.record_payment(db, principal, loan_id, body, req, version_of(if_match), dry_run, ttl)
    )


@router.post(
    "/{loan_id}/transactions/{tx_id}/reverse",
    response_model=LoanOut | DryRunOut,
    responses=ACTION_RESPONSES,
    summary="Reverse a transaction (manager); the loan is recomputed",
)
def reverse(
    db: DbDep,
    settings: SettingsDep,
    principal: CurrentUser,
    loan_id: str,
    tx_id: str,
    body: ReverseIn,
    request: Request,
    idempotency_key: OptionalKey = None,
    if_match: IfMatch = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    req = idempotent_request(principal, idempotency_key, request, body.model_dump(mode="json"), dry_run)
    ttl = timedelta(hours=settings.idempotency_key_ttl_hours)
    return money_response(
        servicing.reverse(db, principal, loan_id, tx_id, body, req, version_of(if_match), dry_run, ttl)
    )


add_money_actions(
    router,
    [
        MoneyAction(
            "write_off", "write-off", WriteOffIn, servicing.write_off, "Write off the outstanding balance (manager)"
        ),
        MoneyAction(
            "refund", "refund", RefundIn, servicing.refund, "Pay out an overpaid loan's credit balance (manager)"
        ),
    ],
)


@router.get("/{loan_id}/transactions", response_model=Page[TransactionOut], responses=ERRORS)
def list_transactions(
    db: DbDep,
    principal: CurrentUser,
    loan_id: str,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
    include: Annotated[
        str | None, Query(pattern=r"^accruals$", description="accruals: add the daily accrual and late-fee postings")
    ] = None,
    known_at: KnownAt = None,
) -> Page[TransactionOut]:
    if include is not None or known_at is not None:
        found, items, after = timeline.transactions(
            db, principal, loan_id, include is not None, known_at, cursor, limit
        )
        return Page[TransactionOut](
            items=[presenters.transaction_out(i, found.currency) for i in items], next_cursor=after
        )
    loan, rows, next_cursor = servicing.transactions(db, principal, loan_id, cursor, limit)
    return Page[TransactionOut](
        items=[presenters.transaction_out(t, loan.currency) for t in rows], next_cursor=next_cursor
    )


@router.get(
    "/{loan_id}/payoff",
    response_model=PayoffOut,
    responses=ERRORS,
    summary="The amount that closes the loan if paid on a date (today or later)",
)
def get_payoff(
    db: DbDep, principal: CurrentUser, loan_id: str, on: Annotated[date | None, Query(alias="date")] = None
) -> PayoffOut:
    quote = servicing.payoff(db, principal, loan_id, on)
    s, c = quote.state, quote.loan.currency
    return PayoffOut(
        loan_id=quote.loan.id,
        date=quote.on,
        principal=money_out(s.principal_outstanding, c),
        interest=money_out(s.interest_outstanding, c),
        fees=money_out(s.fees_outstanding, c),
        penalties=money_out(s.penalties_outstanding, c),
        total=money_out(s.total_outstanding, c),
        per_diem=money_out(s.per_diem, c),
    )


@router.get(
    "/{loan_id}/journal-entries",
    response_model=Page[JournalEntryOut],
    responses=ERRORS,
    summary="This loan's journal entries (the list envelope; one page holds them all, next_cursor is null)",
)
def loan_journal(db: DbDep, principal: CurrentUser, loan_id: str) -> Page[JournalEntryOut]:
    _loan, entries = servicing.journal(db, principal, loan_id)
    return Page[JournalEntryOut](items=[journal_entry_out(e, lines) for e, lines in entries])


@router.get(
    "/{loan_id}/audit",
    response_model=Page[AuditOut],
    responses=ERRORS,
    summary="Who did what, when (the list envelope; one page holds it all, next_cursor is null)",
)
def loan_audit(db: DbDep, principal: CurrentUser, loan_id: str) -> Page[AuditOut]:
    return Page[AuditOut](
        items=[
            AuditOut(
                at=r.at,
                username=r.username,
                action=r.action,
                request_id=r.request_id,
                before_status=r.before_status,
                after_status=r.after_status,
                detail=r.detail,
            )
            for r in servicing.audit_trail(db, principal, loan_id)
        ]
    )
