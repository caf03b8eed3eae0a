"""Console plumbing shared by every page: templates, the signed-in context, CSRF-checked forms, and the route class
that turns service errors into HTML pages (never problem+json, never a 500 for bad input)."""

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from app.api.errors import status_for
from app.console import session as sessions
from app.console.session import ConsoleSession
from app.core.config import Settings
from app.core.errors import AppError, ValidationFailed
from app.database import Database
from app.domain.errors import DomainError, DomainValidationError, InvalidTransition
from app.identity.access import Permission, Principal

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Security headers for every console page: nothing from another origin, no framing, no caching of balances.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

ERROR_TITLES = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Check the input"}


class SignInRequired(Exception):
    def __init__(self, next_url: str, clear: bool = False) -> None:
        super().__init__("sign in first")
        self.next_url, self.clear = next_url, clear


class CsrfRefused(Exception):
    pass


@dataclass
class Ctx:
    """The signed-in request as a page sees it."""

    request: Request
    session: ConsoleSession
    principal: Principal
    db: Database
    settings: Settings
    renew: ConsoleSession | None = None

    def may(self, permission: str) -> bool:
        return self.principal.may(Permission(permission))

    def finish(self, response: Response) -> Response:
        if self.renew is not None:
            sessions.write(response, self.renew, self.settings)
        return response

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        return self.finish(page(self.request, template, status, ctx=self, **values))

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))


def page(request: Request, template: str, status_code: int = 200, ctx: Ctx | None = None, **values: Any) -> Response:
    session = ctx.session if ctx else getattr(request.state, "console_session", None)
    response = templates.TemplateResponse(
        request,
        template,
        {"ctx": ctx, "principal": ctx.principal if ctx else None, "csrf": session.csrf if session else "", **values},
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _next_url(request: Request) -> str:
    path = request.url.path if request.method == "GET" else "/console"
    query = f"?{request.url.query}" if request.url.query and request.method == "GET" else ""
    return path + query


def current(request: Request) -> Ctx:
    session = sessions.read(request)
    if session is None or not session.signed_in:
        raise SignInRequired(_next_url(request))
    db = sessions.db_of(request)
    principal = sessions.principal_for(db, session)
    if principal is None:
        raise SignInRequired(_next_url(request), clear=True)
    settings = sessions.settings_of(request)
    ctx = Ctx(request, session, principal, db, settings, sessions.renewed(session, settings))
    request.state.console_ctx = ctx
    return ctx


async def posted_form(request: Request) -> dict[str, str]:
    """The submitted form, only if it carries this session's CSRF token (else 403, nothing runs)."""
    form = await request.form()
    session = sessions.read(request)
    if session is None:
        raise SignInRequired("/console")
    if not sessions.csrf_ok(session, form.get(sessions.CSRF_FIELD)):
        raise CsrfRefused()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != sessions.CSRF_FIELD}


CtxDep = Annotated[Ctx, Depends(current)]
FormDep = Annotated[dict[str, str], Depends(posted_form)]


def field_errors(exc: Exception) -> dict[str, str]:
    """{field: message} for showing next to inputs; '' collects what belongs to no field."""
    found: dict[str, str] = {}
    if isinstance(exc, ValidationFailed):
        pairs = [(e.field, e.message) for e in exc.errors]
    elif isinstance(exc, DomainValidationError):
        pairs = [(exc.field, exc.message)]
    elif isinstance(exc, ValidationError):
        pairs = [
            (".".join(str(p) for p in e["loc"]) or "", e["msg"].removeprefix("Value error, ")) for e in exc.errors()
        ]
    elif isinstance(exc, AppError):
        pairs = [(str(exc.extra.get("field", "")), exc.detail)]
    elif isinstance(exc, InvalidTransition):
        pairs = [("", f"{exc.message} (allowed now: {', '.join(exc.allowed_actions) or 'nothing'})")]
    elif isinstance(exc, DomainError):
        pairs = [("", exc.message)]
    else:
        pairs = [("", str(exc))]
    for name, message in pairs:
        found.setdefault(name, message)
    return found


def blank_to_none(form: Mapping[str, str], *names: str) -> dict[str, str | None]:
    """Only the named fields; empty inputs mean 'not given' (the service applies its default)."""
    return {n: (form.get(n) or None) for n in names}


def not_given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


FORM_ERRORS = (ValidationFailed, DomainValidationError, ValidationError)


def error_status(exc: Exception) -> int:
    """The status the API would answer (422 bad input, 404, 403, 409 ...), for a page re-rendered with errors."""
    if isinstance(exc, ValidationError):
        return 422
    status = status_for(exc)
    return 409 if status >= 500 else status


def problem_page(request: Request, exc: Exception) -> Response:
    status = 422 if isinstance(exc, ValidationError) else status_for(exc)
    if status >= 500:
        status = 409 if isinstance(exc, DomainError) else 500
    detail = exc.detail if isinstance(exc, AppError) else exc.message if isinstance(exc, DomainError) else str(exc)
    ctx = getattr(request.state, "console_ctx", None)
    errors = field_errors(exc) if isinstance(exc, FORM_ERRORS) else {}
    allowed = getattr(exc, "allowed_actions", None) or (
        exc.extra.get("allowed_actions") if isinstance(exc, AppError) else None
    )
    response = page(
        request,
        "error.html",
        status,
        ctx=ctx,
        status=status,
        title=ERROR_TITLES.get(status, "Something went wrong"),
        detail=detail,
        errors=errors,
        allowed_actions=allowed,
    )
    return ctx.finish(response) if ctx else response


class ConsoleRoute(APIRoute):
    """Every console endpoint answers HTML: sign-in redirects, the CSRF refusal and service errors become pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as exc:
                response: Response = RedirectResponse(f"/console/login?next={quote(exc.next_url)}", status_code=303)
                if exc.clear:
                    sessions.clear(response, sessions.settings_of(request))
                return response
            except CsrfRefused:
                return page(
                    request,
                    "error.html",
                    403,
                    status=403,
                    title="Form refused",
                    detail="This form did not carry a valid security token (CSRF). Nothing was changed. "
                    "Reload the page and submit it again.",
                    errors={},
                    allowed_actions=None,
                )
            except (AppError, DomainError, ValidationError) as exc:
                return problem_page(request, exc)

        return console_handler
