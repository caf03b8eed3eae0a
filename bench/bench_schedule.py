"""Schedule engine throughput: a 360-installment monthly annuity with its Reg Z APR, in-process,
against a numpy-financial pmt/ipmt/ppmt (+ rate for the APR) computation of the same schedule."""

import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

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
        return
    print(f"numpy-financial pmt/ipmt/ppmt + rate:   {reference:,.0f} schedules/s = {1000 / reference:.3f} ms/schedule")
    print(f"ratio engine/numpy-financial: {engine / reference:.2f}x")
    http_main()


def http_main() -> None:
    """Preview endpoint throughput through TestClient, when app.main and the endpoint exist (else skipped)."""
    try:
        from fastapi.testclient import TestClient

        from app.main import create_app
    except Exception as exc:
        print(f"http preview: skipped ({type(exc).__name__})")
        return
    body = {
        "principal": "250000.00",
        "annual_rate_percent": "6.5",
        "term": 360,
        "frequency": "monthly",
        "disbursement_date": "2025-01-31",
    }
    try:
        with TestClient(create_app()) as client:
            first = client.post("/api/v1/schedules/preview", json=body)
            if first.status_code != 200:
                print(f"http preview: skipped (status {first.status_code}; needs the endpoint and/or a token)")
                return
            rate = _rate(lambda: client.post("/api/v1/schedules/preview", json=body))
    except Exception as exc:
        print(f"http preview: skipped ({type(exc).__name__}: {exc})")
        return
    print(f"http preview (TestClient): {rate:,.0f} requests/s = {1000 / rate:.3f} ms/request")


if __name__ == "__main__":
    main()
