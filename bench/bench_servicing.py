"""Servicing throughput on PostgreSQL: repayments/second through the real app (gunicorn, 2 uvicorn workers,
8 keep-alive connections posting payments on random loans, as issue 15 measures) against the same transaction
in raw SQL under pgbench (8 clients), measured in the same run; then read and backdating latency on a
long-lived weekly loan. The HTTP load comes from a raw asyncio client: like pgbench on the SQL side, it must
leave the 2 cores to what is measured.

Seeding (BENCH_LOANS, default 20000; the target book is 100000): one loan is created through the API
(submitted, approved, disbursed: loan row with its snapshot and projection checkpoint, installments, events,
the disbursement transaction, its journal entry and lines), then cloned set-based with INSERT … SELECT:
a mapping table `bench_loan_ids(n, loan_id, tx_id, entry_id)` holds fresh UUIDs per clone, and every table
with a `loan_id` column is copied from the template's rows with `loan_id`, `transaction_id`/`journal_entry_id`/
`entry_id` and text ids replaced from the mapping (serial ids take their defaults). The clones are valid
loans: the app pays them like any other (same borrower, distinct ids).

Env: BENCH_LOANS (clones), BENCH_SECONDS (load duration, default 20), BENCH_CONNECTIONS (8),
BENCH_HISTORY_PAYMENTS (payments on the long-lived loan, default 1000), TEST_PG_DSN (admin DSN), BENCH_REUSE_PORT
(default 1, as the deploy kit: one SO_REUSEPORT socket per worker; 0 for a shared socket). Prints the workers'
CPU split during the load.
Prints numbers; asserts no timings.
"""

