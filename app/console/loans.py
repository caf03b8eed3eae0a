"""Loan pages: the loan (status, balances, schedule, transactions, journal, audit trail, payoff quote), the new
application with its schedule preview and APR, and every action as form -> dry run ("this will post...") ->
confirm. Actions call the same service functions as the API with the same rules; money-moving confirmations
carry an Idempotency-Key generated when the form was rendered, so a double-click or a resubmit replays."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.borrowers import service as borrowers
from app.business_calendar import service as calendar_service
from app.console.web import (
    FORM_ERRORS,
    ConsoleRoute,
    Ctx,
    CtxDep,
    FormDep,
    blank_to_none,
    error_status,
    field_errors,
    not_given,
)
from app.core.errors import AppError, ValidationFailed
from app.core.schemas import StrictModel, money_out
from app.domain.errors import DomainError
from app.domain.instruments import Instrument, instruments_allowed
from app.domain.lifecycle import MONEY_STATUSES, LoanStatus
from app.idempotency.keys import IdempotentRequest, check_key, fingerprint
from app.identity.access import Permission
from app.loans import instruments, presenters, service, servicing, undo
from app.loans.engine import Outcome
from app.loans.idempotent import MoneyResult
from app.loans.instrument_schemas import ChargebackIn, ChargeIn, CreditIn, ReverseIn, WaiverIn
from app.loans.schemas import (
    ApproveIn,
    DisburseIn,
    LoanCreate,
    PaymentIn,
    ReasonIn,
    RefundIn,
    WithdrawIn,
    WriteOffIn,
)
from app.products import service as products
from app.products.schemas import format_rate
from app.schedules import service as schedules
from app.schedules.schemas import SchedulePreviewOut, ScheduleRequest

router = APIRouter(route_class=ConsoleRoute)

DONE_MESSAGES = {
    "submitted": "Application submitted.",
    "approve": "Loan approved.",
    "reject": "Application rejected.",
    "withdraw": "Application withdrawn.",
    "disburse": "Loan disbursed.",
    "payment": "Payment posted.",
    "replayed": "This was already posted: the first submission's result is shown, nothing was posted twice.",
    "reverse": "Transaction reversed.",
    "write-off": "Loan written off.",
    "refund": "Credit balance refunded.",
    "charge": "Charge posted.",
    "waiver": "Waiver posted.",
    "credit": "Goodwill credit posted.",
    "chargeback": "Chargeback posted.",
    "undo-approval": "Approval undone: the application is submitted again.",
    "undo-disbursal": "Disbursal undone: the loan is approved again and its books are back to zero.",
}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | date | money | textarea
    required: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Action:
    slug: str
    title: str
    verb: str
    permission: Permission
    lifecycle: str  # the lifecycle table's action name (allowed_actions)
    fields: tuple[Field, ...]
    body: type[BaseModel]
    money: bool  # posts money: runs through the idempotency key
    run: Callable[..., Any]


REASON = Field("reason", "Reason", "textarea", required=True)
DATE = Field("date", "Date", "date", hint="Leave empty for the business date.")


def _outcome_action(fn: Callable[..., Outcome]) -> Callable[..., Any]:
    def run(ctx: Ctx, loan_id: str, body: Any, form: dict[str, str], dry_run: bool, _key: Any) -> Any:
        return fn(ctx.db, ctx.principal, loan_id, body, _version(form), dry_run)

    return run


class NoFields(StrictModel):
    """Actions without a body (the undo actions)."""


def _undo_action(fn: Callable[..., Outcome]) -> Callable[..., Any]:
    def run(ctx: Ctx, loan_id: str, _body: Any, form: dict[str, str], dry_run: bool, _key: Any) -> Any:
        return fn(ctx.db, ctx.principal, loan_id, _version(form), dry_run)

    return run


def _version(form: dict[str, str]) -> int | None:
    return int(form["version"]) if form.get("version", "").isdigit() else None


def _money_action(fn: Callable[..., MoneyResult], with_tx: bool = False) -> Callable[..., Any]:
    def run(ctx: Ctx, loan_id: str, body: Any, form: dict[str, str], dry_run: bool, key: Any) -> Any:
        ttl = timedelta(hours=ctx.settings.idempotency_key_ttl_hours)
        version = _version(form)  # checked after a replay: a resubmitted form replays even though the loan moved
        if with_tx:
            tx_id = form.get("transaction_id", "")
            return fn(ctx.db, ctx.principal, loan_id, tx_id, body, key, version, dry_run, ttl)
        return fn(ctx.db, ctx.principal, loan_id, body, key, version, dry_run, ttl)

    return run


ACTIONS: dict[str, Action] = {
    a.slug: a
    for a in (
        Action(
            "approve",
            "Approve",
            "Approve",
            Permission.loans_approve,
            "approve",
            (
                Field("approved_principal", "Approved principal", "money", hint="Empty: the requested principal."),
                Field("note", "Note", "textarea"),
            ),
            ApproveIn,
            False,
            _outcome_action(service.approve),
        ),
        Action(
            "reject",
            "Reject",
            "Reject",
            Permission.loans_approve,
            "reject",
            (REASON,),
            ReasonIn,
            False,
            _outcome_action(service.reject),
        ),
        Action(
            "withdraw",
            "Withdraw",
            "Withdraw",
            Permission.loans_originate,
            "withdraw",
            (Field("reason", "Reason", "textarea"),),
            WithdrawIn,
            False,
            _outcome_action(service.withdraw),
        ),
        Action(
            "disburse",
            "Disburse",
            "Disburse",
            Permission.loans_originate,
            "disburse",
            (DATE, Field("amount", "Amount", "money", hint="Empty: the approved principal.")),
            DisburseIn,
            True,
            _money_action(service.disburse),
        ),
        Action(
            "payment",
            "Record a payment",
            "Post payment",
            Permission.payments_write,
            "repay",
            (
                Field("amount", "Amount", "money", required=True),
                DATE,
                Field("channel", "Channel", hint="e.g. cash"),
                Field("external_id", "External ID"),
            ),
            PaymentIn,
            True,
            _money_action(servicing.record_payment),
        ),
        Action(
            "reverse",
            "Reverse a transaction",
            "Reverse",
            Permission.loans_reverse,
            "reverse",
            (REASON, Field("reason_code", "Reason code", hint='"nsf": returned unpaid; charges the NSF fee.')),
            ReverseIn,
            True,
            _money_action(servicing.reverse, with_tx=True),
        ),
        Action(
            "write-off",
            "Write off",
            "Write off",
            Permission.loans_write_off,
            "write_off",
            (DATE, REASON),
            WriteOffIn,
            True,
            _money_action(servicing.write_off),
        ),
        Action(
            "refund",
            "Refund the credit balance",
            "Refund",
            Permission.refunds_write,
            "refund",
            (
                Field("amount", "Amount", "money", hint="Empty: the whole credit balance."),
                DATE,
                Field("reason", "Reason", "textarea"),
            ),
            RefundIn,
            True,
            _money_action(servicing.refund),
        ),
        # Servicing instruments (their status rules are app/domain/instruments.py, not the lifecycle table).
        Action(
            "charge",
            "Charge a fee",
            "Charge",
            Permission.charges_write,
            Instrument.charge.value,
            (
                Field("name", "Name", required=True, hint="e.g. Statement copy"),
                Field("amount", "Amount", "money", required=True),
                Field("due_date", "Due date", "date", hint="Leave empty for the business date."),
                Field("code", "Code"),
            ),
            ChargeIn,
            True,
            _money_action(instruments.charge),
        ),
        Action(
            "waiver",
            "Waive penalties, fees or interest",
            "Waive",
            Permission.waivers_write,
            Instrument.waiver.value,
            (
                Field("bucket", "Bucket", required=True, hint="penalties, fees or interest (of installments due)"),
                Field("amount", "Amount", "money", required=True),
                REASON,
            ),
            WaiverIn,
            True,
            _money_action(instruments.waive),
        ),
        Action(
            "credit",
            "Goodwill credit",
            "Credit",
            Permission.waivers_write,
            Instrument.goodwill_credit.value,
            (
                Field("amount", "Amount", "money", required=True, hint="Paid by the lender, applied like a payment."),
                REASON,
            ),
            CreditIn,
            True,
            _money_action(instruments.credit),
        ),
        Action(
            "chargeback",
            "Charge back a repayment",
            "Charge back",
            Permission.waivers_write,
            Instrument.chargeback.value,
            (
                Field("transaction_id", "Repayment", required=True, hint="The repayment's transaction id."),
                Field("amount", "Amount", "money", required=True),
                REASON,
            ),
            ChargebackIn,
            True,
            _money_action(instruments.chargeback),
        ),
        Action(
            "undo-approval",
            "Undo the approval",
            "Undo approval",
            Permission.loans_approve,
            "undo_approval",
            (),
            NoFields,
            False,
            _undo_action(undo.undo_approval),
        ),
        Action(
            "undo-disbursal",
            "Undo the disbursal",
            "Undo disbursal",
            Permission.loans_approve,
            "undo_disbursal",
            (),
            NoFields,
            False,
            _undo_action(undo.undo_disbursal),
        ),
    )
}


def _action(slug: str) -> Action:
    action = ACTIONS.get(slug)
    if action is None:
        raise ValidationFailed.single("action", f"unknown action {slug!r}")
    return action


def available_actions(ctx: Ctx, loan: Any) -> list[Action]:
    return [
        a
        for a in ACTIONS.values()
        if a.slug != "reverse"
        and (a.lifecycle in loan.allowed_actions or a.lifecycle in instruments_allowed(loan.status))
        and ctx.principal.may(a.permission)
    ]


# --- the loan page ----------------------------------------------------------------------------------------------


def _loan_page_values(ctx: Ctx, loan_id: str, payoff_on: str | None) -> dict[str, Any]:
    view = service.get_loan(ctx.db, ctx.principal, loan_id, None)
    loan = presenters.loan_out(view.loan, view.as_of, view.state, view.status)
    stored, on, rows = service.schedule(ctx.db, ctx.principal, loan_id, None)
    disbursed = LoanStatus(loan.status) in MONEY_STATUSES
    values: dict[str, Any] = {
        "loan": loan,
        "borrower": borrowers.get_borrower(ctx.db, ctx.principal, loan.borrower_id),
        "product": products.get_product(ctx.db, ctx.principal, loan.product_id),
        "installments": presenters.installments_out(rows, loan.currency, on, stored),
        "schedule_as_of": on,
        "actions": available_actions(ctx, loan),
        "may_reverse": ctx.principal.may(Permission.loans_reverse),
        "may_charge_back": ctx.principal.may(Permission.waivers_write)
        and Instrument.chargeback.value in instruments_allowed(loan.status),
        "may_modify": ctx.principal.may(Permission.loans_originate),
        "transactions": [],
        "journal": [],
        "audit": servicing.audit_trail(ctx.db, ctx.principal, loan_id),
        "payoff": None,
        "payoff_date": payoff_on or "",
        "payoff_errors": {},
        "disbursed": disbursed,
    }
    _tx_loan, txs, _ = servicing.transactions(ctx.db, ctx.principal, loan_id, None, 500)
    values["transactions"] = [presenters.transaction_out(t, loan.currency) for t in txs]
    _j_loan, entries = servicing.journal(ctx.db, ctx.principal, loan_id)
    values["journal"] = [
        (
            e,
            [
                (ln.account_code, money_out(ln.debit, loan.currency), money_out(ln.credit, loan.currency))
                for ln in lines
            ],
        )
        for e, lines in entries
    ]
    if disbursed:
        try:
            on_date = date.fromisoformat(payoff_on) if payoff_on else None
            quote = servicing.payoff(ctx.db, ctx.principal, loan_id, on_date)
            s, c = quote.state, loan.currency
            values["payoff"] = {
                "date": quote.on,
                "principal": money_out(s.principal_outstanding, c),
                "interest": money_out(s.interest_outstanding, c),
                "fees": money_out(s.fees_outstanding, c),
                "penalties": money_out(s.penalties_outstanding, c),
                "total": money_out(s.total_outstanding, c),
                "per_diem": money_out(s.per_diem, c),
            }
        except ValueError:
            values["payoff_errors"] = {"date": "must be a date in the form YYYY-MM-DD"}
        except (AppError, DomainError) as exc:
            values["payoff_errors"] = {"date": field_errors(exc).get("date") or next(iter(field_errors(exc).values()))}
    return values


@router.get("/loans/new")
def application_form(ctx: CtxDep, borrower_id: str = "") -> Response:
    return _application_page(ctx, {"borrower_id": borrower_id}, {}, 200)


def _application_page(ctx: Ctx, values: dict[str, str], errors: dict[str, str], status: int) -> Response:
    borrower = None
    if values.get("borrower_id"):
        try:
            borrower = borrowers.get_borrower(ctx.db, ctx.principal, values["borrower_id"])
        except AppError:
            errors = {**errors, "borrower_id": "no such borrower"}
    rows, _ = products.list_products(ctx.db, ctx.principal, True, None, 500)
    return ctx.render(
        "application.html",
        status,
        values=values,
        errors=errors,
        borrower=borrower,
        products=rows,
        today=calendar_service.business_date(ctx.db),
    )


APPLICATION_FIELDS = (
    "borrower_id",
    "product_id",
    "principal",
    "term",
    "annual_rate_percent",
    "expected_disbursement_date",
    "first_payment_date",
    "external_id",
)


def _application(form: dict[str, str]) -> LoanCreate:
    return LoanCreate.model_validate(not_given(blank_to_none(form, *APPLICATION_FIELDS)))


def schedule_preview(ctx: Ctx, data: LoanCreate) -> SchedulePreviewOut:
    """The schedule and Reg Z APR these terms would give, priced by the same engine as the API's preview."""
    product = products.get_product(ctx.db, ctx.principal, data.product_id)
    term = data.term or (product.min_term if product.min_term == product.max_term else None)
    if term is None:
        raise ValidationFailed.single("term", f"required: this product allows {product.min_term}-{product.max_term}")
    rate = data.annual_rate_percent
    request = ScheduleRequest.model_validate(
        {
            "principal": data.principal,
            "annual_rate_percent": rate if rate is not None else format_rate(product.annual_rate_e6),
            "term": term,
            "frequency": product.frequency,
            "disbursement_date": data.expected_disbursement_date or calendar_service.business_date(ctx.db),
            "first_payment_date": data.first_payment_date,
            "amortization": product.amortization,
            "interest_method": product.interest_method,
            "day_count": product.day_count,
            "grace_principal_periods": product.grace_principal_periods,
            "currency": product.currency,
        }
    )
    result = schedules.preview(request)
    return SchedulePreviewOut.of(result.schedule, result.apr_percent)


