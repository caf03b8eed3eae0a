"""Console pages for loan modifications (maker-checker): on a loan, request a modification and see its preview
beside today's schedule before storing it; for managers, the queue of pending requests with approve/reject.
Same services as the API (app/loans/modifications.py), so the same roles, branch scope and maker-checker rules."""

from typing import Any

from fastapi import APIRouter, Response

from app.borrowers import service as borrowers
from app.console.web import FORM_ERRORS, ConsoleRoute, Ctx, CtxDep, FormDep, blank_to_none, error_status, field_errors
from app.core.errors import AppError
from app.domain.errors import DomainError
from app.identity.access import Permission
from app.loans import modifications, presenters, service
from app.loans.modification_schemas import ModificationIn

router = APIRouter(route_class=ConsoleRoute)

FIELDS = (
    "type",
    "effective_date",
    "note",
    "new_term",
    "new_installment_amount",
    "new_annual_rate_percent",
    "new_next_due_date",
    "installments",
    "interest",
    "annual_rate_percent",
)
TYPES = (
    ("reschedule", "Reschedule (term, installment, rate or next due date)"),
    ("payment_holiday", "Payment holiday"),
    ("rate_change", "Rate change"),
    ("re_age", "Re-age (bring current)"),
)


def _body(form: dict[str, str]) -> ModificationIn:
    values: dict[str, Any] = {k: v for k, v in blank_to_none(form, *FIELDS).items() if k in FIELDS and v is not None}
    for name in ("new_term", "installments"):
        if isinstance(values.get(name), str) and values[name].isdigit():
            values[name] = int(values[name])
    return ModificationIn.model_validate(values)


def _page(ctx: Ctx, loan_id: str, form: dict[str, str], errors: dict[str, str], preview: Any, status: int) -> Response:
    view = service.get_loan(ctx.db, ctx.principal, loan_id, None)
    loan = presenters.loan_out(view.loan, view.as_of, view.state, view.status)
    _, on, rows = service.schedule(ctx.db, ctx.principal, loan_id, None)
    return ctx.render(
        "modification_form.html",
        status,
        loan=loan,
        borrower=borrowers.get_borrower(ctx.db, ctx.principal, loan.borrower_id),
        installments=presenters.installments_out(rows, loan.currency, on),
        values=form,
        errors=errors,
        preview=preview,
        types=TYPES,
        requests=modifications.list_for_loan(ctx.db, ctx.principal, loan_id, None, None, 50)[0],
    )


@router.get("/loans/{loan_id}/modifications/new")
def modification_form(ctx: CtxDep, loan_id: str, type: str = "reschedule") -> Response:
    ctx.principal.require(Permission.loans_originate)
    return _page(ctx, loan_id, {"type": type}, {}, None, 200)


@router.post("/loans/{loan_id}/modifications/new")
def modification_submit(ctx: CtxDep, form: FormDep, loan_id: str) -> Response:
    """`intent=preview` shows the dry run beside today's schedule; `intent=request` stores it pending."""
    store = form.get("intent") == "request"
    try:
        result = modifications.request(ctx.db, ctx.principal, loan_id, _body(form), dry_run=not store)
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        return _page(ctx, loan_id, form, field_errors(exc), None, error_status(exc))
    if store:
        return ctx.redirect(f"/console/loans/{loan_id}/modifications/new?type={result.body.type}")
    return _page(ctx, loan_id, form, {}, result.body.preview, 200)


@router.get("/modifications")
def queue(ctx: CtxDep) -> Response:
    ctx.principal.require(Permission.loans_reschedule)
    return ctx.render("modifications_queue.html", pending=modifications.pending_queue(ctx.db, ctx.principal), errors={})


@router.post("/loans/{loan_id}/modifications/{modification_id}/decide")
def decide(ctx: CtxDep, form: FormDep, loan_id: str, modification_id: str) -> Response:
    try:
        if form.get("decision") == "approve":
            modifications.approve(ctx.db, ctx.principal, loan_id, modification_id, form.get("note") or None, False)
        else:
            reason = (form.get("reason") or "").strip()
            if not reason:
                return ctx.render(
                    "modifications_queue.html",
                    422,
                    pending=modifications.pending_queue(ctx.db, ctx.principal),
                    errors={modification_id: "a reason is required to reject"},
                )
            modifications.reject(ctx.db, ctx.principal, loan_id, modification_id, reason, False)
    except (AppError, DomainError) as exc:
        message = next(iter(field_errors(exc).values()), str(exc))
        return ctx.render(
            "modifications_queue.html",
            error_status(exc),
            pending=modifications.pending_queue(ctx.db, ctx.principal),
            errors={modification_id: message},
        )
    return ctx.redirect("/console/modifications")
