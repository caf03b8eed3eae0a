"""Portfolio reports: PAR, aging, delinquent loans, daily collections (read replica when configured)."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from app.business_calendar import repository as calendar_repo
from app.core.errors import ValidationFailed
from app.database import Database
from app.domain.delinquency import BUCKETS
from app.identity.access import Permission, Principal
from app.reports import repository as repo
from app.reports import value_basis

PAR_PLACES = Decimal("0.0001")
# CONTRACT "Ledger time": reports go by booking date (what the books said at the end of the date); `value`
# recomputes the history from the event log as now known.
BOOKING, VALUE = "booking", "value"


def par(part: int, whole: int) -> str:
    """PAR as a fraction with 4 decimals (CONTRACT: "0.0125"), half-up."""
    if whole == 0:
        return "0.0000"
    return str((Decimal(part) / Decimal(whole)).quantize(PAR_PLACES, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Portfolio:
    as_of: date
    currency: str
    active_loans: int
    principal: int
    interest: int
    par_1: str
    par_30: str
    par_90: str
    source: str
    interest_in_suspense: int = 0


def _as_of(session: Any, requested: date | None) -> tuple[date, bool]:
    """The as-of date and whether the loan snapshots can answer it: only for the business date itself — a closed
    day is read from the journal by booking date, because today's bookings (a backdated payment, a reversal)
    already moved the snapshots and a closed day's figures never change (CONTRACT "Ledger time")."""
    today = calendar_repo.business_date(session)
    on = requested or today
    if on > today:
        raise ValidationFailed.single("as_of", f"must not be after the business date {today.isoformat()}")
    return on, on >= today


def portfolio(db: Database, principal: Principal, as_of: date | None, currency: str, basis: str = BOOKING) -> Portfolio:
    principal.require(Permission.reports_read)
    with db.session(writer=False) as session:
        on, current = _as_of(session, as_of)
        if basis == VALUE:
            figures, source = value_basis.portfolio(session, on, currency), "recomputed"
        else:
            figures = (repo.portfolio_current if current else repo.portfolio_history)(session, on, currency)
            source = "snapshot" if current else "journal"
    whole = figures["principal"]
    return Portfolio(
        on,
        currency,
        figures["active_loans"],
        whole,
        figures["interest"],
        par(figures["par_1"], whole),
        par(figures["par_30"], whole),
        par(figures["par_90"], whole),
        source,
        figures["interest_in_suspense"],
    )


def aging(
    db: Database, principal: Principal, as_of: date | None, currency: str, basis: str = BOOKING
) -> tuple[date, list[tuple[str, int, int]]]:
    principal.require(Permission.reports_read)
    with db.session(writer=False) as session:
        on, current = _as_of(session, as_of)
        if basis == VALUE:
            rows = value_basis.aging(session, on, currency)
        else:
            rows = (repo.aging_current if current else repo.aging_history)(session, on, currency)
    found = {b: (n, p) for b, n, p in rows}
    return on, [(b, *found.get(b, (0, 0))) for b in BUCKETS]


def delinquent(
    db: Database, principal: Principal, as_of: date | None, currency: str, min_dpd: int, limit: int
) -> tuple[date, list[dict[str, Any]]]:
    principal.require(Permission.reports_read)
    with db.session(writer=False) as session:
        on, _current = _as_of(session, as_of)
        return on, repo.delinquent_loans(session, on, currency, min_dpd, limit)


def collections(
    db: Database, principal: Principal, date_from: date | None, date_to: date | None, currency: str
) -> tuple[date, date, list[tuple[Any, ...]]]:
    principal.require(Permission.reports_read)
    with db.session(writer=False) as session:
        today = calendar_repo.business_date(session)
        end = date_to or today
        start = date_from or end - timedelta(days=30)
        if start > end:
            raise ValidationFailed.single("from", "must not be after 'to'")
        if (end - start).days > 3660:
            raise ValidationFailed.single("from", "the range may span at most ten years")
        return start, end, repo.collections(session, start, end, currency)
