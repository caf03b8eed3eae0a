"""Webhooks end to end: subscriptions API, Standard Webhooks signatures verified by a real receiver thread with
`standardwebhooks`, per-loan ordering while the receiver fails every third delivery, `failed` after the retry
window, replay from a sequence, and kill -9 of the worker mid-delivery (at-least-once, in order per loan)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.database import Database
from app.events.models import WebhookDelivery
from app.events.worker import run_until_idle
from tests.api.helpers_lending import LOANS, active_loan, pay
from tests.api.webhook_receiver import Receiver
from tests.conftest import ROOT_DIR, World, assert_problem, fresh_world, make_settings

HOOKS = "/api/v1/webhooks"
FAST = {
    "webhook_backoff_base_seconds": 0.01,
    "webhook_backoff_max_seconds": 0.05,
    "webhook_lease_seconds": 2,
    "webhook_timeout_seconds": 1,
    "worker_poll_seconds": 0.05,
    "worker_concurrency": 4,
}


@pytest.fixture(scope="module")
def lender() -> Iterator[tuple[World, Database]]:
    with fresh_world() as pair:
        yield pair


def worker_settings(db: Database, **overrides: Any) -> Settings:
    return make_settings(db.engine.url.render_as_string(hide_password=False), **{**FAST, **overrides})


def subscribe(w: World, url: str, events: list[str] | None = None) -> dict[str, Any]:
    r = w.post("admin", HOOKS, {"url": url, "events": events or ["loan.*"]})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def unsubscribe_all(w: World) -> None:
    for ep in w.get("admin", HOOKS).json()["items"]:
        assert w.client.delete(f"{HOOKS}/{ep['id']}", headers=w.h("admin")).status_code == 204


def deliveries(w: World, hook_id: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {"limit": "500", **params, **({"cursor": cursor} if cursor else {})}
        r = w.get("admin", f"{HOOKS}/{hook_id}/deliveries", params=q)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if not (cursor := r.json()["next_cursor"]):
            return items


def loan_with_events(w: World, count: int) -> str:
    """A loan with exactly `count` events: submitted, approved, disbursed, then payments."""
    loan = active_loan(w, principal="5000.00", term=24)
    for _ in range(count - 3):
        assert pay(w, loan["id"], "1.00").status_code == 201
    return str(loan["id"])


def test_subscriptions_api(lender: tuple[World, Database]) -> None:
    w, _ = lender
    created = subscribe(w, "https://example.com/hooks", ["loan.payment_received", "cob.*"])
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    got = w.get("admin", f"{HOOKS}/{created['id']}")
    assert got.status_code == 200 and "secret" not in got.json()
    assert created["id"] in [e["id"] for e in w.get("admin", HOOKS).json()["items"]]
    for who in ("manager", "officer_a", "auditor"):
        assert_problem(w.post(who, HOOKS, {"url": "not even a url"}), 403)
        assert_problem(w.get(who, HOOKS), 403)
    assert_problem(w.post("admin", HOOKS, {"url": "ftp://x.example", "events": ["*"]}), 422, "url")
    assert_problem(w.post("admin", HOOKS, {"url": "https://x.example", "events": ["loan.paid"]}), 422, "events")
    assert_problem(w.post("admin", HOOKS, {"url": "https://x.example", "events": []}), 422, "events")
    assert_problem(w.post("admin", f"{HOOKS}/{created['id']}/replay", {"from_sequence": 0}), 422, "from_sequence")
    assert_problem(w.get("admin", f"{HOOKS}/{created['id']}/deliveries", params={"cursor": "zz"}), 422, "cursor")
    assert w.client.delete(f"{HOOKS}/{created['id']}", headers=w.h("admin")).status_code == 204
    assert_problem(w.get("admin", f"{HOOKS}/{created['id']}"), 404)
    assert_problem(w.post("admin", f"{HOOKS}/nope/replay", {}), 404)


def test_fifty_events_arrive_in_order_while_every_third_delivery_fails_then_replay(
    lender: tuple[World, Database],
) -> None:
    w, db = lender
    with Receiver(fail_every=3) as receiver:
        hook = subscribe(w, receiver.url)
        receiver.secret = hook["secret"]
        loan_id = loan_with_events(w, 50)
        run_until_idle(db, worker_settings(db), timeout=120)
        assert receiver.bad_signatures == 0
        assert receiver.sequences(loan_id) == list(range(1, 51))
        failed_attempts = [r for r in receiver.received if r.answered == 500]
        assert len(failed_attempts) >= 20, "every third delivery failed and was retried"
        first = next(r for r in receiver.accepted() if r.body["data"].get("loan_id") == loan_id)
        assert first.body["type"] == "loan.submitted" and first.webhook_id.startswith("msg_")
        items = deliveries(w, hook["id"], status="delivered")
        assert len([d for d in items if d["loan_id"] == loan_id]) == 50
        assert all(d["attempts"] >= 1 for d in items)

        r = w.post("admin", f"{HOOKS}/{hook['id']}/replay", {"from_sequence": 41, "loan_id": loan_id})
        assert r.status_code == 202 and r.json() == {"queued": 10}, r.text
        receiver.received.clear()
        run_until_idle(db, worker_settings(db), timeout=60)
        assert receiver.sequences(loan_id) == list(range(41, 51))
        assert len([d for d in deliveries(w, hook["id"]) if d["replay"]]) == 10
        unsubscribe_all(w)


def test_a_delivery_fails_after_the_retry_window_and_the_next_event_goes(lender: tuple[World, Database]) -> None:
    w, db = lender
    with Receiver(always_fail=True) as receiver:
        hook = subscribe(w, receiver.url, ["loan.payment_received"])
        receiver.secret = hook["secret"]
        loan = active_loan(w)
        assert pay(w, loan["id"], "10.00").status_code == 201
        assert pay(w, loan["id"], "11.00").status_code == 201
        run_until_idle(db, worker_settings(db, webhook_retry_window_hours=0.3 / 3600), timeout=60)
        items = deliveries(w, hook["id"])
        assert [d["status"] for d in items] == ["failed", "failed"]
        assert all(d["attempts"] >= 2 and d["last_status_code"] == 500 for d in items)
        seen = [r.body["data"]["sequence"] for r in receiver.received]
        assert seen == sorted(seen), "the second waited until the first gave up"
        receiver.always_fail = False
        replay = w.post("admin", f"{HOOKS}/{hook['id']}/replay", {"loan_id": loan["id"]})
        assert replay.json() == {"queued": 2}
        run_until_idle(db, worker_settings(db), timeout=60)
        amounts = [r.body["data"]["transaction"]["amount"] for r in receiver.accepted()]
        assert amounts == ["10.00", "11.00"]
        unsubscribe_all(w)


def test_kill_minus_nine_mid_delivery_then_restart_delivers_everything_in_order(
    lender: tuple[World, Database],
) -> None:
    w, db = lender
    with Receiver(delay=0.05) as receiver:
        hook = subscribe(w, receiver.url)
        receiver.secret = hook["secret"]
        loans = [loan_with_events(w, 15) for _ in range(3)]
        env = {
            **os.environ,
            "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
            "LOG_LEVEL": "WARNING",
            **{k.upper(): str(v) for k, v in FAST.items()},
            "WEBHOOK_LEASE_SECONDS": "1",
            "WEBHOOK_TIMEOUT_SECONDS": "0.5",
        }
        cmd = [sys.executable, "-m", "app.cli", "deliver-events"]
        first = subprocess.Popen(cmd, env=env, cwd=ROOT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while len(receiver.received) < 12:
            assert time.monotonic() < deadline and first.poll() is None, "the worker delivers"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        partial = len(receiver.accepted())
        assert partial < 45
        second = subprocess.Popen(cmd, env=env, cwd=ROOT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            while _pending(db):
                assert time.monotonic() < deadline + 60 and second.poll() is None, "the restarted worker delivers"
                time.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=30)
        assert second.returncode == 0, out
        for loan_id in loans:
            seqs = receiver.sequences(loan_id)
            assert sorted(set(seqs)) == list(range(1, 16)), (loan_id, seqs)
            assert seqs == sorted(seqs), f"in order per loan (duplicates allowed): {seqs}"
        assert receiver.bad_signatures == 0
        unsubscribe_all(w)


def _pending(db: Database) -> bool:
    with db.session(writer=False) as session:
        stmt = select(WebhookDelivery.id).where(WebhookDelivery.status == "pending").limit(1)
        return session.execute(stmt).first() is not None


def test_a_dry_run_payment_is_not_delivered(lender: tuple[World, Database]) -> None:
    w, db = lender
    with Receiver() as receiver:
        hook = subscribe(w, receiver.url, ["loan.payment_received"])
        receiver.secret = hook["secret"]
        loan = active_loan(w)
        r = w.post("manager", f"{LOANS}/{loan['id']}/payments?dry_run=true", {"amount": "5.00"},
                   headers={"Idempotency-Key": "k"})
        assert r.status_code == 200
        run_until_idle(db, worker_settings(db), timeout=30)
        assert receiver.received == []
        unsubscribe_all(w)
