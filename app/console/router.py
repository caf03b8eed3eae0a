"""The operations console at /console: sign-in, dashboard, search, borrowers. Loans and their actions are in
loans.py, close of business, reports and setup in operations.py. Every page is a client of the same service
functions as the API, authorised by the same Principal."""

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.borrowers import service as borrowers
from app.borrowers.schemas import BorrowerCreate
from app.business_calendar import service as calendar_service
from app.console import batches, charts, ledger, loans, modifications, operations
from app.console import session as sessions
from app.console.web import (
    FORM_ERRORS,
    ConsoleRoute,
    CtxDep,
    FormDep,
    blank_to_none,
    field_errors,
    not_given,
    page,
)
from app.core.errors import AppError, AuthenticationFailed, NotFound, RateLimited
from app.core.schemas import money_out
from app.identity import service as identity
from app.identity.access import Permission
from app.loans import presenters
from app.loans import service as loan_service
from app.operations import service as ops
from app.reports import service as reports

STATIC_DIR = Path(__file__).resolve().parent / "static"
TREND_DAYS = 90
TREND_STEP_DAYS = 7  # PAR 30 sampled weekly: 13 points draw the 90-day trend at a fraction of 90 queries

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
router.include_router(modifications.router)  # before loans: its /loans/{id}/{slug} would catch these paths
router.include_router(loans.router)
router.include_router(operations.router)
router.include_router(batches.router)
router.include_router(ledger.router)


