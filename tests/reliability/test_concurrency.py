"""Concurrency against the real app in a subprocess (CONTRACT "Concurrency" and "Idempotency"):

- PostgreSQL, gunicorn with 2 uvicorn workers: 100 concurrent payments on one loan all succeed and add up;
  100 concurrent requests with one Idempotency-Key post exactly once and answer identically; two loans
  don't block each other (a held row lock on one loan leaves the other writable); kill -9 in the middle
  of a burst leaves no in-flight marker: after a restart every key is processed exactly once overall.
- SQLite, uvicorn: BEGIN IMMEDIATE with a busy timeout serialises 20 concurrent payments, all succeed.

TestClient is not thread-safe, so every test talks HTTP to a real server on a free port.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import LEG, PASSWORD, PG_ADMIN_DSN, create_pg_database, drop_pg_database, pg_url, require_postgres

ROOT = Path(__file__).resolve().parents[2]
SECRET = "concurrency-secret-" + "c" * 64
API = "/api/v1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """The app in a subprocess; `start()` again after a crash serves the same database on the same port."""

    url: str
    workdir: Path
    gunicorn: bool
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "SECRET_KEY": SECRET,
            "ENV": "development",
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "USER_RATE_LIMIT_PER_MINUTE": "1000000",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": "",
            "SENTRY_DSN": "",
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prom"),
        }

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0, f"app.cli {args[0]}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        (self.workdir / "prom").mkdir(exist_ok=True)
        bind = f"127.0.0.1:{self.port}"
        if self.gunicorn:
            command = [sys.executable, "-m", "gunicorn", "app.main:app", "-k", "uvicorn_worker.UvicornWorker",
                       "-w", "2", "-b", bind, "--log-level", "warning", "--graceful-timeout", "5"]
        else:
            command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                       "--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, (self.workdir / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become healthy in 60 s"
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL the whole process group (master and workers): no cleanup of any kind runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Lender:
    """An admin, a manager, a product and helpers to lend and pay over HTTP against `server`."""

    server: Server
    client: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)
    product_id: str = ""
    branch_id: str = ""

    def h(self, who: str = "manager", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def login(self, username: str) -> str:
        r = self.client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def post(self, path: str, body: dict[str, Any], who: str = "manager", **headers: str) -> httpx.Response:
        return self.client.post(f"{API}{path}", json=body, headers=self.h(who, **headers))

    def get(self, path: str, who: str = "manager", **params: Any) -> Any:
        r = self.client.get(f"{API}{path}", headers=self.h(who), params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def setup(self) -> None:
        self.server.cli("init-db")
        self.server.cli("create-user", "ccadmin", "--role", "admin", "--password", PASSWORD)
        self.tokens["admin"] = self.login("ccadmin")
        r = self.post("/branches", {"code": "CC", "name": "Concurrency"}, who="admin")
        assert r.status_code == 201, r.text
        self.branch_id = r.json()["id"]
        r = self.post("/users", {"username": "ccmanager", "password": PASSWORD, "role": "manager",
                                 "branch_id": self.branch_id}, who="admin")
        assert r.status_code == 201, r.text
        self.tokens["manager"] = self.login("ccmanager")
        r = self.post("/products", {
            "code": "CC1", "name": "Concurrency", "currency": "USD", "min_principal": "100.00",
            "max_principal": "100000.00", "min_term": 1, "max_term": 60, "annual_rate_percent": "12",
            "frequency": "monthly", "amortization": "equal_installments", "interest_method": "declining_balance",
            "day_count": "30/360",
        }, who="admin")
        assert r.status_code == 201, r.text
        self.product_id = r.json()["id"]

    def loan(self, principal: str = "50000.00") -> str:
        r = self.post("/borrowers", {"branch_id": self.branch_id, "first_name": "Con", "last_name": uuid.uuid4().hex})
        assert r.status_code == 201, r.text
        r = self.post("/loans", {"borrower_id": r.json()["id"], "product_id": self.product_id,
                                 "principal": principal, "term": 24})
        assert r.status_code == 201, r.text
        loan_id: str = r.json()["id"]
        for action in ("approve", "disburse"):
            r = self.post(f"/loans/{loan_id}/{action}", {})
            assert r.status_code == 200, r.text
        return loan_id

    def pay(self, loan_id: str, amount: str, key: str | None = None) -> httpx.Response:
        return self.post(f"/loans/{loan_id}/payments", {"amount": amount},
                         **{"Idempotency-Key": key or uuid.uuid4().hex})

    def transactions(self, loan_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(f"/loans/{loan_id}/transactions", limit=500)["items"]
        return items

    def repayments(self, loan_id: str) -> list[dict[str, Any]]:
        return [t for t in self.transactions(loan_id) if t["type"] == "repayment"]

    def assert_trial_balance_zero(self) -> None:
        tb = self.get("/ledger/trial-balance")
        assert tb["total_debit"] == tb["total_credit"], tb


@pytest.fixture(scope="module")
def pg_lender(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lender]:
    if LEG != "postgresql":
        pytest.skip("PostgreSQL leg only (TEST_DATABASE=postgresql)")
    require_postgres()
    name = create_pg_database("loans_conc")
    server = Server(pg_url(name), tmp_path_factory.mktemp("conc"), gunicorn=True)
    try:
        with httpx.Client(base_url=server.base, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            lender = Lender(server, client)
            server.start()
            lender.setup()
            yield lender
    finally:
        server.stop()
        drop_pg_database(name)


def _burst(fn: Any, count: int, threads: int = 24) -> list[httpx.Response]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, range(count)))


@pytest.mark.postgres_only
def test_100_concurrent_payments_on_one_loan_all_succeed_and_add_up(pg_lender: Lender) -> None:
    loan_id = pg_lender.loan("50000.00")
    responses = _burst(lambda _: pg_lender.pay(loan_id, "10.00"), 100)
    assert [r.status_code for r in responses] == [201] * 100, {r.status_code: r.text for r in responses}
    assert len({r.json()["transaction_id"] for r in responses}) == 100
    repayments = pg_lender.repayments(loan_id)
    assert len(repayments) == 100
    principal_paid = sum(Decimal(t["allocation"]["principal"]) for t in repayments)
    loan = pg_lender.get(f"/loans/{loan_id}")
    interest_paid = sum(Decimal(t["allocation"]["interest"]) for t in repayments)
    # paid on the disbursement date: installment 1 as scheduled (its interest received in advance), the
    # rest principal; nothing has accrued, so the payoff is the principal less everything paid
    assert principal_paid + interest_paid == Decimal("1000.00")
    assert Decimal(loan["balances"]["principal"]) == Decimal("50000.00") - principal_paid
    assert Decimal(loan["balances"]["interest_in_advance"]) == interest_paid
    assert Decimal(loan["balances"]["total"]) == Decimal("50000.00") - Decimal("1000.00")
    assert loan["version"] >= 100 + 3
    pg_lender.assert_trial_balance_zero()


@pytest.mark.postgres_only
def test_100_concurrent_requests_with_one_key_post_once_and_answer_identically(pg_lender: Lender) -> None:
    loan_id = pg_lender.loan()
    key = uuid.uuid4().hex
    responses = _burst(lambda _: pg_lender.pay(loan_id, "25.00", key), 100)
    done = [r for r in responses if r.status_code != 409]
    assert {r.status_code for r in done} == {201}, {r.status_code: r.text for r in responses}
    assert len({r.text for r in done}) == 1
    assert sum(1 for r in done if "Idempotent-Replayed" not in r.headers) == 1
    if len(done) < 100:  # some answered "in flight": a later retry must replay the one answer
        retry = pg_lender.pay(loan_id, "25.00", key)
        assert retry.status_code == 201 and retry.text == done[0].text
    [tx] = pg_lender.repayments(loan_id)
    entries = pg_lender.get(f"/loans/{loan_id}/journal-entries")["items"]
    assert len([e for e in entries if e["transaction_id"] == tx["id"]]) == 1
    pg_lender.assert_trial_balance_zero()


@pytest.mark.postgres_only
def test_one_key_used_concurrently_on_two_loans_posts_once(pg_lender: Lender) -> None:
    """The key row is written with the commit's other rows (one CTE statement): the loser of the unique
    (user, key) race is refused or replays the winner's answer, never a 500, and only one payment exists."""
    loans = [pg_lender.loan(), pg_lender.loan()]
    key = uuid.uuid4().hex
    responses = _burst(lambda i: pg_lender.pay(loans[i % 2], "25.00", key), 40)
    assert {r.status_code for r in responses} <= {201, 409, 422}, {r.status_code: r.text for r in responses}
    posted = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(posted) == 1
    assert sum(len(pg_lender.repayments(loan_id)) for loan_id in loans) == 1
    pg_lender.assert_trial_balance_zero()