import asyncio
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
LOANS = int(os.environ.get("BENCH_LOANS", "20000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
HISTORY_PAYMENTS = int(os.environ.get("BENCH_HISTORY_PAYMENTS", "1000"))
REUSE_PORT = os.environ.get("BENCH_REUSE_PORT", "1") != "0"
_MASTER: list[int] = []  # the running gunicorn master's pid


def _process_cpu(pid: str) -> tuple[str, float]:
    """A process's command name and the CPU seconds it has used (utime + stime), from /proc/<pid>/stat."""
    name, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)
    fields = rest.split()  # from the state on: utime and stime are the 12th and 13th
    return name.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL server process on this machine (the bench runs alone)."""
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            name, used = _process_cpu(entry.name)
        except OSError:
            continue  # the process ended meanwhile
        if name == "postgres":
            total += used
    return total


def _worker_cpu() -> dict[int, float]:
    """CPU seconds used so far by each gunicorn worker (children of the master), from /proc."""
    if not _MASTER:
        return {}
    children = Path(f"/proc/{_MASTER[0]}/task/{_MASTER[0]}/children").read_text().split()
    return {int(pid): _process_cpu(pid)[1] for pid in children}


PASSWORD = "Bench-password-" + secrets.token_hex(8)
API = "/api/v1"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _database() -> Iterator[str]:
    name = f"loans_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _gunicorn(dsn: str, workdir: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ENV": "development",
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "USER_RATE_LIMIT_PER_MINUTE": "100000000",  # one bench user posts thousands a minute
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "SENTRY_DSN": "",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prom"),
    }
    (workdir / "prom").mkdir()
    for args in (["init-db"], ["create-user", "benchadmin", "--role", "admin", "--password", PASSWORD]):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise RuntimeError(f"app.cli {args[0]}: {done.stderr or done.stdout}")
    port = _free_port()
    log = (workdir / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "app.main:app",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *(["--reuse-port"] if REUSE_PORT else []),  # as deploy/gunicorn_config.py: even dispatch
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {(workdir / 'gunicorn.log').read_text()[-500:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become healthy in 60 s")
            time.sleep(0.2)
        _MASTER.append(proc.pid)
        yield base
    finally:
        _MASTER.clear()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Api:
    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=64))
        self.headers: dict[str, str] = {}

    def login(self, username: str) -> None:
        r = self.client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Any:
        r = self.client.post(f"{API}{path}", json=body, headers={**self.headers, **headers})
        if r.status_code not in {200, 201}:
            raise RuntimeError(f"POST {path} answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def pay(self, loan_id: str, amount: str, on: date | None = None) -> httpx.Response:
        body: dict[str, Any] = {"amount": amount}
        if on is not None:
            body["date"] = on.isoformat()
        return self.client.post(
            f"{API}/loans/{loan_id}/payments", json=body, headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        )


def _setup(api: Api) -> tuple[str, str]:
    """Branch, manager, a monthly and a weekly product, one borrower; returns (borrower_id, branch_id)."""
    api.login("benchadmin")
    branch = api.post("/branches", {"code": "BENCH", "name": "Bench"})["id"]
    api.post("/users", {"username": "benchmanager", "password": PASSWORD, "role": "manager", "branch_id": branch})
    common = {
        "currency": "USD",
        "min_principal": "100.00",
        "max_principal": "1000000.00",
        "interest_method": "declining_balance",
        "amortization": "equal_installments",
        "day_count": "30/360",
    }
    api.post(
        "/products",
        {
            "code": "BM",
            "name": "Monthly",
            "min_term": 12,
            "max_term": 12,
            "annual_rate_percent": "12",
            "frequency": "monthly",
            **common,
        },
    )
    api.post(
        "/products",
        {
            "code": "BW",
            "name": "Weekly",
            "min_term": 520,
            "max_term": 520,
            "annual_rate_percent": "10",
            "frequency": "weekly",
            **common,
        },
    )
    api.login("benchmanager")
    borrower = api.post("/borrowers", {"branch_id": branch, "first_name": "Bench", "last_name": "Borrower"})["id"]
    return borrower, branch


def _product_id(api: Api, code: str) -> str:
    items = api.client.get(f"{API}/products", headers=api.headers, params={"limit": 500}).json()["items"]
    return str(next(p["id"] for p in items if p["code"] == code))


def _loan(api: Api, borrower: str, product: str, principal: str) -> str:
    loan_id = str(api.post("/loans", {"borrower_id": borrower, "product_id": product, "principal": principal})["id"])
    api.post(f"/loans/{loan_id}/approve", {})
    api.post(f"/loans/{loan_id}/disburse", {})
    return loan_id


# --- set-based cloning ---------------------------------------------------------------------------------------


def _columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool]]:
    rows = conn.execute(
        "SELECT column_name, data_type, column_default IS NOT NULL OR is_identity = 'YES' "
        "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


def _clone(conn: psycopg.Connection[Any], table: str, key: str, template: str, ids: dict[str, str]) -> int:
    """INSERT … SELECT one copy of the template's rows of `table` per mapping row, ids swapped."""
    names, exprs = [], []
    for column, data_type, has_default in _columns(conn, table):
        if column in ids:
            expr = ids[column]
        elif column == "id" and data_type in {"bigint", "integer"} and has_default:
            continue  # serial: its own default
        elif column == "id":
            expr = "gen_random_uuid()::text"
        else:
            expr = f't."{column}"'
        names.append(f'"{column}"')
        exprs.append(expr)
    sql = (
        f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(exprs)} '
        f'FROM bench_loan_ids m CROSS JOIN "{table}" t WHERE t."{key}" = %s'
    )
    return conn.execute(sql, (template,)).rowcount


