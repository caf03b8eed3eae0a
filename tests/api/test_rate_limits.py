"""Rate limits: per client in-process, shared across app instances (workers) through the real Redis."""

import os
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import IN_CI, PASSWORD, Settings, assert_problem, make_settings, unique

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _settings(base: Settings, **kw: object) -> Settings:
    return make_settings(base.database_url, **kw)


def test_request_limit_in_process(settings: Settings) -> None:
    with TestClient(create_app(_settings(settings, rate_limit_per_minute=5))) as c:
        codes = [c.get("/api/v1/users/me").status_code for _ in range(7)]
        assert codes[:5] == [401] * 5
        r = c.get("/api/v1/users/me")
        assert_problem(r, 429)
        assert int(r.headers["retry-after"]) >= 1
        assert c.get("/health").status_code == 200  # health is never limited


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not _redis_available():
        if IN_CI:
            pytest.fail(f"Redis required under CI=true but unreachable at {REDIS_URL}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    return REDIS_URL


def test_request_limit_is_shared_through_redis(settings: Settings, redis_url: str) -> None:
    # Two app instances stand for two gunicorn workers: together they may serve only the shared budget.
    redis.Redis.from_url(redis_url).flushdb()
    s = _settings(settings, rate_limit_per_minute=6, redis_url=redis_url)
    with TestClient(create_app(s)) as one, TestClient(create_app(s)) as two:
        codes = [(one if i % 2 else two).get("/api/v1/users/me").status_code for i in range(8)]
    assert codes.count(429) == 2, codes
    assert codes[:6] == [401] * 6


def test_login_failures_are_limited_per_username(settings: Settings, db: object, redis_url: str) -> None:
    from app.identity import service as identity
    from app.identity.access import Role

    redis.Redis.from_url(redis_url).flushdb()
    name = unique("locked")
    identity.ensure_user(db, name, PASSWORD, Role.auditor)  # type: ignore[arg-type]
    s = _settings(settings, login_failures_per_minute=3, redis_url=redis_url)
    with TestClient(create_app(s)) as c:
        for _ in range(3):
            assert_problem(c.post("/api/v1/auth/token", data={"username": name, "password": "bad-" + uuid.uuid4().hex}), 401)
        # Even the right password is refused while the username is locked out from this client.
        assert_problem(c.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD}), 429)
        # Another username from the same client is unaffected.
        assert_problem(c.post("/api/v1/auth/token", data={"username": unique("x"), "password": "bad"}), 401)


def test_requests_are_counted_in_redis_without_blocking_the_event_loop(
    settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-request hits await redis-py's asyncio client: the sync client (used by sign-in's checks, in the thread
    pool) is never called from the middleware, and the shared budget still holds."""
    from limits.strategies import MovingWindowRateLimiter

    def blocking(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a request was counted through the blocking Redis client")

    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setattr(MovingWindowRateLimiter, "hit", blocking)
    with TestClient(create_app(_settings(settings, rate_limit_per_minute=3, redis_url=redis_url))) as c:
        codes = [c.get("/api/v1/users/me").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429], codes
        r = c.get("/api/v1/users/me")
        assert_problem(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= 60
    assert redis.Redis.from_url(redis_url).keys("LIMITS*"), "the hits were stored in Redis"
