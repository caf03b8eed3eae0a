"""The in-process rate-limit storage: limits' decisions, one pruning thread instead of a timer per hit."""

import threading
import time

import pytest
from limits import RateLimitItemPerSecond
from limits.storage import memory
from limits.strategies import MovingWindowRateLimiter

from app.core.ratelimit import PrunedMemoryStorage


def test_hits_start_no_timer_threads_and_one_pruner(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = PrunedMemoryStorage()

    def no_timers(*args: object, **kwargs: object) -> None:
        raise AssertionError("a hit started a threading.Timer")

    monkeypatch.setattr(memory.threading, "Timer", no_timers)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(1000)
    assert all(limiter.hit(item, "user", "u1") for _ in range(500))
    pruners = [t for t in threading.enumerate() if t is storage._pruner]
    assert len(pruners) == 1 and pruners[0].daemon


def test_the_moving_window_still_limits_between_prunes() -> None:
    limiter = MovingWindowRateLimiter(PrunedMemoryStorage(prune_every=3600))
    item = RateLimitItemPerSecond(3)
    assert [limiter.hit(item, "user", "u2") for _ in range(4)] == [True, True, True, False]
    assert limiter.get_window_stats(item, "user", "u2").remaining == 0
    assert limiter.hit(item, "user", "other")  # another key has its own budget


def test_expired_entries_are_pruned() -> None:
    storage = PrunedMemoryStorage(prune_every=0.01)
    assert storage.acquire_entry("k", limit=10, expiry=0)
    deadline = time.monotonic() + 10
    while storage.events.get("k") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not storage.events.get("k")