@pytest.mark.postgres_only
def test_two_loans_do_not_block_each_other(pg_lender: Lender) -> None:
    first, second = pg_lender.loan(), pg_lender.loan()
    # hold the row lock of `first` from outside the app, as a long payment on it would
    dsn = pg_lender.server.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT id FROM loans WHERE id = %s FOR UPDATE", (first,))
        blocked: list[httpx.Response] = []
        waiter = threading.Thread(target=lambda: blocked.append(pg_lender.pay(first, "5.00")))
        waiter.start()
        started = time.perf_counter()
        r = pg_lender.pay(second, "5.00")
        assert r.status_code == 201, r.text
        assert time.perf_counter() - started < 5
        time.sleep(0.5)
        assert not blocked, "a payment on a locked loan went through"
        conn.rollback()
    waiter.join(30)
    assert blocked and blocked[0].status_code == 201, blocked
    # and a concurrent mix on both loans all succeeds
    responses = _burst(lambda i: pg_lender.pay((first, second)[i % 2], "1.00"), 40, threads=16)
    assert [r.status_code for r in responses] == [201] * 40
    assert len(pg_lender.repayments(first)) == len(pg_lender.repayments(second)) == 21
    pg_lender.assert_trial_balance_zero()


@pytest.mark.postgres_only
def test_a_crash_mid_burst_leaves_nothing_that_blocks_a_retry(pg_lender: Lender) -> None:
    loan_id = pg_lender.loan()
    keys = [f"crash-{uuid.uuid4().hex}" for _ in range(60)]
    server = pg_lender.server

    def attempt(i: int) -> int:
        try:
            return pg_lender.pay(loan_id, "1.00", keys[i]).status_code
        except httpx.TransportError:
            return 0

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(attempt, i) for i in range(len(keys))]
        while sum(f.done() for f in futures) < 5:
            time.sleep(0.01)
        server.kill9()
        first = [f.result() for f in futures]
    assert 0 in first, "the crash came too late to interrupt anything"
    assert set(first) <= {0, 201}
    server.start()
    retries = _burst(lambda i: pg_lender.pay(loan_id, "1.00", keys[i]), len(keys), threads=16)
    assert [r.status_code for r in retries] == [201] * len(keys), [r.text for r in retries if r.status_code != 201]
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in retries]
    # everything answered 201 before the crash is replayed, never posted twice
    assert all(replayed[i] for i, status in enumerate(first) if status == 201)
    repayments = pg_lender.repayments(loan_id)
    assert len(repayments) == len(keys)
    assert {r.json()["transaction_id"] for r in retries} == {t["id"] for t in repayments}
    pg_lender.assert_trial_balance_zero()


