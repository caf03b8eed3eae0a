"""Servicing instruments as use cases: ad-hoc charges (officer), waivers, goodwill credits and chargebacks
(manager). Each is idempotent, dry-runnable, one event in the loan's log evaluated by the projection, one
transaction in the list and one balanced journal entry — through the same write path as a payment."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.errors import ValidationFailed
from app.core.schemas import money_out
from app.database import Database
from app.domain.instruments import Instrument, WaiverBucket, check_instrument, instruments_allowed, nsf_fees
from app.domain.lifecycle import LoanStatus, actions_allowed
from app.domain.money import currency
from app.domain.servicing import Allocation, InterestRecalculation, LoanState
from app.idempotency.keys import IdempotentRequest
from app.identity.access import Permission, Principal
from app.ledger.entries import EntryDraft
from app.loans import engine
from app.loans import repository as repo
from app.loans.engine import Outcome
from app.loans.idempotent import MoneyResult, begin, run_idempotent
from app.loans.instrument_schemas import ChargebackIn, ChargeIn, CreditIn, InstrumentOut, WaiverIn
from app.loans.models import Loan, LoanTransaction
from app.loans.presenters import dry_run_out, loan_out, transaction_out
from app.loans.service import minor_amount, money_date
from app.loans.terms import product_charges

PERMISSIONS = {
    Instrument.charge: Permission.charges_write,
    Instrument.waiver: Permission.waivers_write,
    Instrument.goodwill_credit: Permission.waivers_write,
    Instrument.chargeback: Permission.waivers_write,
}


@dataclass(frozen=True)
class Booking:
    """One instrument to book: its amount, value date, what the event log and the transaction carry."""

    amount: int
    on: date
    payload: dict[str, Any]
    note: str
    description: str


# Checks that need the projection's answer (what was owed at the event's date); they raise to roll back.
Check = Callable[[Loan, Allocation], None]


def _m(units: int, loan: Loan) -> str:
    return money_out(units, loan.currency)


def _book(
    db: Database,
    principal: Principal,
    loan_id: str,
    instrument: Instrument,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
    prepare: Callable[[Session, Loan, date], tuple[Booking, Check | None]],
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = begin(session, principal, loan_id, PERMISSIONS[instrument], request, version, dry_run)
        if replay is not None:
            return replay
        status = loan.status
        allowed = actions_allowed(LoanStatus(status), loan.credit_balance) + instruments_allowed(status)
        check_instrument(status, instrument, allowed)
        today = engine.business_date(session)
        booking, check = prepare(session, loan, today)
        tx = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type=instrument.value,
            date=booking.on,
            amount=booking.amount,
            note=booking.note,
            created_by=principal.user_id,
        )
        event = engine.record_transaction(
            session, loan, principal, tx, instrument.value, booking.amount, booking.payload
        )
        state, draft = engine.reproject(
            session,
            loan,
            today,
            principal,
            instrument.value,
            booking.on,
            tx.id,
            description=booking.description,
            appended=event,
        )
        allocation = state.allocations.get(event.seq, Allocation())
        if check is not None:
            check(loan, allocation)
        tx.allocation = allocation
        audit.record(
            session,
            principal,
            f"loan.{instrument.value}",
            "loan",
            loan.id,
            status,
            loan.status,
            {
                "transaction_id": tx.id,
                "amount": _m(booking.amount, loan),
                "date": booking.on.isoformat(),
                **booking.payload,
            },
        )
        session.flush()
        return _result(loan, today, state, draft, tx, allocation, dry_run)

    return run_idempotent(db, request, run, dry_run, ttl)


def _result(
    loan: Loan,
    today: date,
    state: LoanState,
    draft: EntryDraft | None,
    tx: LoanTransaction,
    allocation: Allocation,
    dry_run: bool,
) -> MoneyResult:
    entries = [draft] if draft else []
    outcome = Outcome(loan, today, state, entries, tx, allocation)
    if dry_run:
        body = dry_run_out(loan, today, state, entries, allocation).model_dump(mode="json")
        return MoneyResult(200, body, outcome=outcome)
    item = transaction_out(tx, loan.currency)
    body = InstrumentOut(**item.model_dump(), loan=loan_out(loan, today)).model_dump(mode="json")
    return MoneyResult(201, body, outcome=outcome)


# --- the four instruments -----------------------------------------------------------------------------------


def charge(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: ChargeIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def prepare(session: Session, loan: Loan, today: date) -> tuple[Booking, Check | None]:
        amount = minor_amount(data.amount, currency(loan.currency), "amount")
        on = money_date(loan, data.due_date, today, "due_date")
        payload = {"name": data.name, "code": data.code, "due_date": on.isoformat()}
        return Booking(amount, on, payload, data.name, f"charge: {data.name}"), None

    return _book(db, principal, loan_id, Instrument.charge, request, version, dry_run, ttl, prepare)


def waive(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: WaiverIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def prepare(session: Session, loan: Loan, today: date) -> tuple[Booking, Check | None]:
        amount = minor_amount(data.amount, currency(loan.currency), "amount")
        if data.bucket == WaiverBucket.interest and loan.interest_recalculation == InterestRecalculation.daily.value:
            raise ValidationFailed.single(
                "bucket", "interest of a simple-interest loan (interest_recalculation: daily) cannot be waived"
            )
        payload = {"bucket": data.bucket.value, "reason": data.reason}
        return Booking(amount, today, payload, data.reason, f"waiver of {data.bucket.value}: {data.reason}"), check

    def check(loan: Loan, allocation: Allocation) -> None:
        waived = getattr(allocation, data.bucket.value)
        if waived < minor_amount(data.amount, currency(loan.currency), "amount"):
            owed = "interest of installments already due" if data.bucket == WaiverBucket.interest else data.bucket
            raise ValidationFailed.single("amount", f"only {_m(waived, loan)} of {owed} is owed; it cannot be exceeded")

    return _book(db, principal, loan_id, Instrument.waiver, request, version, dry_run, ttl, prepare)


def credit(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: CreditIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def prepare(session: Session, loan: Loan, today: date) -> tuple[Booking, Check | None]:
        amount = minor_amount(data.amount, currency(loan.currency), "amount")
        payload = {"reason": data.reason}
        return Booking(amount, today, payload, data.reason, f"goodwill credit: {data.reason}"), check

    def check(loan: Loan, allocation: Allocation) -> None:
        if allocation.overpayment or allocation.recovery:
            payoff = allocation.total - allocation.overpayment - allocation.recovery
            raise ValidationFailed.single(
                "amount", f"a goodwill credit may not exceed what is owed ({_m(payoff, loan)} today)"
            )

    return _book(db, principal, loan_id, Instrument.goodwill_credit, request, version, dry_run, ttl, prepare)


def chargeback(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: ChargebackIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def prepare(session: Session, loan: Loan, today: date) -> tuple[Booking, Check | None]:
        amount = minor_amount(data.amount, currency(loan.currency), "amount")
        repayment = repo.get_transaction(session, loan.id, data.transaction_id)
        if repayment is None or repayment.type != "repayment" or repayment.reversed:
            raise ValidationFailed.single("transaction_id", "must be a repayment of this loan that is not reversed")
        left = repayment.amount - charged_back(session, loan.id, repayment.id)
        if amount > left:
            raise ValidationFailed.single(
                "amount", f"more than the repayment: at most {_m(left, loan)} of it can still be charged back"
            )
        payload = {"transaction_id": repayment.id, "reason": data.reason}
        return Booking(amount, today, payload, data.reason, f"chargeback: {data.reason}"), None

    return _book(db, principal, loan_id, Instrument.chargeback, request, version, dry_run, ttl, prepare)


def book_nsf_fees(
    session: Session, loan: Loan, principal: Principal, today: date, repayment: LoanTransaction
) -> tuple[LoanState, EntryDraft | None] | None:
    """A repayment returned unpaid (reason_code "nsf"): charge the product's NSF fees on the business date,
    each a `charge` transaction of its own, in the reversal's database transaction."""
    fees = [(c, fee) for c, fee in nsf_fees(product_charges(loan), repayment.amount) if fee > 0]
    if not fees or loan.status != LoanStatus.active.value:
        return None
    result = None
    for charge_def, fee in fees:
        tx = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="charge",
            date=today,
            amount=fee,
            note=charge_def.name,
            created_by=principal.user_id,
        )
        payload = {
            "name": charge_def.name,
            "code": charge_def.code,
            "due_date": today.isoformat(),
            "nsf_of": repayment.id,
        }
        event = engine.record_transaction(session, loan, principal, tx, Instrument.charge.value, fee, payload)
        state, draft = engine.reproject(
            session,
            loan,
            today,
            principal,
            "charge",
            today,
            tx.id,
            description=f"NSF fee: {charge_def.name}",
            appended=event,
        )
        tx.allocation = state.allocations.get(event.seq, Allocation())
        result = (state, draft)
    return result


def charged_back(session: Session, loan_id: str, repayment_id: str) -> int:
    """What chargebacks still in force took back from a repayment."""
    return sum(
        int(e.amount or 0)
        for e in repo.events(session, loan_id)
        if e.type == Instrument.chargeback.value
        and e.reversed_by_seq is None
        and (e.payload or {}).get("transaction_id") == repayment_id
    )
