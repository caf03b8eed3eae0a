"""Prometheus metrics. Labels use the route template (`/api/v1/loans/{loan_id}`), never the raw path, so
cardinality stays bounded. With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus-client
multiprocess mode) so /metrics aggregates all workers."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PAYMENTS_POSTED = Counter("loan_payments_posted_total", "Repayments posted")
LOANS_DISBURSED = Counter("loans_disbursed_total", "Loans disbursed")
JOURNAL_ENTRIES_POSTED = Counter("journal_entries_posted_total", "Journal entries posted")
COB_DURATION = Histogram(
    "close_of_business_duration_seconds",
    "Duration of one close-of-business day",
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600),
)
COB_LOANS = Counter("close_of_business_loans_processed_total", "Loans processed by close of business")
COB_LATE_FEES = Counter("close_of_business_late_fees_charged_total", "Late fees charged by close of business")
# Amounts per currency in minor units (cents, yen, fils): never added across currencies.
COB_INTEREST_ACCRUED = Counter(
    "close_of_business_interest_accrued_minor_total", "Interest accrued by close of business", ["currency"]
)
COB_LATE_FEE_AMOUNT = Counter(
    "close_of_business_late_fees_minor_total", "Late fees charged by close of business", ["currency"]
)
LEDGER_LOANS_OUT_OF_BALANCE = Gauge(
    "ledger_loans_out_of_balance",
    "Loans whose journal lines differ from their balances (verify-ledger's per-loan check, after close of business)",
    multiprocess_mode="max",
)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
