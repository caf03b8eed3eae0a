"""Rate limits on top of the `limits` library: in-process memory by default, Redis when REDIS_URL is set so
that all gunicorn workers share one budget (per-process limits multiply by the worker count)."""

import math
import threading
import time

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage as AsyncRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
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


def _seconds_until(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


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
        # Every request is counted on the event loop (RateLimitMiddleware): against Redis through limits' asyncio
        # storage (redis-py's asyncio client), so the round trip never blocks the loop; sign-in's checks run in
        # the thread pool with the sync storage. In memory a hit is a dict update: no I/O to wait for.
        self._requests_async = (
            AsyncMovingWindowRateLimiter(AsyncRedisStorage(f"async+{redis_url}", implementation="redispy"))
            if redis_url
            else None
        )
        self.request_limit: RateLimitItem = RateLimitItemPerMinute(per_minute)
        self.user_limit: RateLimitItem = RateLimitItemPerMinute(user_per_minute or per_minute)
        self.login_limit: RateLimitItem = RateLimitItemPerMinute(login_failures_per_minute)

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        try:
            return _seconds_until(self._limiter.get_window_stats(item, *keys).reset_time)
        except Exception:  # storage trouble must not turn a 429 into a 500
            return 60

    def _request_item(self, client: str, user_id: str | None) -> tuple[RateLimitItem, str, str]:
        """The signed-in user's budget when there is one (an office behind one address is many users), else the
        client address's."""
        return (self.user_limit, "user", user_id) if user_id else (self.request_limit, "req", client)

    def _refuse(self, item: RateLimitItem, retry_after: int) -> RateLimited:
        return RateLimited(f"more than {item.amount} requests per minute", retry_after)

    def hit_request(self, client: str, user_id: str | None = None) -> None:
        """Count one request; raise RateLimited when its budget is spent (storage trouble fails open, loudly)."""
        item, namespace, key = self._request_item(client, user_id)
        try:
            allowed = self._limiter.hit(item, namespace, key)
        except Exception as exc:  # Redis down: fail open, but loudly
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return
        if not allowed:
            raise self._refuse(item, self._retry_after(item, namespace, key))

    async def hit_request_async(self, client: str, user_id: str | None = None) -> None:
        """`hit_request` for the event loop: awaits Redis instead of blocking on it."""
        if self._requests_async is None:
            self.hit_request(client, user_id)
            return
        item, namespace, key = self._request_item(client, user_id)
        try:
            allowed = await self._requests_async.hit(item, namespace, key)
        except Exception as exc:  # Redis down: fail open, but loudly
            log.warning("rate_limit_storage_unavailable", error=str(exc))
            return
        if not allowed:
            try:
                stats = await self._requests_async.get_window_stats(item, namespace, key)
                retry_after = _seconds_until(stats.reset_time)
            except Exception:  # storage trouble must not turn a 429 into a 500
                retry_after = 60
            raise self._refuse(item, retry_after)

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
