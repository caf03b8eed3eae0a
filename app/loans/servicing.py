"""Servicing use cases: repayments (idempotent), reversal, write-off, refund; payoff quotes and history."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditRecord
from app.core.errors import AppError, Conflict, DuplicateValue, NotFound, ValidationFailed
from app.core.metrics import PAYMENTS_POSTED
from app.core.schemas import money_out
from app.database import Database
from app.domain.errors import DomainError, InvalidTransition
from app.domain.lifecycle import (
    MONEY_STATUSES,
    LoanAction,
    LoanStatus,
    actions_allowed,
    refund_allowed,
)
from app.domain.money import currency
from app.domain.servicing import Allocation, LoanState
from app.idempotency.keys import IdempotentRequest
from app.identity.access import Permission, Principal
from app.ledger import repository as ledger_repo
from app.ledger.models import JournalEntry, JournalLine
from app.loans import engine
from app.loans import repository as repo
from app.loans.engine import Outcome, unit_of_work
from app.loans.idempotent import MoneyResult, action_result, begin, run_idempotent
from app.loans.instrument_schemas import ReverseIn
from app.loans.instruments import book_nsf_fees, charged_back
from app.loans.models import Loan, LoanTransaction
from app.loans.presenters import allocation_out, dry_run_out
from app.loans.schemas import PaymentIn, PaymentOut, RefundIn, WriteOffIn
from app.loans.service import minor_amount, money_date, project_loan

REVERSIBLE = frozenset(
    {"repayment", "recovery", "refund", "write_off", "charge", "waiver", "goodwill_credit", "chargeback"}
)


def record_payment(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: PaymentIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = begin(session, principal, loan_id, Permission.payments_write, request, version, dry_run)
        if replay is not None:
            return replay
        return _pay(session, principal, loan, data, dry_run)

    result = run_idempotent(db, request, run, dry_run, ttl)
    if result.status == 201 and not result.replayed:
        PAYMENTS_POSTED.inc()
    return result


def record_payments(
    db: Database, principal: Principal, loan_id: str, payments: Sequence[PaymentIn]
) -> list[str] | None:
    """Several payments on one loan in one transaction, in order (a payment batch's rows of that loan): one
    lock and one commit for all of them. Each is the same event, transaction and journal entry as a single
    POST /payments. Their external_ids must be new (the caller checked; a concurrent use still fails on the
    unique index). Answers the transaction ids, or None if any payment fails: then nothing is written and the
    caller posts them one at a time to learn which one failed and why."""
    try:
        with unit_of_work(db, dry_run=False) as session:
            loan = engine.load_for_write(session, principal, loan_id, Permission.payments_write, None)
            posted = [
                str(_pay(session, principal, loan, data, False, external_id_checked=True).body["transaction_id"])
                for data in payments
            ]
    except (AppError, DomainError, IntegrityError):
        return None
    PAYMENTS_POSTED.inc(len(posted))
    return posted


def _pay(
    session: Session,
    principal: Principal,
    loan: Loan,
    data: PaymentIn,
    dry_run: bool,
    external_id_checked: bool = False,
) -> MoneyResult:
    """A repayment on the locked loan, in the caller's unit of work."""
    engine.check_action(loan, LoanAction.repay)
    amount = minor_amount(data.amount, currency(loan.currency), "amount")
    today = engine.business_date(session)
    on = money_date(loan, data.date, today)
    if (
        data.external_id is not None
        and not external_id_checked
        and (dup := repo.transaction_by_external_id(session, data.external_id))
    ):
        owner = session.get(Loan, dup.loan_id)
        shown = dup.id if owner is not None and principal.can_see_branch(owner.branch_id) else None
        raise DuplicateValue("external_id", shown, "transaction")
    before = loan.status
    tx = LoanTransaction(
        loan_id=loan.id,
        event_seq=0,
        type="repayment",
        date=on,
        amount=amount,
        channel=data.channel,
        external_id=data.external_id,
        created_by=principal.user_id,
    )
    payload = {"channel": data.channel, "recovery": loan.status == LoanStatus.written_off.value}
    event = engine.record_transaction(session, loan, principal, tx, "payment", amount, payload)
    state, draft = engine.reproject(
        session, loan, today, principal, "repayment", on, tx.id, description="repayment", appended=event
    )
    allocation = state.allocations.get(event.seq, Allocation())
    if allocation.recovery:
        tx.type = "recovery"
    tx.allocation = allocation
    audit.record(
        session,
        principal,
        "loan.payment",
        "loan",
        loan.id,
        before,
        loan.status,
        {"transaction_id": tx.id, "amount": _m(amount, loan), "date": on.isoformat()},
    )
    # Nothing is flushed here: the loan, its event and transaction are written once, at commit, after the
    # outbox has counted the loan's events on it (one UPDATE of the loan).
    outcome = Outcome(loan, today, state, [draft] if draft else [], tx, allocation)
    if dry_run:
        return MoneyResult(
            200,
            dry_run_out(loan, today, state, outcome.entries, allocation).model_dump(mode="json"),
            outcome=outcome,
        )
    body = PaymentOut(
        transaction_id=tx.id,
        loan_id=loan.id,
        date=on,
        amount=_m(amount, loan),
        allocation=allocation_out(allocation, loan.currency),
        loan_status=loan.status,
        loan_version=loan.version,
    )
    return MoneyResult(201, body.model_dump(mode="json"), outcome=outcome)


def _m(units: int, loan: Loan) -> str:
    return money_out(units, loan.currency)


def reverse(
    db: Database,
    principal: Principal,
    loan_id: str,
    tx_id: str,
    data: ReverseIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = begin(session, principal, loan_id, Permission.loans_reverse, request, version, dry_run)
        if replay is not None:
            return replay
        engine.check_action(loan, LoanAction.reverse)
        tx = repo.get_transaction(session, loan.id, tx_id)
        if tx is None:
            raise NotFound("transaction not found on this loan")
        if tx.reversed:
            raise Conflict("this transaction is already reversed", allowed_actions=[])
        if tx.type not in REVERSIBLE:
            raise Conflict(f"a {tx.type} transaction cannot be reversed", allowed_actions=[])
        if tx.type == "repayment" and charged_back(session, loan.id, tx.id):
            raise Conflict("this repayment was charged back: reverse its chargebacks first", allowed_actions=[])
        before = loan.status
        today = engine.business_date(session)
        target = repo.event_by_seq(session, loan.id, tx.event_seq)
        assert target is not None
        reversal = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="reversal",
            date=today,
            amount=tx.amount,
            reversal_of=tx.id,
            note=data.reason,
            created_by=principal.user_id,
        )
        event = engine.record_transaction(
            session,
            loan,
            principal,
            reversal,
            "reversal",
            tx.amount,
            {"reverses_seq": tx.event_seq, "reason": data.reason, "reason_code": data.reason_code},
        )
        target.reversed_by_seq = event.seq
        tx.reversed = True
        state, draft = engine.reproject(
            session,
            loan,
            today,
            principal,
            "reversal",
            today,
            reversal.id,
            reversal_of=tx.journal_entry_id,
            description=f"reversal: {data.reason}",
        )
        nsf = None
        if data.reason_code == "nsf" and tx.type == "repayment":
            nsf = book_nsf_fees(session, loan, principal, today, tx)
        audit.record(
            session,
            principal,
            "loan.reverse",
            "loan",
            loan.id,
            before,
            loan.status,
            {"transaction_id": tx.id, "reversal_id": reversal.id, "reason": data.reason},
        )
        session.flush()
        if nsf is not None:  # the dry run shows both entries: the reversal and the NSF fee
            state = nsf[0]
            draft_list = [d for d in (draft, nsf[1]) if d is not None]
            return action_result(
                loan, today, state, draft_list[0] if draft_list else None, reversal, dry_run, more=draft_list[1:]
            )
        return action_result(loan, today, state, draft, reversal, dry_run)

    return run_idempotent(db, request, run, dry_run, ttl)


def write_off(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: WriteOffIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = begin(session, principal, loan_id, Permission.loans_write_off, request, version, dry_run)
        if replay is not None:
            return replay
        engine.check_action(loan, LoanAction.write_off)
        before = loan.status
        today = engine.business_date(session)
        on = money_date(loan, data.date, today)
        tx = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="write_off",
            date=on,
            amount=0,
            note=data.reason,
            created_by=principal.user_id,
        )
        event = engine.record_transaction(session, loan, principal, tx, "write_off", None, {"reason": data.reason})
        state, draft = engine.reproject(
            session,
            loan,
            today,
            principal,
            "write_off",
            on,
            tx.id,
            description=f"write-off: {data.reason}",
            appended=event,
        )
        taken = state.write_offs.get(event.seq, Allocation())
        tx.amount = taken.total
        tx.allocation = taken
        audit.record(
            session,
            principal,
            "loan.write_off",
            "loan",
            loan.id,
            before,
            loan.status,
            {"amount": _m(tx.amount, loan), "date": on.isoformat(), "reason": data.reason},
        )
        session.flush()
        return action_result(loan, today, state, draft, tx, dry_run)

    return run_idempotent(db, request, run, dry_run, ttl)


def refund(
    db: Database,
    principal: Principal,
    loan_id: str,
    data: RefundIn,
    request: IdempotentRequest | None,
    version: int | None,
    dry_run: bool,
    ttl: timedelta,
) -> MoneyResult:
    def run(session: Session) -> MoneyResult:
        loan, replay = begin(session, principal, loan_id, Permission.refunds_write, request, version, dry_run)
        if replay is not None:
            return replay
        if not refund_allowed(LoanStatus(loan.status), loan.credit_balance):
            engine.check_action(loan, LoanAction.refund)
        today = engine.business_date(session)
        on = money_date(loan, data.date, today)
        if loan.latest_event_date is not None and on < loan.latest_event_date:
            # the credit must exist on the refund's date: a refund is never backdated past money it pays out
            raise ValidationFailed.single(
                "date", f"must not be before the loan's latest transaction ({loan.latest_event_date.isoformat()})"
            )
        amount = (
            loan.credit_balance if data.amount is None else minor_amount(data.amount, currency(loan.currency), "amount")
        )
        if amount > loan.credit_balance:
            raise ValidationFailed.single("amount", f"the credit balance is {_m(loan.credit_balance, loan)}")
        before = loan.status
        tx = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="refund",
            date=on,
            amount=amount,
            note=data.reason,
            created_by=principal.user_id,
        )
        event = engine.record_transaction(session, loan, principal, tx, "refund", amount, {"reason": data.reason})
        state, draft = engine.reproject(
            session,
            loan,
            today,
            principal,
            "refund",
            on,
            tx.id,
            description="refund of credit balance",
            appended=event,
        )
        audit.record(
            session, principal, "loan.refund", "loan", loan.id, before, loan.status, {"amount": _m(amount, loan)}
        )
        session.flush()
        return action_result(loan, today, state, draft, tx, dry_run)

    return run_idempotent(db, request, run, dry_run, ttl)


