"""Password hashing (Argon2id via pwdlib) and access tokens (JWT, HS256 only)."""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.errors import AuthenticationFailed

_hasher = PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


@lru_cache
def _decoy_hash() -> str:
    return _hasher.hash("decoy password that never matches")


def burn_verification_time(password: str) -> None:
    """Spend the same Argon2 work for an unknown user as for a known one, so timing does not reveal which."""
    _hasher.verify(password, _decoy_hash())


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    credentials_version: int = 0


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    credentials_version: int


def issue_access_token(
    subject: str, secret: str, algorithm: str, lifetime: timedelta, credentials_version: int = 0
) -> IssuedToken:
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "typ": "access",
        "ver": credentials_version,
    }
    token = jwt.encode(claims, secret, algorithm=algorithm)
    return IssuedToken(token, int(lifetime.total_seconds()), credentials_version)


LEEWAY_SECONDS = 5  # clock skew allowed on exp and nbf


def decode_access_token(
    token: str, secret: str, algorithm: str, max_lifetime: timedelta | None = None
) -> AccessClaims:
    """The token's subject and credentials version; any defect (signature, algorithm, expiry, missing claims, a
    lifetime longer than this server issues) is one 401."""
    claims = _signed_claims(token, secret, algorithm)
    if claims is None or not _in_validity_window(claims, time.time()):
        raise AuthenticationFailed("the access token is invalid or expired")
    if max_lifetime is not None and claims["exp"] - claims["iat"] > max_lifetime.total_seconds() + LEEWAY_SECONDS:
        # We never issue such a token: one that lives longer was minted elsewhere (a leaked or default key).
        raise AuthenticationFailed("the access token is invalid or expired")
    subject, version = claims.get("sub"), claims.get("ver", 0)
    if not isinstance(subject, str) or claims.get("typ") != "access" or type(version) is not int:
        raise AuthenticationFailed("the access token is invalid or expired")
    return AccessClaims(subject, version)


@lru_cache(maxsize=4096)
def _signed_claims(token: str, secret: str, algorithm: str) -> Mapping[str, Any] | None:
    """The claims of a token whose signature and algorithm verify (None otherwise), time aside. The same token
    verifies the same way every time, so a client's token is verified once, not on every request (HMAC key
    preparation and verification were ~5 % of a payment's CPU); its time window is checked on every use."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[algorithm],
            # every check against the clock is left to _in_validity_window: a result cached here must not
            # depend on when it was computed
            options={"require": ["exp", "iat", "sub"], "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    return MappingProxyType(claims)


def _in_validity_window(claims: Mapping[str, Any], now: float) -> bool:
    """exp, nbf and iat as RFC 7519 4.1.4-4.1.6 (numeric dates) and as PyJWT checks them: not expired, not
    before nbf, not issued in the future, each with the leeway."""
    exp, nbf, iat = claims["exp"], claims.get("nbf", now), claims["iat"]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, nbf, iat)):
        return False
    return bool(exp > now - LEEWAY_SECONDS and nbf <= now + LEEWAY_SECONDS and iat <= now + LEEWAY_SECONDS)
