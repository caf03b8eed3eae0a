"""Access tokens: a token's signature is verified once per process (cached), its time window on every use."""

import time
from datetime import timedelta

import jwt
import pytest

from app.core import security
from app.core.errors import AuthenticationFailed

SECRET = "unit-secret-" + "u" * 64


def _token(**claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"sub": "user-1", "iat": now, "exp": now + 300, "typ": "access", "ver": 2}
    payload.update(claims)
    return jwt.encode(payload, SECRET, algorithm="HS256")


def _at(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    monkeypatch.setattr(security.time, "time", lambda: moment)


def test_a_verified_token_is_refused_once_it_expires_although_its_signature_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _token()
    claims = security.decode_access_token(token, SECRET, "HS256", timedelta(minutes=30))
    assert (claims.subject, claims.credentials_version) == ("user-1", 2)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    _at(monkeypatch, exp + security.LEEWAY_SECONDS - 1)  # within the leeway: still good
    assert security.decode_access_token(token, SECRET, "HS256").subject == "user-1"
    _at(monkeypatch, exp + security.LEEWAY_SECONDS)
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(token, SECRET, "HS256")


def test_a_token_not_yet_valid_is_refused_until_its_nbf(monkeypatch: pytest.MonkeyPatch) -> None:
    nbf = int(time.time()) + 60
    token = _token(nbf=nbf)
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(token, SECRET, "HS256")
    _at(monkeypatch, nbf)
    assert security.decode_access_token(token, SECRET, "HS256").subject == "user-1"


def test_a_token_issued_in_the_future_is_refused_until_then_and_the_refusal_is_not_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another server's clock may run ahead by the leeway; a refusal for the time must not stick in the cache."""
    now = int(time.time())
    _at(monkeypatch, now)
    skewed = _token(iat=now + security.LEEWAY_SECONDS - 1)
    assert security.decode_access_token(skewed, SECRET, "HS256").subject == "user-1"
    early = _token(iat=now + 60)
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(early, SECRET, "HS256")
    _at(monkeypatch, now + 60)
    assert security.decode_access_token(early, SECRET, "HS256").subject == "user-1"


@pytest.mark.parametrize("claims", [{"exp": "tomorrow"}, {"exp": True}, {"iat": "now"}, {"nbf": [1]}])
def test_time_claims_that_are_not_numeric_dates_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(_token(**claims), SECRET, "HS256")


def test_the_cache_is_per_key_a_token_of_another_key_never_verifies() -> None:
    token = _token()
    security.decode_access_token(token, SECRET, "HS256")
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(token, "another-" + SECRET, "HS256")
    with pytest.raises(AuthenticationFailed):
        security.decode_access_token(token, SECRET, "HS512")
