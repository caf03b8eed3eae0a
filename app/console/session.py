"""The console's session: a signed cookie (HMAC-SHA256 under a key derived from SECRET_KEY) carrying the user id,
issued-at, expiry and the CSRF token. Stateless like the API's bearer token, so any worker can serve any
request; the user is re-read on every request, so a disabled user is signed out at their next click.

CSRF is the double-submit pattern: every form carries the session's token in a hidden field and every POST
must echo it (compared in constant time). SameSite=Strict already keeps other sites' forms from sending the
cookie; the token is the second, independent guard. Anonymous visitors get a session without a user, so the
sign-in form is protected too, and signing in issues a fresh token (no session fixation)."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie
from typing import Any

from fastapi import Request, Response
from starlette.types import Scope

from app.core.config import Settings
from app.core.errors import AuthenticationFailed, NotFound
from app.core.security import decode_access_token
from app.database import Database
from app.identity import service as identity
from app.identity.access import Principal, Role

COOKIE_NAME = "console_session"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
ANONYMOUS_TTL_SECONDS = 2 * 60 * 60  # long enough to fill in the sign-in form


@dataclass(frozen=True)
class ConsoleSession:
    user_id: str | None
    issued_at: int
    expires_at: int
    csrf: str
    signed_in_at: int = 0  # kept across sliding renewals: the absolute limit counts from here
    credentials_version: int = 0  # the user's at sign-in; a password change or disabling bumps it

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None


def _key(settings: Settings) -> bytes:
    # A key of its own (domain separation): a console cookie can never pass as an API token or vice versa.
    return hashlib.sha256(b"console-session\x00" + settings.secret_key.get_secret_value().encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(session: ConsoleSession, settings: Settings) -> str:
    payload = _b64(
        json.dumps(
            {
                "uid": session.user_id,
                "iat": session.issued_at,
                "exp": session.expires_at,
                "csrf": session.csrf,
                "auth": session.signed_in_at,
                "ver": session.credentials_version,
            },
            separators=(",", ":"),
        ).encode()
    )
    signature = _b64(hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode(value: str, settings: Settings, now: int | None = None) -> ConsoleSession | None:
    """The session in a cookie, or None when it is malformed, forged, expired or past its absolute limit."""
    payload, _, signature = value.partition(".")
    expected = _b64(hmac.new(_key(settings), payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        return None
    try:
        data: dict[str, Any] = json.loads(_unb64(payload))
        session = ConsoleSession(
            data["uid"],
            int(data["iat"]),
            int(data["exp"]),
            str(data["csrf"]),
            int(data.get("auth", 0)),
            int(data.get("ver", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None
    now = now if now is not None else int(time.time())
    if session.expires_at <= now:
        return None
    if session.user_id is not None and now - session.signed_in_at > settings.console_session_max_hours * 3600:
        return None
    return session


def new_session(user_id: str | None, settings: Settings, credentials_version: int = 0) -> ConsoleSession:
    now = int(time.time())
    ttl = settings.access_token_expire_minutes * 60 if user_id else ANONYMOUS_TTL_SECONDS
    return ConsoleSession(user_id, now, now + ttl, secrets.token_urlsafe(32), now, credentials_version)


def renewed(session: ConsoleSession, settings: Settings) -> ConsoleSession | None:
    """Sliding expiry: once half the lifetime has passed, activity extends it (same CSRF token, so open forms
    stay valid). ACCESS_TOKEN_EXPIRE_MINUTES is therefore the idle timeout; CONSOLE_SESSION_MAX_HOURS after
    sign-in the session ends however active it was."""
    ttl = settings.access_token_expire_minutes * 60
    now = int(time.time())
    if session.user_id is None or session.expires_at - now > ttl // 2:
        return None
    hard_end = session.signed_in_at + settings.console_session_max_hours * 3600
    return replace(session, issued_at=now, expires_at=min(now + ttl, hard_end))


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def read(request: Request) -> ConsoleSession | None:
    value = request.cookies.get(COOKIE_NAME)
    return decode(value, settings_of(request)) if value else None


def write(response: Response, session: ConsoleSession, settings: Settings) -> None:
    response.set_cookie(
        COOKIE_NAME,
        encode(session, settings),
        max_age=max(session.expires_at - int(time.time()), 1),
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.is_production,
        samesite="strict",
    )


def clear(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, httponly=True, secure=settings.is_production, samesite="strict"
    )


def csrf_ok(session: ConsoleSession | None, submitted: object) -> bool:
    return (
        session is not None
        and isinstance(submitted, str)
        and bool(submitted)
        and hmac.compare_digest(submitted.encode(), session.csrf.encode())
    )


def principal_for(db: Database, session: ConsoleSession) -> Principal | None:
    """The signed-in user as the services see them; None when the user is gone or disabled (signed out)."""
    if session.user_id is None:
        return None
    probe = Principal(session.user_id, "", Role.auditor, None)  # only its user_id is read by get_me
    try:
        user = identity.get_me(db, probe)
    except NotFound:
        return None
    if not user.is_active or user.credentials_version != session.credentials_version:
        return None
    return Principal(user.id, user.username, Role(user.role), user.branch_id)


def caller_identifier(settings: Settings) -> Callable[[Scope], str | None]:
    """For per-user rate limits: the user id behind a request's bearer token or console session, checked by
    signature and expiry only (no database), or None."""
    secret, algorithm = settings.secret_key.get_secret_value(), settings.algorithm

    def identify(scope: Scope) -> str | None:
        headers = dict(scope.get("headers", []))
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return decode_access_token(token.strip(), secret, algorithm).subject
            except AuthenticationFailed:
                return None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:
            return None
        morsel = cookie.get(COOKIE_NAME)
        session = decode(morsel.value, settings) if morsel is not None else None
        return session.user_id if session is not None else None

    return identify
