"""Schedule engine throughput: a 360-installment monthly annuity with its Reg Z APR, in-process,
against a numpy-financial pmt/ipmt/ppmt (+ rate for the APR) computation of the same schedule, and
through POST /api/v1/schedules/preview on the real app under uvicorn (http_main)."""

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx

from app.domain.apr import schedule_apr
from app.domain.calendar import Frequency
from app.domain.money import currency
from app.domain.schedule import ScheduleTerms, generate_schedule

TERMS = ScheduleTerms(
    principal=Decimal("250000.00"),
    annual_rate_percent=Decimal("6.5"),
    term=360,
    frequency=Frequency.monthly,
    disbursement_date=date(2025, 1, 31),
    currency=currency("USD"),
)


def _rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    fn()
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        fn()
        count += 1
    return count / elapsed


def engine_once() -> object:
    schedule = generate_schedule(TERMS)
    return schedule_apr(schedule)


def numpy_financial_once() -> object:
    import numpy as np
    import numpy_financial as npf

    rate, n, pv = 0.065 / 12, 360, 250000.0
    payment = round(float(npf.pmt(rate, n, -pv)), 2)
    periods = np.arange(1, n + 1)
    interest = np.round(npf.ipmt(rate, periods, n, -pv), 2)
    principal = np.round(npf.ppmt(rate, periods, n, -pv), 2)
    return payment, interest, principal, npf.rate(n, payment, -pv, 0) * 12 * 100


def main() -> None:
    engine = _rate(engine_once)
    print(f"schedule+APR (360 monthly, in-process): {engine:,.0f} schedules/s = {1000 / engine:.3f} ms/schedule")
    try:
        reference = _rate(numpy_financial_once)
    except ImportError:
        print("numpy-financial not installed: reference skipped")
    else:
        print(
            f"numpy-financial pmt/ipmt/ppmt + rate:   {reference:,.0f} schedules/s = {1000 / reference:.3f} ms/schedule"
        )
        print(f"ratio engine/numpy-financial: {engine / reference:.2f}x")
    http_main()


# --- over HTTP: the real app under uvicorn --------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PREVIEW_BODY = {
    "principal": "250000.00",
    "annual_rate_percent": "6.5",
    "term": 360,
    "frequency": "monthly",
    "disbursement_date": "2025-01-31",
}
HTTP_SECONDS = 3.0
THREADS = 4


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"app.cli {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def _server(workdir: Path) -> Iterator[tuple[str, str]]:
    """uvicorn serving app.main:app on a free port against a throwaway SQLite file; yields (base URL, token)."""
    password = secrets.token_urlsafe(18)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "ENV": "development",
        "RATE_LIMIT_PER_MINUTE": "100000000",  # the default 60/min would measure the limiter, not the endpoint
        "USER_RATE_LIMIT_PER_MINUTE": "100000000",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "SENTRY_DSN": "",
    }
    _cli(env, "init-db")
    _cli(env, "create-user", "benchadmin", "--role", "admin", "--password", password)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (workdir / "uvicorn.log").open("w")
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited with {proc.returncode}: {(workdir / 'uvicorn.log').read_text()[-500:]}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not become healthy within 30 s")
            time.sleep(0.1)
        answer = httpx.post(f"{base}/api/v1/auth/token", data={"username": "benchadmin", "password": password})
        answer.raise_for_status()
        yield base, answer.json()["access_token"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _client_loop(base: str, token: str, seconds: float) -> list[float]:
    """POST the preview back to back for `seconds`; per-request latencies in seconds."""
    latencies: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.post("/api/v1/schedules/preview", json=PREVIEW_BODY).raise_for_status()  # warm-up
        stop = time.perf_counter() + seconds
        while (started := time.perf_counter()) < stop:
            response = client.post("/api/v1/schedules/preview", json=PREVIEW_BODY)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"preview answered {response.status_code}: {response.text[:300]}")
    return latencies


def _report(label: str, latencies: list[float], elapsed: float) -> None:
    ordered = sorted(latencies)
    p50, p95 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(
        f"{label}: {len(latencies) / elapsed:,.0f} schedules/s ({len(latencies)} requests in {elapsed:.1f} s), "
        f"latency p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"
    )


def http_main() -> None:
    """POST /api/v1/schedules/preview (360-installment monthly annuity) against uvicorn, one worker:
    sequential requests from one client, then THREADS concurrent clients."""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp, _server(Path(tmp)) as (base, token):
            started = time.perf_counter()
            sequential = _client_loop(base, token, HTTP_SECONDS)
            _report("http preview, 1 client (uvicorn, 1 worker)", sequential, time.perf_counter() - started)
            with ThreadPoolExecutor(THREADS) as pool:
                started = time.perf_counter()
                futures = [pool.submit(_client_loop, base, token, HTTP_SECONDS) for _ in range(THREADS)]
                concurrent = [latency for future in futures for latency in future.result()]
            _report(f"http preview, {THREADS} clients (uvicorn, 1 worker)", concurrent, time.perf_counter() - started)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        print(f"http preview: skipped ({type(exc).__name__}: {exc})")


if __name__ == "__main__":
    main()