def mount(app: FastAPI) -> None:
    """The one call app wiring needs: the console's pages and its static files (CSS, a few lines of JS)."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")


def _safe_next(target: str | None) -> str:
    # Only our own pages: no scheme, no host, no protocol-relative //evil.example.
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/dashboard"


@router.get("")
def home() -> Response:
    return RedirectResponse("/console/dashboard", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    settings = sessions.settings_of(request)
    existing = sessions.read(request)
    if existing is not None and existing.signed_in and sessions.principal_for(sessions.db_of(request), existing):
        return RedirectResponse(_safe_next(next), status_code=303)
    session = existing if existing is not None and not existing.signed_in else sessions.new_session(None, settings)
    request.state.console_session = session
    response = page(request, "login.html", next=_safe_next(next), errors={}, username="")
    sessions.write(response, session, settings)
    return response


@router.post("/login")
def login(request: Request, form: FormDep) -> Response:
    settings, db = sessions.settings_of(request), sessions.db_of(request)
    username = form.get("username", "")
    client = request.client.host if request.client else "unknown"
    try:
        if not username or not form.get("password"):
            raise AuthenticationFailed("enter your username and password")
        token = identity.sign_in(db, settings, request.app.state.limiter, username, form["password"], client)
        principal = identity.principal_for_token(db, settings, token.access_token)
    except (AuthenticationFailed, RateLimited) as exc:
        request.state.console_session = sessions.read(request)
        status = 429 if isinstance(exc, RateLimited) else 401
        return page(
            request, "login.html", status, next=_safe_next(form.get("next")), errors={"": exc.detail}, username=username
        )
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    fresh = sessions.new_session(principal.user_id, settings, token.credentials_version)  # fresh CSRF token
    sessions.write(response, fresh, settings)
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    sessions.clear(response, sessions.settings_of(request))
    return response


# --- dashboard ------------------------------------------------------------------------------------------------


def _percent(fraction: str) -> Decimal:
    return (Decimal(fraction) * 100).quantize(Decimal("0.01"))


def _portfolio_view(ctx: Any, today: date) -> dict[str, Any]:
    db, principal = ctx.db, ctx.principal
    cur = ops.books_currency(db)
    p = reports.portfolio(db, principal, None, cur)
    on, buckets = reports.aging(db, principal, None, cur)
    aging_points = [charts.Point(b, Decimal(money_out(amount, cur))) for b, _n, amount in buckets]
    samples = [today - timedelta(days=d) for d in reversed(range(0, TREND_DAYS, TREND_STEP_DAYS))]  # ends today
    par_points = [
        charts.Point(d.isoformat(), _percent(reports.portfolio(db, principal, d, cur).par_30)) for d in samples
    ]
    start, _end, rows = reports.collections(db, principal, today - timedelta(days=TREND_DAYS - 1), today, cur)
    by_day = {str(r[0]): int(r[2]) for r in rows}
    days = [start + timedelta(days=i) for i in range((today - start).days + 1)]
    collected = [charts.Point(d.isoformat(), Decimal(money_out(by_day.get(d.isoformat(), 0), cur))) for d in days]
    return {
        "currency": cur,
        "portfolio": p,
        "figures": {
            "principal": money_out(p.principal, cur),
            "interest": money_out(p.interest, cur),
            "par_1": _percent(p.par_1),
            "par_30": _percent(p.par_30),
            "par_90": _percent(p.par_90),
        },
        "aging": [(b, n, money_out(amount, cur)) for b, n, amount in buckets],
        "aging_svg": charts.bar_chart(aging_points, f"Outstanding principal by days past due ({cur}), {on}"),
        "trend_svg": charts.trend_chart(
            par_points,
            collected,
            f"PAR 30 and daily collections, last {TREND_DAYS} days",
            "PAR 30 %",
            f"collections {cur}",
        ),
        "par_points": par_points,
        "collections_total": money_out(sum(by_day.values()), cur),
        "collection_days": sum(1 for v in by_day.values() if v),
    }


@router.get("/dashboard")
def dashboard(ctx: CtxDep) -> Response:
    today = calendar_service.business_date(ctx.db)
    last = ops.last_close(ctx.db, ctx.principal)
    values: dict[str, Any] = {"today": today, "last_close": last, "portfolio_view": None, "recent": []}
    if ctx.principal.may(Permission.reports_read):
        values["portfolio_view"] = _portfolio_view(ctx, today)
    else:
        # Officers: the portfolio reports span all branches, so they see their own branch's loans instead.
        rows, _ = loan_service.list_loans(ctx.db, ctx.principal, None, None, None, None, 50)
        values["recent"] = [presenters.loan_out(ln, ln.snapshot_date or today) for ln in rows]
    return ctx.render("dashboard.html", **values)


# --- search and borrowers --------------------------------------------------------------------------------------


@router.get("/search")
def search(ctx: CtxDep, q: str = "") -> Response:
    q = q.strip()[:100].replace("\x00", "")
    found_loan = None
    matches: Sequence[Any] = []
    if q:
        try:
            view = loan_service.get_loan(ctx.db, ctx.principal, q, None)
            found_loan = presenters.loan_out(view.loan, view.as_of, view.state, view.status)
        except (NotFound, AppError):
            found_loan = None
        matches, _ = borrowers.list_borrowers(ctx.db, ctx.principal, None, q, None, 50)
    if found_loan is not None and not matches:
        return ctx.redirect(f"/console/loans/{found_loan.id}")
    return ctx.render("search.html", q=q, loan=found_loan, borrowers=matches)


def _branches(ctx: Any) -> list[tuple[str, str]]:
    rows, _ = identity.list_branches(ctx.db, ctx.principal, None, 500)
    return [(b.id, f"{b.code} – {b.name}") for b in rows]


@router.get("/borrowers/new")
def borrower_form(ctx: CtxDep) -> Response:
    return ctx.render(
        "borrower_new.html",
        values={"branch_id": ctx.principal.branch_id or ""},
        errors={},
        branch_options=_branches(ctx),
    )


BORROWER_FIELDS = (
    "branch_id",
    "first_name",
    "last_name",
    "date_of_birth",
    "national_id",
    "email",
    "phone",
    "external_id",
)


@router.post("/borrowers/new")
def borrower_create(ctx: CtxDep, form: FormDep) -> Response:
    try:
        data = BorrowerCreate.model_validate(not_given(blank_to_none(form, *BORROWER_FIELDS)))
        borrower = borrowers.create_borrower(ctx.db, ctx.settings, ctx.principal, data)
    except (*FORM_ERRORS, AppError) as exc:
        if isinstance(exc, NotFound):
            exc = NotFound("no such branch")
        errors = field_errors(exc)
        return ctx.render("borrower_new.html", 422, values=form, errors=errors, branch_options=_branches(ctx))
    return ctx.redirect(f"/console/borrowers/{borrower.id}?done=borrower")


@router.get("/borrowers/{borrower_id}")
def borrower_page(ctx: CtxDep, borrower_id: str, done: str | None = None) -> Response:
    borrower = borrowers.get_borrower(ctx.db, ctx.principal, borrower_id)
    rows, _ = loan_service.list_loans(ctx.db, ctx.principal, None, borrower.id, None, None, 200)
    today = calendar_service.business_date(ctx.db)
    return ctx.render(
        "borrower.html",
        borrower=borrower,
        loans=[presenters.loan_out(ln, ln.snapshot_date or today) for ln in rows],
        done=done,
    )
