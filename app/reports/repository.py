"""Set-based report queries. Current figures come from the loan snapshots (DPD recomputed for the as-of date
from the oldest unpaid due date); earlier dates come from the journal by booking date and the delinquency
history (what the books said at the end of that date)."""

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.postings import AccountRole
from app.operations.cob_sql import CobSql


def _sql(session: Session) -> CobSql:
    return CobSql(session.get_bind().dialect.name == "postgresql", date_param="as_of")


def portfolio_current(session: Session, as_of: date, currency: str) -> dict[str, int]:
    sql = _sql(session)
    dpd = sql.dpd("l")
    row = session.execute(
        text(
            "SELECT COUNT(*), COALESCE(SUM(principal_outstanding), 0), COALESCE(SUM(interest_outstanding), 0), "
            f"{sql.par_sums(dpd, 'principal_outstanding')}, COALESCE(SUM(interest_suspended), 0) "
            "FROM loans l WHERE l.status = 'active' AND l.currency = :currency"
        ),
        {"as_of": as_of, "currency": currency},
    ).one()
    keys = ("active_loans", "principal", "interest", "par_1", "par_30", "par_90", "interest_in_suspense")
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


def aging_current(session: Session, as_of: date, currency: str) -> list[tuple[str, int, int]]:
    sql = _sql(session)
    bucket = sql.bucket(sql.dpd("l"))
    rows = session.execute(
        text(
            f"SELECT {bucket} AS bucket, COUNT(*), COALESCE(SUM(principal_outstanding), 0) FROM loans l "
            "WHERE l.status = 'active' AND l.currency = :currency GROUP BY 1"
        ),
        {"as_of": as_of, "currency": currency},
    ).all()
    return [(str(b), int(n), int(p)) for b, n, p in rows]


def _history_overdue_since(as_of_param: str = ":as_of") -> str:
    """The loan's oldest unpaid due date as the books knew it at the end of the as-of date (the delinquency
    history records it whenever it or the bucket changes), so a past date's DPD is the same expression as
    today's. History rows from before migration 0011 carry none: such a loan counts as current."""
    return (
        "(SELECT h.overdue_since FROM loan_delinquency_history h WHERE h.loan_id = b.loan_id "
        f"AND h.on_date <= {as_of_param} ORDER BY h.on_date DESC, h.id DESC LIMIT 1)"
    )


def _balances_at(sql: CobSql, as_of_param: str = ":as_of") -> str:
    """Per-loan principal and interest receivable (and interest in suspense) from the journal as booked by the
    end of a date, on each loan's own accounts (booking basis: a closed day's figures never change)."""
    portfolio = sql.account(AccountRole.loan_portfolio)
    receivable = sql.account(AccountRole.interest_receivable)
    suspense = sql.account(AccountRole.interest_in_suspense)
    return (
        "SELECT jl.loan_id, "
        f"SUM(CASE WHEN jl.account_code = {portfolio} THEN jl.debit - jl.credit ELSE 0 END) AS principal, "
        f"SUM(CASE WHEN jl.account_code = {receivable} THEN jl.debit - jl.credit ELSE 0 END) AS interest, "
        f"SUM(CASE WHEN jl.account_code = {suspense} THEN jl.credit - jl.debit ELSE 0 END) AS suspense "
        "FROM journal_lines jl JOIN loans l ON l.id = jl.loan_id "
        f"WHERE jl.booking_date <= {as_of_param} AND jl.currency = :currency GROUP BY jl.loan_id"
    )


def portfolio_history(session: Session, as_of: date, currency: str) -> dict[str, int]:
    sql = _sql(session)
    dpd = sql.dpd_since("t.overdue_since")
    row = session.execute(
        text(
            "SELECT COUNT(*), COALESCE(SUM(principal), 0), COALESCE(SUM(interest), 0), "
            f"{sql.par_sums(dpd, 'principal')}, COALESCE(SUM(suspense), 0) "
            f"FROM (SELECT b.loan_id, b.principal, b.interest, b.suspense, {_history_overdue_since()} AS overdue_since "
            f"FROM ({_balances_at(sql)}) b WHERE b.principal > 0) t"
        ),
        {"as_of": as_of, "currency": currency},
    ).one()
    keys = ("active_loans", "principal", "interest", "par_1", "par_30", "par_90", "interest_in_suspense")
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


def aging_history(session: Session, as_of: date, currency: str) -> list[tuple[str, int, int]]:
    sql = _sql(session)
    bucket = sql.bucket(sql.dpd_since("t.overdue_since"))
    rows = session.execute(
        text(
            f"SELECT {bucket} AS bucket, COUNT(*), COALESCE(SUM(principal), 0) FROM (SELECT b.principal, "
            f"{_history_overdue_since()} AS overdue_since FROM ({_balances_at(sql)}) b WHERE b.principal > 0) t "
            "GROUP BY 1"
        ),
        {"as_of": as_of, "currency": currency},
    ).all()
    return [(str(b), int(n), int(p)) for b, n, p in rows]


def delinquent_loans(session: Session, as_of: date, currency: str, min_dpd: int, limit: int) -> list[dict[str, Any]]:
    sql = _sql(session)
    dpd = sql.dpd("l")
    rows = session.execute(
        text(
            f"SELECT l.id, l.branch_id, l.borrower_id, b.first_name, b.last_name, {dpd} AS dpd, "
            "l.principal_outstanding, l.interest_outstanding, l.penalties_outstanding, l.oldest_unpaid_due_date "
            "FROM loans l JOIN borrowers b ON b.id = l.borrower_id "
            f"WHERE l.status = 'active' AND l.currency = :currency AND {dpd} >= :min_dpd "
            "ORDER BY dpd DESC, l.id LIMIT :limit"
        ),
        {"as_of": as_of, "currency": currency, "min_dpd": max(min_dpd, 1), "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def collections(session: Session, date_from: date, date_to: date, currency: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in session.execute(
            text(
                "SELECT t.date, COUNT(*), SUM(t.amount), SUM(t.alloc_principal), SUM(t.alloc_interest), "
                "SUM(t.alloc_fees), SUM(t.alloc_penalties), SUM(t.alloc_overpayment), SUM(t.alloc_recovery) "
                "FROM loan_transactions t JOIN loans l ON l.id = t.loan_id "
                "WHERE t.type IN ('repayment', 'recovery') AND t.reversed = :false AND l.currency = :currency "
                "AND t.date >= :date_from AND t.date <= :date_to GROUP BY t.date ORDER BY t.date"
            ),
            {"false": False, "currency": currency, "date_from": date_from, "date_to": date_to},
        )
    ]


def latest_snapshot_date(session: Session) -> date | None:
    value = session.execute(text("SELECT MIN(snapshot_date) FROM loans WHERE status = 'active'")).scalar()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