def _seed(dsn: str, template: str, count: int) -> list[str]:
    with psycopg.connect(dsn, autocommit=False) as conn:
        tx_count = conn.execute("SELECT count(*) FROM loan_transactions WHERE loan_id = %s", (template,)).fetchone()
        entry_count = conn.execute("SELECT count(*) FROM journal_entries WHERE loan_id = %s", (template,)).fetchone()
        assert tx_count == (1,) and entry_count == (1,), "the template is a freshly disbursed loan"
        conn.execute(
            "CREATE TABLE bench_loan_ids (n int PRIMARY KEY, loan_id text NOT NULL, tx_id text NOT NULL, "
            "entry_id text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO bench_loan_ids SELECT g, gen_random_uuid()::text, gen_random_uuid()::text, "
            "gen_random_uuid()::text FROM generate_series(1, %s) g",
            (count,),
        )
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT c.table_name FROM information_schema.columns c JOIN information_schema.tables t "
                "ON t.table_name = c.table_name AND t.table_schema = c.table_schema "
                "WHERE c.table_schema = 'public' AND c.column_name = 'loan_id' AND t.table_type = 'BASE TABLE' "
                "AND c.table_name NOT IN ('journal_lines', 'bench_loan_ids') "
                "AND c.table_name NOT IN (SELECT inhrelid::regclass::text FROM pg_inherits)"
            ).fetchall()
        ]
        swap = {"loan_id": "m.loan_id", "transaction_id": "m.tx_id", "journal_entry_id": "m.entry_id"}
        clone_no = "'CLONE-' || lpad(m.n::text, 7, '0')"  # account numbers are unique
        _clone(conn, "loans", "id", template, {**swap, "id": "m.loan_id", "external_id": "NULL", "account_no": clone_no})
        _clone(conn, "journal_entries", "loan_id", template, {**swap, "id": "m.entry_id"})
        _clone(conn, "loan_transactions", "loan_id", template, {**swap, "id": "m.tx_id", "external_id": "NULL"})
        for table in tables:
            if table not in {"journal_entries", "loan_transactions"}:
                _clone(conn, table, "loan_id", template, swap)
        _clone(conn, "journal_lines", "loan_id", template, {**swap, "entry_id": "m.entry_id"})
        conn.commit()
        conn.execute("ANALYZE")
        return [str(r[0]) for r in conn.execute("SELECT loan_id FROM bench_loan_ids ORDER BY n").fetchall()]


# --- load ------------------------------------------------------------------------------------------------------


