"""Events out and money in bulk, through the real services on a throwaway database (PostgreSQL by default,
BENCH_EVENTS_LEG=sqlite for the embedded one), with a real local HTTP receiver verifying every signature:

1. webhook deliveries per second: BENCH_EVENT_LOANS loans × BENCH_EVENTS_PER_LOAN events queued, then the
   worker delivers them all (per-loan order kept, WORKER_CONCURRENCY parallel loans);
2. outbox lag while payments are posted at BENCH_LAG_RATE/s (default 50; BENCH_LAG_THREADS=4 threads calling the
   payment service) for BENCH_LAG_SECONDS with the worker running: event timestamp (commit) → receipt at the
   endpoint, p50 / p95 / max;
3. CSV batch rows posted per second (BENCH_CSV_ROWS rows over 20 loans), and the implied time for 10,000 rows.

Prints numbers; asserts no timings.
"""

import os
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal

os.environ.setdefault("TEST_DATABASE", os.environ.get("BENCH_EVENTS_LEG", "postgresql"))

from app.events.worker import Worker, run_until_idle
from app.identity.access import Principal, Role
from app.loans import servicing
from app.loans.schemas import PaymentIn
from tests.api.helpers_lending import active_loan, pay
from tests.api.test_webhooks import worker_settings
from tests.api.webhook_receiver import Receiver
from tests.conftest import fresh_world

LOANS = int(os.environ.get("BENCH_EVENT_LOANS", "40"))
PER_LOAN = int(os.environ.get("BENCH_EVENTS_PER_LOAN", "25"))
LAG_RATE = float(os.environ.get("BENCH_LAG_RATE", "50"))
LAG_SECONDS = float(os.environ.get("BENCH_LAG_SECONDS", "10"))
LAG_THREADS = int(os.environ.get("BENCH_LAG_THREADS", "4"))
CSV_ROWS = int(os.environ.get("BENCH_CSV_ROWS", "2000"))


def main() -> None:
    leg = os.environ["TEST_DATABASE"]
    with fresh_world() as (w, db), Receiver() as receiver:
        hook = w.post("admin", "/api/v1/webhooks", {"url": receiver.url, "events": ["*"]}).json()
        receiver.secret = hook["secret"]
        settings = worker_settings(db, worker_concurrency=8, webhook_timeout_seconds=5, webhook_lease_seconds=30)

        loans = [active_loan(w, principal="9000.00", term=24)["id"] for _ in range(LOANS)]
        for loan_id in loans:
            for _ in range(PER_LOAN - 3):
                pay(w, loan_id, "1.00")
        total = LOANS * PER_LOAN
        started = time.perf_counter()
        run_until_idle(db, settings, timeout=600)
        elapsed = time.perf_counter() - started
        assert len(receiver.accepted()) >= total and receiver.bad_signatures == 0
        print(f"[{leg}] webhooks: {total} events of {LOANS} loans delivered in {elapsed:.2f} s "
              f"= {total / elapsed:.0f} events/s (8 parallel loans, signatures verified by the receiver)")

        receiver.received.clear()
        worker = Worker(db, settings)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        manager = Principal(w.users["manager"], "bench-manager", Role.manager, w.branches["A"])
        ttl = timedelta(hours=48)
        t0 = time.perf_counter()
        counter = iter(range(10**9))
        lock = threading.Lock()

        def load() -> int:
            """Payments through the service (no HTTP: the outbox is what is measured), paced to LAG_RATE."""
            done = 0
            while (now := time.perf_counter() - t0) < LAG_SECONDS:
                with lock:
                    n = next(counter)
                wait = n / LAG_RATE - now
                if wait > 0:
                    time.sleep(wait)
                servicing.record_payment(db, manager, loans[n % LOANS], PaymentIn(amount=Decimal("1.00")), None,
                                         None, False, ttl)
                done += 1
            return done

        with ThreadPoolExecutor(LAG_THREADS) as pool:
            posted = sum(pool.map(lambda _: load(), range(LAG_THREADS)))
        achieved = posted / (time.perf_counter() - t0)
        deadline = time.monotonic() + 60
        while len(receiver.accepted()) < posted and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop.set()
        thread.join(30)
        lags = sorted(
            r.at - datetime.fromisoformat(r.body["timestamp"].replace("Z", "+00:00")).timestamp()
            for r in receiver.accepted()
        )
        if lags:
            p95 = lags[int(len(lags) * 0.95) - 1]
            print(f"[{leg}] outbox lag at {achieved:.0f} payments/s posted (target {LAG_RATE:.0f}/s, "
                  f"{len(lags)} events): p50 {statistics.median(lags) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                  f"max {lags[-1] * 1000:.0f} ms")

        w.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=w.h("admin"))
        csv_loans = [active_loan(w, principal="9000.00", term=24)["id"] for _ in range(20)]
        run_id = uuid.uuid4().hex[:6]
        text = "loan_id,amount,date,external_id\n" + "".join(
            f"{csv_loans[n % 20]},1.00,,B{run_id}-{n}\n" for n in range(CSV_ROWS)
        )
        r = w.client.post("/api/v1/payment-batches", content=text.encode(),
                          headers=w.h("manager", **{"Content-Type": "text/csv"}))
        started = time.perf_counter()
        run_until_idle(db, worker_settings(db, payment_batch_chunk_rows=500, worker_concurrency=4), timeout=1800)
        elapsed = time.perf_counter() - started
        got = w.get("manager", f"/api/v1/payment-batches/{r.json()['id']}", params={"limit": "1"}).json()
        rate = got["succeeded"] / elapsed
        print(f"[{leg}] CSV batch: {got['succeeded']}/{CSV_ROWS} rows posted in {elapsed:.1f} s = {rate:.0f} rows/s "
              f"(10,000 rows ≈ {10_000 / rate:.0f} s)")


if __name__ == "__main__":
    main()
