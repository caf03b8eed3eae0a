"""Rate limits on top of the `limits` library: in-process memory by default, Redis when REDIS_URL is set so
that all gunicorn workers share one budget (per-process limits multiply by the worker count)."""

import math
import threading
import time

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from app.core.errors import RateLimited
from app.core.logging import get_logger

log = get_logger(__name__)

PRUNE_EVERY_SECONDS = 1.0


class PrunedMemoryStorage(MemoryStorage):
    """limits' in-process storage, pruned by one long-lived thread. MemoryStorage (limits 5.8) prunes expired
    entries from a `threading.Timer` that every hit restarts once the last one ended: a new thread about every
    10 ms under steady load, a measurable share of a request's CPU. Decisions never wait for pruning (a hit and
    the window's stats compare timestamps), so pruning once a second only bounds memory."""

    def __init__(self, prune_every: float = PRUNE_EVERY_SECONDS) -> None:
        super().__init__()
        self.timer.cancel()
        self._prune_every = prune_every
        self._pruner: threading.Thread | None = None
        self._pruner_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the per-hit timer of the base class
        # Started on first use rather than in __init__: a worker forked after the app was built has no threads.
        if self._pruner is None or not self._pruner.is_alive():
            with self._pruner_lock:
                if self._pruner is None or not self._pruner.is_alive():
                    self._pruner = threading.Thread(target=self._prune_forever, name="rate-limit-pruner", daemon=True)
                    self._pruner.start()

    def _prune_forever(self) -> None:
        expire = getattr(self, "_MemoryStorage__expire_events")  # noqa: B009 - the base class's private pruning
        while True:
            time.sleep(self._prune_every)
            expire()


class RateLimiter:
    def __init__(
        self,
        redis_url: str | None,
        per_minute: int,
        login_failures_per_minute: int,
        user_per_minute: int | None = None,
    ) -> None:
        self.storage: Storage = RedisStorage(redis_url) if redis_url else PrunedMemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)
        self.request_limit: RateLimitItem = RateLimitItemPerMinute(per_minute)
        self.user_limit: RateLimitItem = RateLimitItemPerMinute(user_per_minute or per_minute)
        self.login_limit: RateLimitItem = RateLimitItemPerMinute(login_failures_per_minute)

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        try:
            reset_at = self._limiter.get_window_stats(item, *keys).reset_time
        except Exception:  # storage trouble must not turn a 429 into a 500
            return 60
        return max(1, math.ceil(reset_at - time.time()))

    def hit_request(self, client: str, user_id: str | None = None) -> None:
        """Count one request: against the signed-in user's budget when there is one (an office behind one
        address is many users), else against the client address's; raise RateLimited when it is spent."""
        item, namespace, key = (
            (self.user_limit, "user", user_id) if user_id else (self.request_limit, "req", client)
        )
        try:
            allowed = self._limiter.hit(item, namespace, key)
        except Exception as exc:  # Redis down: fail open, but loudly
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return
        if not allowed:
            raise RateLimited(
                f"more than {item.amount} requests per minute", self._retry_after(item, namespace, key)
            )

    def check_login_allowed(self, username: str, client: str) -> None:
        try:
            allowed = self._limiter.test(self.login_limit, "login", username.lower(), client)
        except Exception as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return
        if not allowed:
            raise RateLimited(
                "too many failed sign-in attempts; try again later",
                self._retry_after(self.login_limit, "login", username.lower(), client),
            )

    def record_login_failure(self, username: str, client: str) -> None:
        try:
            self._limiter.hit(self.login_limit, "login", username.lower(), client)
        except Exception as exc:
            log.warning("rate_limit_storage_unavailable", error=str(exc))