def _load(api: Api, loan_ids: list[str], seconds: float, connections: int) -> tuple[int, int, float, list[float]]:
    """`connections` keep-alive HTTP/1.1 connections posting 1.00 payments on random loans for `seconds`.

    The load generator shares the 2 cores with the app and PostgreSQL, so it must cost little, as pgbench (C)
    does on the SQL side: a raw asyncio client in one thread, not httpx in Python threads (a full HTTP client
    per request, CPU the app's workers then lack). It sends exactly what `Api.pay` sends."""
    url = urlsplit(str(api.client.base_url))
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (
        f"Host: {host}:{port}\r\nAuthorization: {api.headers['Authorization']}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    )
    body = b'{"amount":"1.00"}'

    async def connection(seed: int, stop: float) -> tuple[int, int, list[float], dict[int, int]]:
        rnd = random.Random(seed)
        ok = failed = 0
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        reader, writer = await asyncio.open_connection(host, port)
        while (started := time.perf_counter()) < stop:
            request = (
                f"POST {API}/loans/{rnd.choice(loan_ids)}/payments HTTP/1.1\r\n{head}"
                f"Idempotency-Key: {uuid.uuid4().hex}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(request.encode() + body)
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in {b"\r\n", b""}:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and b"close" in value.lower():
                    close = True
                elif name == b"transfer-encoding":
                    raise RuntimeError("the load client reads Content-Length bodies only")
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status == 201:
                ok += 1
            else:
                failed += 1
                statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()
        return ok, failed, latencies, statuses

    async def run() -> list[tuple[int, int, list[float], dict[int, int]]]:
        stop = time.perf_counter() + seconds
        return await asyncio.gather(*(connection(seed, stop) for seed in range(connections)))

    started = time.perf_counter()
    results = asyncio.run(run())
    elapsed = time.perf_counter() - started
    for seed, (_, _, _, statuses) in enumerate(results):
        if statuses:
            print(f"  connection {seed}: failures by status {statuses}")
    return (sum(r[0] for r in results), sum(r[1] for r in results), elapsed, [x for r in results for x in r[2]])


PGBENCH_SCRIPT = """\\set n random(1, {count})
BEGIN;
SELECT business_date FROM business_calendar WHERE id = 1 FOR SHARE;
SELECT id, version FROM loans WHERE id = (SELECT loan_id FROM bench_loan_ids WHERE n = :n) FOR UPDATE;
UPDATE loans SET principal_outstanding = principal_outstanding - 100, version = version + 1 WHERE id = (SELECT loan_id FROM bench_loan_ids WHERE n = :n);
INSERT INTO loan_transactions (id, loan_id, event_seq, type, date, amount, alloc_principal, alloc_interest, alloc_fees, alloc_penalties, alloc_overpayment, alloc_recovery, reversed, created_at) VALUES (gen_random_uuid()::text, (SELECT loan_id FROM bench_loan_ids WHERE n = :n), 0, 'repayment', CURRENT_DATE, 100, 100, 0, 0, 0, 0, 0, false, now());
INSERT INTO journal_entries (id, entry_type, currency, effective_date, booking_date, posted_at, loan_id, description) VALUES (gen_random_uuid()::text, 'repayment', 'USD', (SELECT business_date FROM business_calendar WHERE id = 1), (SELECT business_date FROM business_calendar WHERE id = 1), now(), (SELECT loan_id FROM bench_loan_ids WHERE n = :n), 'pgbench') RETURNING id \\gset e_
INSERT INTO journal_lines (entry_id, account_code, loan_id, currency, effective_date, booking_date, debit, credit) VALUES (':e_id', '1000', (SELECT loan_id FROM bench_loan_ids WHERE n = :n), 'USD', (SELECT business_date FROM business_calendar WHERE id = 1), (SELECT business_date FROM business_calendar WHERE id = 1), 100, 0), (':e_id', '1100', (SELECT loan_id FROM bench_loan_ids WHERE n = :n), 'USD', (SELECT business_date FROM business_calendar WHERE id = 1), (SELECT business_date FROM business_calendar WHERE id = 1), 0, 100);
INSERT INTO loan_account_balances (loan_id, account_code, balance) VALUES ((SELECT loan_id FROM bench_loan_ids WHERE n = :n), '1100', -100) ON CONFLICT (loan_id, account_code) DO UPDATE SET balance = loan_account_balances.balance + excluded.balance;
INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, response_body, created_at, expires_at) VALUES ('pgbench', gen_random_uuid()::text, 'h', 201, '{{}}', now(), now() + interval '1 day');
COMMIT;
"""


def _pgbench(dsn: str, count: int, seconds: float, clients: int, workdir: Path) -> float | None:
    binary = shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if binary is None:
        print("pgbench: not installed (apt-get install postgresql-client), raw-SQL ceiling skipped")
        return None
    script = workdir / "repayment.sql"
    script.write_text(PGBENCH_SCRIPT.format(count=count))
    done = subprocess.run(
        [binary, "-n", "-f", str(script), "-c", str(clients), "-j", "2", "-T", str(int(seconds)), dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        print(f"pgbench failed: {done.stderr.strip()[-500:]}")
        return None
    for line in done.stdout.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    print(f"pgbench: no tps in output: {done.stdout[-300:]}")
    return None


# --- latency on a long-lived loan -------------------------------------------------------------------------------


def _set_business_date(conn: psycopg.Connection[Any], day: date) -> None:
    conn.execute("UPDATE business_calendar SET business_date = %s WHERE id = 1", (day,))


def _p50(fn: Callable[[int], Any], samples: int = 50) -> float:
    times = []
    for i in range(samples):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _history(api: Api, dsn: str, borrower: str) -> None:
    weekly = _product_id(api, "BW")
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT business_date FROM business_calendar WHERE id = 1").fetchone()
    assert row is not None
    start: date = row[0]
    loan_id = _loan(api, borrower, weekly, "100000.00")
    started = time.perf_counter()
    today = start
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, HISTORY_PAYMENTS + 1):
            today = start + timedelta(days=3 * i)
            _set_business_date(conn, today)
            on = today - timedelta(days=30) if i % 20 == 0 else None  # every 20th is backdated by a month
            r = api.pay(loan_id, "130.00", on)
            if r.status_code != 201:
                raise RuntimeError(f"history payment {i} answered {r.status_code}: {r.text[:300]}")
    elapsed = time.perf_counter() - started
    print(
        f"history: {HISTORY_PAYMENTS} payments (5% backdated) on a 520-week loan in {elapsed:.1f} s "
        f"({HISTORY_PAYMENTS / elapsed:.0f}/s sequential, growing history)"
    )
    get = _p50(lambda _: api.client.get(f"{API}/loans/{loan_id}", headers=api.headers).raise_for_status())
    schedule = _p50(lambda _: api.client.get(f"{API}/loans/{loan_id}/schedule", headers=api.headers).raise_for_status())
    as_of = _p50(
        lambda i: api.client.get(
            f"{API}/loans/{loan_id}",
            headers=api.headers,
            params={"as_of": max(start, today - timedelta(days=7 * i)).isoformat()},
        ).raise_for_status()
    )

    def backdated(i: int) -> None:
        r = api.pay(loan_id, "1.00", max(start + timedelta(days=1), today - timedelta(days=10 + 5 * i)))
        if r.status_code != 201:
            raise RuntimeError(f"backdated payment answered {r.status_code}: {r.text[:300]}")

    back = _p50(backdated)
    current = _p50(lambda _: api.pay(loan_id, "1.00").raise_for_status())
    fresh = _loan(api, borrower, _product_id(api, "BM"), "5000.00")  # disbursed today: no history
    fresh_weekly = _loan(api, borrower, weekly, "100000.00")
    new_monthly = _p50(lambda _: api.pay(fresh, "1.00").raise_for_status())
    new_weekly = _p50(lambda _: api.pay(fresh_weekly, "1.00").raise_for_status())
    print(
        f"reference, p50 of 50 current-dated payments: new 12-month loan {new_monthly:.1f} ms, "
        f"new 520-week loan {new_weekly:.1f} ms"
    )
    print(
        f"520-week loan with {HISTORY_PAYMENTS} payments, p50 of 50: GET /loans/{{id}} {get:.1f} ms, "
        f"GET /schedule {schedule:.1f} ms, GET ?as_of= {as_of:.1f} ms, backdated payment {back:.1f} ms, "
        f"current-dated payment {current:.1f} ms"
    )


def main() -> None:
    try:
        with psycopg.connect(ADMIN_DSN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        print(f"bench_servicing: PostgreSQL unreachable at {ADMIN_DSN}, skipped ({exc})")
        return
    with (
        tempfile.TemporaryDirectory(prefix="bench-servicing-") as tmp,
        _database() as dsn,
        _gunicorn(dsn, Path(tmp)) as base,
    ):
        api = Api(base)
        borrower, _branch = _setup(api)
        template = _loan(api, borrower, _product_id(api, "BM"), "5000.00")
        started = time.perf_counter()
        loan_ids = [template, *_seed(dsn, template, LOANS)]
        print(f"seeded {LOANS:,} cloned active loans in {time.perf_counter() - started:.1f} s (BENCH_LOANS)")
        check = api.pay(random.choice(loan_ids), "1.00")
        if check.status_code != 201:
            raise RuntimeError(f"a payment on a cloned loan answered {check.status_code}: {check.text[:300]}")
        cpu_before, pg_before = _worker_cpu(), _postgres_cpu()
        ok, failed, elapsed, latencies = _load(api, loan_ids, SECONDS, CONNECTIONS)
        cpu_after, pg_spent = _worker_cpu(), _postgres_cpu() - pg_before
        spent = {pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after}
        total_cpu = sum(spent.values()) or 1.0
        split = " / ".join(f"{100 * v / total_cpu:.0f}%" for v in sorted(spent.values(), reverse=True))
        print(
            f"worker CPU during the load: {split} of {total_cpu:.1f} s over {len(spent)} workers "
            f"(reuse_port {'on' if REUSE_PORT else 'off'}); per payment {1000 * total_cpu / max(ok, 1):.1f} ms of "
            f"worker CPU + {1000 * pg_spent / max(ok, 1):.1f} ms of PostgreSQL CPU (target: at most 12 ms together)"
        )
        ordered = sorted(latencies)
        app_rate = ok / elapsed
        print(
            f"app: {app_rate:,.0f} repayments/s ({ok} ok, {failed} failed in {elapsed:.1f} s; {CONNECTIONS} keep-alive connections "
            f"from a raw asyncio client, gunicorn 2 uvicorn workers), latency p50 {ordered[len(ordered) // 2] * 1000:.1f} ms, "
            f"p95 {ordered[int(len(ordered) * 0.95)] * 1000:.1f} ms"
        )
        tps = _pgbench(dsn, LOANS, SECONDS, CONNECTIONS, Path(tmp))
        if tps is not None:
            print(f"pgbench raw SQL (date FOR SHARE, lock, update, 5 inserts, balance upsert): {tps:,.0f} repayments/s ({CONNECTIONS} clients, -j 2)")
            print(f"ratio app/raw SQL: {app_rate / tps:.3f} ({tps / app_rate:.1f}x headroom below the SQL ceiling)")
        _history(api, dsn, borrower)


if __name__ == "__main__":
    main()
