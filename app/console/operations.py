"""Operations (manager): close of business for the business date, the aging / delinquency / collections reports as
CSV (the API's own CSV, so both agree byte for byte); and setup (admin): branches, products, users."""

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Response

from app.business_calendar import service as calendar_service
from app.console.web import FORM_ERRORS, ConsoleRoute, Ctx, CtxDep, FormDep, blank_to_none, field_errors, not_given
from app.core.csvout import csv_text
from app.core.errors import AppError, NotFound
from app.database import Database
from app.domain.errors import DomainError
from app.identity import service as identity
from app.identity.access import Permission, Principal
from app.identity.schemas import BranchCreate, UserCreate
from app.operations import service as ops
from app.products import service as products
from app.products.schemas import ProductCreate, ProductOut
from app.reports import service as reports
from app.reports import tables

router = APIRouter(route_class=ConsoleRoute)


def _operations_page(ctx: Ctx, results: list[Any] | None = None, status: int = 200, error: str = "") -> Response:
    ctx.principal.require(Permission.reports_read)
    return ctx.render(
        "operations.html",
        status,
        today=calendar_service.business_date(ctx.db),
        last_close=ops.last_close(ctx.db, ctx.principal),
        may_close=ctx.principal.may(Permission.close_of_business),
        results=results,
        currency=ops.books_currency(ctx.db),
        error=error,
    )


@router.get("/operations")
def operations_page(ctx: CtxDep) -> Response:
    return _operations_page(ctx)


@router.post("/operations/close-of-business")
def close_of_business(ctx: CtxDep, form: FormDep) -> Response:
    from app.core.schemas import money_out

    ctx.principal.require(Permission.close_of_business)
    today = calendar_service.business_date(ctx.db)
    if form.get("business_date") != today.isoformat():
        # The page showed another date: someone else closed it meanwhile. Never close a day the user did not see.
        return _operations_page(ctx, None, 409, f"the business date is now {today.isoformat()}: review and retry")
    try:
        days = ops.close_of_business(ctx.db, ctx.principal, today)
    except (AppError, DomainError) as exc:
        return _operations_page(ctx, None, 409, field_errors(exc).popitem()[1])

    def per_currency(amounts: dict[str, int]) -> str:  # never one sum over currencies
        return ", ".join(f"{code} {money_out(amount, code)}" for code, amount in amounts.items()) or "0"

    rows = [
        {
            "business_date": d.business_date,
            "loans_processed": d.loans_processed,
            "interest_accrued": per_currency(d.interest_by_currency),
            "late_fees_charged": per_currency(d.late_fees_by_currency),
            "late_fee_count": d.late_fee_count,
            "duration_ms": d.duration_ms,
            "already_closed": d.already_closed,
        }
        for d in days
    ]
    return _operations_page(ctx, rows)


def _report_table(db: Database, principal: Principal, name: str, cur: str) -> tuple[Sequence[str], list[Any], str]:
    """(columns, rows, file name) of a report as of today, from the reports service (as the API builds it)."""
    if name == "aging":
        on, rows = reports.aging(db, principal, None, cur)
        return tables.AGING, tables.aging(rows, cur), f"aging-{on}.csv"
    if name == "delinquent":
        on, found = reports.delinquent(db, principal, None, cur, 1, 10_000)
        return tables.DELINQUENT, tables.delinquent(found, cur), f"delinquent-{on}.csv"
    if name == "collections":
        _start, end, days = reports.collections(db, principal, None, None, cur)
        return tables.COLLECTIONS, tables.collections(days, cur), f"collections-{end}.csv"
    raise NotFound(f"no report {name!r}")


@router.get("/reports/{name}.csv")
def report_csv(ctx: CtxDep, name: str) -> Response:
    ctx.principal.require(Permission.reports_read)
    read_db = ctx.request.app.state.read_db
    columns, rows, filename = _report_table(read_db, ctx.principal, name, ops.books_currency(ctx.db))
    response = Response(
        csv_text(columns, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return ctx.finish(response)


# --- setup (admin) ----------------------------------------------------------------------------------------------


def _setup_page(
    ctx: Ctx,
    status: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, dict[str, str]] | None = None,
    done: str = "",
) -> Response:
    ctx.principal.require(Permission.products_admin)
    branches, _ = identity.list_branches(ctx.db, ctx.principal, None, 500)
    rows, _ = products.list_products(ctx.db, ctx.principal, None, None, 500)
    users, _ = identity.list_users(ctx.db, ctx.principal, None, 500)
    return ctx.render(
        "setup.html",
        status,
        branches=branches,
        products=[ProductOut.of(p) for p in rows],
        users=users,
        errors=errors or {},
        values=values or {},
        done=done,
    )


@router.get("/setup")
def setup_page(ctx: CtxDep, done: str = "") -> Response:
    return _setup_page(ctx, done=done)


PRODUCT_FIELDS = (
    "code",
    "name",
    "currency",
    "min_principal",
    "max_principal",
    "min_term",
    "max_term",
    "annual_rate_percent",
    "min_rate_percent",
    "max_rate_percent",
    "frequency",
    "amortization",
    "interest_method",
    "day_count",
    "grace_principal_periods",
)


def _product(form: dict[str, str]) -> ProductCreate:
    values: dict[str, Any] = not_given(blank_to_none(form, *PRODUCT_FIELDS))
    late_fee = not_given(blank_to_none(form, "late_fee_amount", "late_fee_grace_days"))
    values["late_fee"] = {k.removeprefix("late_fee_"): v for k, v in late_fee.items()}
    return ProductCreate.model_validate(values)


@router.post("/setup/{kind}")
def setup_create(ctx: CtxDep, form: FormDep, kind: str) -> Response:
    try:
        if kind == "branch":
            identity.create_branch(
                ctx.db, ctx.principal, BranchCreate.model_validate(not_given(blank_to_none(form, "code", "name")))
            )
        elif kind == "product":
            products.create_product(ctx.db, ctx.principal, _product(form))
        elif kind == "user":
            identity.create_user(
                ctx.db,
                ctx.principal,
                UserCreate.model_validate(not_given(blank_to_none(form, "username", "password", "role", "branch_id"))),
            )
        else:
            from app.core.errors import NotFound

            raise NotFound(f"nothing to set up called {kind!r}")
    except (*FORM_ERRORS, AppError, DomainError) as exc:
        safe = {k: v for k, v in form.items() if k != "password"}
        return _setup_page(ctx, 422, {kind: field_errors(exc)}, {kind: safe})
    return ctx.redirect(f"/console/setup?done={kind}")
