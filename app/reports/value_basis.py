"""Reports on the value basis (`?basis=value`, CONTRACT "Ledger time"): the portfolio at the end of a date as the
event log now tells it — every loan re-projected to that date, so a backdated payment or a reversal entered
later moves the figures of the days it reaches back to. (The default booking basis reads what the books said
at the end of the date and never changes once the day is closed.) One projection per loan: meant for analysis,
not for the nightly run over a million loans."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.delinquency import bucket_for
from app.domain.lifecycle import MONEY_STATUSES, LoanStatus
from app.domain.servicing import project
from app.loans.models import Loan, LoanEvent
from app.loans.terms import domain_events, loan_terms

BATCH = 500
MONEY_STATUS_VALUES = tuple(status.value for status in MONEY_STATUSES)


@dataclass(frozen=True)
class LoanAtDate:
    principal: int
    interest: int
    days_past_due: int
    interest_in_suspense: int


def loans_at(session: Session, as_of: date, currency: str) -> Iterator[LoanAtDate]:
    """Every loan of the currency that was active at the end of `as_of`, re-projected from its event log."""
    after = ""
    while True:
        loans = session.scalars(
            select(Loan)
            .where(
                Loan.currency == currency,
                Loan.status.in_(MONEY_STATUS_VALUES),
                Loan.disbursement_date <= as_of,
                Loan.id > after,
            )
            .order_by(Loan.id)
            .limit(BATCH)
        ).all()
        if not loans:
            return
        events: dict[str, list[LoanEvent]] = {loan.id: [] for loan in loans}
        for row in session.scalars(
            select(LoanEvent).where(LoanEvent.loan_id.in_(list(events))).order_by(LoanEvent.loan_id, LoanEvent.seq)
        ):
            events[row.loan_id].append(row)
        for loan in loans:
            state = project(loan_terms(loan), domain_events(events[loan.id]), as_of)
            if state.status == LoanStatus.active:
                yield LoanAtDate(
                    state.principal_outstanding,
                    state.interest_outstanding,
                    state.days_past_due,
                    state.interest_in_suspense,
                )
        after = loans[-1].id


def portfolio(session: Session, as_of: date, currency: str) -> dict[str, int]:
    keys = ("active_loans", "principal", "interest", "par_1", "par_30", "par_90", "interest_in_suspense")
    figures = dict.fromkeys(keys, 0)
    for loan in loans_at(session, as_of, currency):
        figures["active_loans"] += 1
        figures["principal"] += loan.principal
        figures["interest"] += loan.interest
        figures["interest_in_suspense"] += loan.interest_in_suspense
        for days in (1, 30, 90):
            if loan.days_past_due > days:
                figures[f"par_{days}"] += loan.principal
    return figures


def aging(session: Session, as_of: date, currency: str) -> list[tuple[str, int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for loan in loans_at(session, as_of, currency):
        count, principal = found.get(bucket_for(loan.days_past_due), (0, 0))
        found[bucket_for(loan.days_past_due)] = (count + 1, principal + loan.principal)
    return [(bucket, count, principal) for bucket, (count, principal) in found.items()]
