"""Between stored loan rows and the pure domain: the loan's own terms, and its events."""

from collections.abc import Sequence
from datetime import date

from app.domain.calendar import DayCount, Frequency
from app.domain.money import currency, from_minor
from app.domain.schedule import Amortization, InterestMethod, ScheduleTerms
from app.domain.servicing import (
    Event,
    InterestRecalculation,
    LateFeeRule,
    LoanTerms,
    Payment,
    Prepayment,
    Refund,
    WriteOff,
)
from app.loans.models import Loan, LoanEvent
from app.products.schemas import rate_from_e6


def schedule_terms(loan: Loan, principal_minor: int, disbursement_date: date) -> ScheduleTerms:
    cur = currency(loan.currency)
    return ScheduleTerms(
        principal=from_minor(principal_minor, cur),
        annual_rate_percent=rate_from_e6(loan.annual_rate_e6),
        term=loan.term,
        frequency=Frequency(loan.frequency),
        disbursement_date=disbursement_date,
        currency=cur,
        first_payment_date=loan.first_payment_date,
        amortization=Amortization(loan.amortization),
        interest_method=InterestMethod(loan.interest_method),
        day_count=DayCount(loan.day_count),
        grace_principal_periods=loan.grace_principal_periods,
    )


def loan_terms(loan: Loan) -> LoanTerms:
    if loan.disbursed_principal is None or loan.disbursement_date is None:
        raise ValueError("only a disbursed loan has servicing terms")
    late_fee = None
    if loan.late_fee_amount_minor is not None or loan.late_fee_percent_e6 is not None:
        late_fee = LateFeeRule(
            grace_days=loan.late_fee_grace_days,
            amount=loan.late_fee_amount_minor,
            percent_of_overdue=None if loan.late_fee_percent_e6 is None else rate_from_e6(loan.late_fee_percent_e6),
        )
    return LoanTerms(
        schedule=schedule_terms(loan, loan.disbursed_principal, loan.disbursement_date),
        late_fee=late_fee,
        allocation_order=tuple(loan.allocation_order),
        prepayment=Prepayment(loan.prepayment),
        non_accrual_after_days=loan.non_accrual_after_days,
        interest_recalculation=InterestRecalculation(loan.interest_recalculation),
    )


FINANCIAL_EVENTS = frozenset({"payment", "write_off", "refund"})


def domain_events(rows: Sequence[LoanEvent], known_at: date | None = None) -> list[Event]:
    """The financial events still in force (reversed ones are left out: a reversal is a recompute). With
    `known_at`, as the system knew them at the end of that business date: events booked later are left out,
    and so are reversals booked later (CONTRACT "Ledger time", `?known_at=`)."""
    booked = {row.seq: row.booked_on for row in rows} if known_at is not None else {}
    events: list[Event] = []
    for row in rows:
        if row.type not in FINANCIAL_EVENTS or not _in_force(row, booked, known_at):
            continue
        if row.type == "payment":
            recovery = bool((row.payload or {}).get("recovery"))
            events.append(Payment(row.seq, row.effective_date, int(row.amount or 0), recovery))
        elif row.type == "write_off":
            events.append(WriteOff(row.seq, row.effective_date))
        else:
            events.append(Refund(row.seq, row.effective_date, int(row.amount or 0)))
    return events


def _in_force(row: LoanEvent, booked: dict[int, date], known_at: date | None) -> bool:
    if known_at is None:
        return row.reversed_by_seq is None
    if row.booked_on > known_at:
        return False
    return row.reversed_by_seq is None or booked.get(row.reversed_by_seq, date.max) > known_at