@router.get("/loans/new/schedule")
def schedule_fragment(request: Request, ctx: CtxDep) -> Response:
    """The live preview (fetched by console.js as the form changes): a schedule table with the APR, or the
    problem, as an HTML fragment. Pure calculation: nothing is stored, so a GET without CSRF token is fine."""
    form = {k: v.strip() for k, v in request.query_params.items()}
    try:
        data = _application(form)
        service.submit(ctx.db, ctx.principal, data, dry_run=True)  # the product's limits, as the API applies them
        preview = schedule_preview(ctx, data)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return ctx.render("_schedule_preview.html", 200, preview=None, errors=field_errors(exc))
    return ctx.render("_schedule_preview.html", preview=preview, errors={})


@router.post("/loans/new/preview")
def application_preview(ctx: CtxDep, form: FormDep) -> Response:
    try:
        data = _application(form)
        outcome = service.submit(ctx.db, ctx.principal, data, dry_run=True)
        preview = schedule_preview(ctx, data)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return _application_page(ctx, form, field_errors(exc), 422)
    return ctx.render(
        "application_preview.html",
        values=form,
        preview=preview,
        loan=presenters.loan_out(outcome.loan, outcome.business_date),
    )


@router.post("/loans/new")
def application_submit(ctx: CtxDep, form: FormDep) -> Response:
    try:
        outcome = service.submit(ctx.db, ctx.principal, _application(form), dry_run=False)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return _application_page(ctx, form, field_errors(exc), 422)
    return ctx.redirect(f"/console/loans/{outcome.loan.id}?done=submitted")


