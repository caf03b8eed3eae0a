"""Delinquency buckets and portfolio-at-risk thresholds by days past due, as data: the projection, close of
business and every report (current or past `as_of`) derive their rules from these tables, never restate them."""

from datetime import date

# (highest DPD in the bucket, bucket name); the last bucket is open-ended (the usual PAR aging).
BUCKET_EDGES: tuple[tuple[int | None, str], ...] = (
    (0, "current"),
    (30, "1-30"),
    (60, "31-60"),
    (90, "61-90"),
    (None, "90+"),
)
BUCKETS = tuple(name for _, name in BUCKET_EDGES)
# PAR_N = outstanding principal of loans with DPD > N ÷ all outstanding principal (CONTRACT Operations).
PAR_THRESHOLDS = (1, 30, 90)


def bucket_for(days_past_due: int) -> str:
    for highest, name in BUCKET_EDGES:
        if highest is None or days_past_due <= highest:
            return name
    raise AssertionError("the last bucket is open-ended")


def days_past_due(as_of: date, overdue_since: date | None) -> int:
    """As-of date − the oldest unpaid due date; 0 when nothing is overdue."""
    if overdue_since is None or overdue_since >= as_of:
        return 0
    return (as_of - overdue_since).days


def at_risk(days: int, threshold: int) -> bool:
    return days > threshold
