"""Delinquency buckets by days past due (the usual PAR aging: current, 1-30, 31-60, 61-90, 90+)."""

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def bucket_for(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"