@router.get("/loans/{loan_id}")
def loan_page(ctx: CtxDep, loan_id: str, done: str | None = None, payoff_date: str | None = None) -> Response:
    values = _loan_page_values(ctx, loan_id, payoff_date)
    return ctx.render("loan.html", done=DONE_MESSAGES.get(done or ""), **values)


# --- actions: form -> dry run -> confirm ------------------------------------------------------------------------


def _form_page(
    ctx: Ctx, loan_id: str, action: Action, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    view = service.get_loan(ctx.db, ctx.principal, loan_id, None)
    loan = presenters.loan_out(view.loan, view.as_of, view.state, view.status)
    values = {"version": str(loan.version), **values}
    if action.money and not values.get("idempotency_key"):
        values["idempotency_key"] = str(uuid.uuid4())  # generated once per rendered form
    transaction = None
    if action.slug == "reverse":
        _tx_loan, txs, _ = servicing.transactions(ctx.db, ctx.principal, loan_id, None, 500)
        match = [t for t in txs if t.id == values.get("transaction_id")]
        transaction = presenters.transaction_out(match[0], loan.currency) if match else None
    return ctx.render(
        "action_form.html",
        status,
        loan=loan,
        action=action,
        values=values,
        errors=errors,
        transaction=transaction,
        borrower=borrowers.get_borrower(ctx.db, ctx.principal, loan.borrower_id),
    )


def _idempotency(
    ctx: Ctx, action: Action, loan_id: str, form: dict[str, str], body: BaseModel, dry_run: bool
) -> IdempotentRequest | None:
    if not action.money or dry_run:
        return None
    key = check_key(form.get("idempotency_key", ""))
    # The fingerprint covers the body and the target, so the same key on another request is refused (422).
    path = f"/console/loans/{loan_id}/{action.slug}/{form.get('transaction_id', '')}"
    return IdempotentRequest(ctx.principal.user_id, key, fingerprint("POST", path, body.model_dump(mode="json")))


def _run(ctx: Ctx, loan_id: str, action: Action, form: dict[str, str], dry_run: bool) -> Any:
    names = [f.name for f in action.fields]
    body = action.body.model_validate(not_given(blank_to_none(form, *names)))
    key = _idempotency(ctx, action, loan_id, form, body, dry_run)
    return action.run(ctx, loan_id, body, form, dry_run, key)


@router.get("/loans/{loan_id}/{slug}")
def action_form(request: Request, ctx: CtxDep, loan_id: str, slug: str) -> Response:
    action = _action(slug)
    ctx.principal.require(action.permission)
    values = {k: v for k, v in request.query_params.items() if k in {"transaction_id", "amount"}}
    return _form_page(ctx, loan_id, action, values, {})


@router.post("/loans/{loan_id}/{slug}/preview")
def action_preview(ctx: CtxDep, form: FormDep, loan_id: str, slug: str) -> Response:
    action = _action(slug)
    try:
        result = _run(ctx, loan_id, action, form, dry_run=True)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return _form_page(ctx, loan_id, action, form, field_errors(exc), error_status(exc))
    outcome = result.outcome if isinstance(result, MoneyResult) else result
    assert isinstance(outcome, Outcome)  # a dry run always carries its outcome
    before = presenters.loan_out(*_current(ctx, loan_id))
    after = presenters.dry_run_out(
        outcome.loan, outcome.business_date, outcome.state, outcome.entries, outcome.allocation
    )
    borrower = borrowers.get_borrower(ctx.db, ctx.principal, before.borrower_id)
    return ctx.render("action_preview.html", loan=before, action=action, values=form, dry=after, borrower=borrower)


def _current(ctx: Ctx, loan_id: str) -> tuple[Any, ...]:
    view = service.get_loan(ctx.db, ctx.principal, loan_id, None)
    return view.loan, view.as_of, view.state, view.status


@router.post("/loans/{loan_id}/{slug}")
def action_confirm(ctx: CtxDep, form: FormDep, loan_id: str, slug: str) -> Response:
    action = _action(slug)
    try:
        result = _run(ctx, loan_id, action, form, dry_run=False)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return _form_page(ctx, loan_id, action, {**form, "idempotency_key": ""}, field_errors(exc), error_status(exc))
    replayed = isinstance(result, MoneyResult) and result.replayed
    return ctx.redirect(f"/console/loans/{loan_id}?done={'replayed' if replayed else action.slug}")
