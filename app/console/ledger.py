"""Ledger pages (managers, auditors, admins): the trial balance of a date and the journal of a booking-date range
(CONTRACT "Ledger time": both by booking date, so a closed day prints the same figures every time; each entry
shows its value date beside it). The same services as /api/v1/ledger."""

from datetime import date, timedelta

from fastapi import APIRouter, Response

from app.business_calendar import service as calendar_service
from app.console.web import ConsoleRoute, CtxDep
from app.core.schemas import money_out
from app.identity.access import Permission
from app.ledger import service as ledger

router = APIRouter(route_class=ConsoleRoute)
PAGE = 200


def _day(value: str, default: date) -> tuple[date, str]:
    if not value:
        return default, ""
    try:
        return date.fromisoformat(value), ""
    except ValueError:
        return default, "dates are YYYY-MM-DD"


@router.get("/ledger")
def ledger_page(
    ctx: CtxDep, as_of: str = "", currency: str = "", date_from: str = "", date_to: str = "", cursor: str = ""
) -> Response:
    ctx.principal.require(Permission.ledger_read)
    today = calendar_service.business_date(ctx.db)
    on, bad_as_of = _day(as_of, today)
    end, bad_to = _day(date_to, today)
    start, bad_from = _day(date_from, end - timedelta(days=6))
    code = currency.upper() if len(currency) == 3 and currency.isalpha() else None
    tb = ledger.trial_balance(ctx.db, ctx.principal, on, code)
    error = bad_as_of or bad_to or bad_from
    if start > end:
        start, error = end, "'from' must not be after 'to'"
    found, next_cursor = ledger.entries(ctx.db, ctx.principal, None, start, end, cursor or None, PAGE)
    return ctx.render(
        "ledger.html",
        400 if error else 200,
        error=error,
        today=today,
        tb=tb,
        rows=[
            (
                r.account,
                money_out(r.debit, tb.currency),
                money_out(r.credit, tb.currency),
                money_out(r.debit - r.credit, tb.currency),
            )
            for r in tb.rows
        ],
        totals=(money_out(tb.total_debit, tb.currency), money_out(tb.total_credit, tb.currency)),
        date_from=start,
        date_to=end,
        entries=[
            (
                e,
                [
                    (ln.account_code, ln.loan_id, money_out(ln.debit, e.currency), money_out(ln.credit, e.currency))
                    for ln in lines
                ],
            )
            for e, lines in found
        ],
        next_cursor=next_cursor,
    )