# --- reads ---------------------------------------------------------------------------------------------------


def _visible_disbursed(session: Session, principal: Principal, loan_id: str) -> Loan:
    principal.require(Permission.read)
    loan = repo.get(session, loan_id)
    if loan is None or not principal.can_see_branch(loan.branch_id):
        raise NotFound("loan not found")
    return loan


@dataclass(frozen=True)
class PayoffQuote:
    loan: Loan
    on: date
    state: LoanState


def payoff(db: Database, principal: Principal, loan_id: str, on: date | None) -> PayoffQuote:
    with db.session(writer=False) as session:
        loan = _visible_disbursed(session, principal, loan_id)
        if LoanStatus(loan.status) not in MONEY_STATUSES:
            raise InvalidTransition(
                loan.status, "quote a payoff for", actions_allowed(LoanStatus(loan.status), loan.credit_balance)
            )
        today = engine.business_date(session)
        on = on or today
        if on < today:
            raise ValidationFailed.single("date", f"must be the business date {today.isoformat()} or later")
        if on > today + timedelta(days=3660):
            raise ValidationFailed.single("date", "must be within ten years")
        return PayoffQuote(loan, on, project_loan(session, loan, on, payoff=True))


def transactions(
    db: Database, principal: Principal, loan_id: str, cursor: str | None, limit: int
) -> tuple[Loan, Sequence[LoanTransaction], str | None]:
    with db.session(writer=False) as session:
        loan = _visible_disbursed(session, principal, loan_id)
        rows, next_cursor = repo.list_transactions(session, loan.id, cursor, limit)
        return loan, rows, next_cursor


def journal(
    db: Database, principal: Principal, loan_id: str
) -> tuple[Loan, list[tuple[JournalEntry, list[JournalLine]]]]:
    with db.session(writer=False) as session:
        loan = _visible_disbursed(session, principal, loan_id)
        return loan, ledger_repo.loan_entries(session, loan.id)


def audit_trail(db: Database, principal: Principal, loan_id: str) -> Sequence[AuditRecord]:
    with db.session(writer=False) as session:
        loan = _visible_disbursed(session, principal, loan_id)
        return audit.trail(session, "loan", loan.id)
