"""Payment batches in the console: upload a CSV, watch its progress, download the per-row results (the same
services as the API's /payment-batches, so roles and branch scope are the same)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile

from app.console import session as sessions
from app.console.web import ConsoleRoute, CsrfRefused, CtxDep, SignInRequired, field_errors
from app.core.errors import AppError
from app.identity.access import Permission
from app.payments import batches

router = APIRouter(route_class=ConsoleRoute)


async def _upload(request: Request) -> tuple[bytes, str | None]:
    """The posted file, only with this session's CSRF token (else 403, nothing runs)."""
    form = await request.form()
    session = sessions.read(request)
    if session is None:
        raise SignInRequired("/console")
    if not sessions.csrf_ok(session, form.get(sessions.CSRF_FIELD)):
        raise CsrfRefused()
    file = form.get("file")
    if not isinstance(file, UploadFile):
        return b"", None
    return await file.read(batches.MAX_BYTES + 1), file.filename


Upload = Annotated[tuple[bytes, str | None], Depends(_upload)]


def _list_page(ctx: CtxDep, status: int = 200, error: str = "") -> Response:
    ctx.principal.require(Permission.read)
    return ctx.render(
        "payment_batches.html",
        status,
        batches=batches.list_batches(ctx.db, ctx.principal, 20),
        may_upload=ctx.principal.may(Permission.payments_write),
        error=error,
    )


@router.get("/payment-batches")
def batches_page(ctx: CtxDep) -> Response:
    return _list_page(ctx)


@router.post("/payment-batches")
def upload_batch(ctx: CtxDep, upload: Upload) -> Response:
    raw, filename = upload
    try:
        batch = batches.upload(ctx.db, ctx.principal, raw, filename)
    except AppError as exc:
        errors = field_errors(exc)
        return _list_page(ctx, 422, "; ".join(f"{k}: {v}" for k, v in errors.items()) or exc.detail)
    return ctx.redirect(f"/console/payment-batches/{batch.id}")


@router.get("/payment-batches/{batch_id}")
def batch_page(ctx: CtxDep, batch_id: str) -> Response:
    batch, pending, failed = batches.get(ctx.db, ctx.principal, batch_id, "failed", 0, 500)
    return ctx.render("payment_batch.html", batch=batch, pending=pending, failed=failed)


@router.get("/payment-batches/{batch_id}/results.csv")
def batch_results(ctx: CtxDep, batch_id: str) -> Response:
    body, filename = batches.results_csv(ctx.db, ctx.principal, batch_id)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