def test_sqlite_begin_immediate_serialises_concurrent_payments(tmp_path: Path) -> None:
    if LEG == "postgresql":
        pytest.skip("SQLite leg only: it runs its own SQLite file")
    server = Server(f"sqlite:///{tmp_path / 'conc.db'}", tmp_path, gunicorn=False)
    with httpx.Client(base_url=server.base, timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        lender = Lender(server, client)
        server.start()
        try:
            lender.setup()
            loan_id = lender.loan("5000.00")
            responses = _burst(lambda _: lender.pay(loan_id, "3.00"), 20, threads=20)
            assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
            repayments = lender.repayments(loan_id)
            assert len(repayments) == 20
            loan = lender.get(f"/loans/{loan_id}")
            # all paid on the disbursement day: the payoff drops by exactly what was paid
            assert Decimal(loan["balances"]["total"]) == Decimal("5000.00") - Decimal("60.00")
            lender.assert_trial_balance_zero()
        finally:
            server.stop()


_ = PG_ADMIN_DSN  # the throwaway databases are created through conftest's admin DSN


@pytest.mark.postgres_only
def test_payments_during_a_two_worker_close_of_business_keep_every_loan_ledger_equal_to_its_balances(
    tmp_path: Path,
) -> None:
    """Payments from several threads while `loanctl close-day --workers 2` closes 25 days: close of business
    locks what it posts, so no day's accrual is booked twice and every loan's lines equal its balances."""
    if LEG != "postgresql":
        pytest.skip("PostgreSQL leg only (TEST_DATABASE=postgresql)")
    require_postgres()
    name = create_pg_database("loans_cobrace")
    server = Server(pg_url(name), tmp_path, gunicorn=True)
    try:
        with httpx.Client(base_url=server.base, timeout=60, limits=httpx.Limits(max_connections=16)) as client:
            lender = Lender(server, client)
            server.start()
            lender.setup()
            loans = [lender.loan("5000.00") for _ in range(40)]
            today = lender.get("/operations/business-date")["business_date"]
            through = (date.fromisoformat(today) + timedelta(days=24)).isoformat()
            cob = subprocess.Popen([sys.executable, "-m", "app.cli", "close-day", "--date", through, "--workers", "2"],
                                   cwd=ROOT, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            posted: list[int] = []

            def keep_paying(worker: int) -> None:
                n = 0
                while cob.poll() is None or n < 5:
                    r = lender.pay(loans[(worker * 7 + n) % len(loans)], "1.00")
                    assert r.status_code == 201, r.text
                    n += 1
                posted.append(n)

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(keep_paying, range(4)))
            output, _ = cob.communicate(timeout=600)
            assert cob.returncode == 0, output
            assert lender.get("/operations/business-date")["business_date"] > through
            assert sum(posted) >= 20
            verified = subprocess.run([sys.executable, "-m", "app.cli", "verify-ledger"], cwd=ROOT, env=server.env,
                                      capture_output=True, text=True, check=False, timeout=300)
            assert verified.returncode == 0, verified.stdout + verified.stderr
            lender.assert_trial_balance_zero()
    finally:
        server.stop()
        drop_pg_database(name)
