"""Between stored loan rows and the pure domain: the loan's own terms, and its events."""

from collections.abc import Callable, Sequence
from datetime import date

from app.domain.calendar import DayCount, Frequency
from app.domain.instruments import (
    Charge,
    Chargeback,
    ProductCharge,
    Waiver,
    WaiverBucket,
    disbursement_fees,
    installment_fee_rules,
)
from app.domain.modifications import modification_event
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
from app.loans.models import EventRecord, Loan
from app.products.schemas import rate_from_e6


def schedule_terms(loan: Loan, principal_minor: int, disbursement_date: date) -> ScheduleTerms:
    cur = currency(loan.currency)
    return ScheduleTerms(
        principal=from_minor(principal_minor, cur),
        annual_rate_percent=rate_from_e6(loan.annual_rate_e6),
        term=loan.term,
        frequency=Frequency(loan.frequency),
        frequency_interval=loan.frequency_interval,
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
    charges = product_charges(loan)
    deducted, capitalized = disbursement_fees(charges, loan.disbursed_principal)
    return LoanTerms(
        schedule=schedule_terms(loan, loan.disbursed_principal + capitalized, loan.disbursement_date),
        late_fee=late_fee,
        allocation_order=tuple(loan.allocation_order),
        prepayment=Prepayment(loan.prepayment),
        non_accrual_after_days=loan.non_accrual_after_days,
        interest_recalculation=InterestRecalculation(loan.interest_recalculation),
        disbursement_fees=deducted + capitalized,
        installment_fees=installment_fee_rules(charges),
    )


def product_charges(loan: Loan) -> list[ProductCharge]:
    """The charges the loan copied from its product at submission."""
    return [ProductCharge.from_json(c) for c in loan.charges or []]


FINANCIAL_EVENTS = frozenset(
    {"payment", "write_off", "refund", "charge", "waiver", "goodwill_credit", "chargeback", "modification", "tranche"}
)


def _waiver(row: EventRecord) -> Event:
    return Waiver(row.seq, row.effective_date, WaiverBucket(str((row.payload or {})["bucket"])), int(row.amount or 0))


INSTRUMENT_EVENTS: dict[str, Callable[[EventRecord], Event]] = {
    "charge": lambda row: Charge(row.seq, row.effective_date, int(row.amount or 0)),
    "waiver": _waiver,
    "goodwill_credit": lambda row: Payment(row.seq, row.effective_date, int(row.amount or 0), goodwill=True),
    "chargeback": lambda row: Chargeback(row.seq, row.effective_date, int(row.amount or 0)),
}


def domain_events(rows: Sequence[EventRecord], known_at: date | None = None) -> list[Event]:
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
        elif row.type in INSTRUMENT_EVENTS:
            events.append(INSTRUMENT_EVENTS[row.type](row))
        elif row.type in {"modification", "tranche"}:
            events.append(modification_event(row.seq, row.effective_date, (row.payload or {})["event"]))
        else:
            events.append(Refund(row.seq, row.effective_date, int(row.amount or 0)))
    return events


def _in_force(row: EventRecord, booked: dict[int, date], known_at: date | None) -> bool:
    if known_at is None:
        return row.reversed_by_seq is None
    if row.booked_on > known_at:
        return False
    return row.reversed_by_seq is None or booked.get(row.reversed_by_seq, date.max) > known_at
