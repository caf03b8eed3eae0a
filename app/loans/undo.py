"""Undo of approval and of disbursal (CONTRACT "Servicing instruments"). Nothing is deleted: the undo is an
event in the loan's log, the disbursement transaction is marked reversed with a reversal beside it, and the
journal gets the entry that takes every account of the loan back to zero (the disbursement and any accrual
close of business posted meanwhile)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.errors import Conflict
from app.core.orm import utcnow
from app.core.schemas import money_out
from app.database import Database
from app.domain.lifecycle import LoanAction, LoanStatus, actions_allowed
from app.domain.postings import correcting_lines
from app.identity.access import Permission, Principal
from app.ledger import service as ledger
from app.ledger.entries import EntryDraft, LineDraft
from app.loans import engine
from app.loans import repository as repo
from app.loans.engine import Outcome, unit_of_work
from app.loans.models import Loan, LoanModification, LoanTransaction


def undo_approval(db: Database, principal: Principal, loan_id: str, version: int | None, dry_run: bool) -> Outcome:
    with unit_of_work(db, dry_run) as session:
        loan = engine.load_for_write(session, principal, loan_id, Permission.loans_approve, version)
        before = loan.status
        loan.status = engine.check_action(loan, LoanAction.undo_approval).value
        approved = loan.approved_principal
        loan.approved_principal, loan.approved_on = None, None
        loan.version += 1
        today = engine.business_date(session)
        engine.append_event(session, loan, principal, "approval_undone", today, approved)
        audit.record(session, principal, "loan.undo_approval", "loan", loan.id, before, loan.status)
        session.flush()
        return Outcome(loan, today)


def undo_disbursal(db: Database, principal: Principal, loan_id: str, version: int | None, dry_run: bool) -> Outcome:
    with unit_of_work(db, dry_run) as session:
        loan = engine.load_for_write(session, principal, loan_id, Permission.loans_approve, version)
        before = loan.status
        target = engine.check_action(loan, LoanAction.undo_disbursal)
        disbursement = _only_disbursement(session, loan)
        today = engine.business_date(session)
        reversal = LoanTransaction(
            loan_id=loan.id,
            event_seq=0,
            type="reversal",
            date=today,
            amount=disbursement.amount,
            reversal_of=disbursement.id,
            note="disbursal undone",
            created_by=principal.user_id,
        )
        event = engine.record_transaction(
            session, loan, principal, reversal, "disbursal_undone", disbursement.amount, {"reverses": disbursement.id}
        )
        disbursement.reversed = True
        draft = _zero_the_books(session, loan, principal, today, reversal.id, disbursement.journal_entry_id)
        _reset(session, loan, target)
        for pending in session.scalars(
            select(LoanModification).where(LoanModification.loan_id == loan.id, LoanModification.status == "pending")
        ):
            pending.status, pending.decision_reason = "rejected", "the disbursal was undone"
            pending.decided_by, pending.decided_by_username, pending.decided_at = (
                principal.user_id,
                principal.username,
                utcnow(),
            )
        audit.record(
            session,
            principal,
            "loan.undo_disbursal",
            "loan",
            loan.id,
            before,
            loan.status,
            {
                "transaction_id": disbursement.id,
                "amount": money_out(disbursement.amount, loan.currency),
                "event_seq": event.seq,
            },
        )
        session.flush()
        return Outcome(loan, today, None, [draft] if draft else [], reversal)


def _only_disbursement(session: Session, loan: Loan) -> LoanTransaction:
    """The disbursement, provided nothing else touched the loan's money (otherwise 409 naming what did)."""
    txs = repo.transactions(session, loan.id)
    other_actions = [
        a for a in actions_allowed(LoanStatus(loan.status), loan.credit_balance) if a != LoanAction.undo_disbursal
    ]
    disbursements = {t.id for t in txs if t.type == "disbursement"}
    others = [t for t in txs if t.type != "disbursement" and t.reversal_of not in disbursements]
    live = [t for t in txs if t.type == "disbursement" and not t.reversed]
    if others:
        kinds = ", ".join(sorted({t.type for t in others}))
        raise Conflict(
            f"the disbursal can only be undone while it is the loan's only money transaction; it also has: {kinds}",
            allowed_actions=other_actions,
        )
    modified = [e for e in repo.events(session, loan.id) if e.type == "modification" and e.reversed_by_seq is None]
    if modified or len(live) != 1:
        raise Conflict(
            "the disbursal can only be undone while nothing else changed the loan; it has an approved modification"
            if modified
            else "the loan has no single disbursement to undo",
            allowed_actions=other_actions,
        )
    return live[0]


def _zero_the_books(
    session: Session, loan: Loan, principal: Principal, today: object, tx_id: str, reversal_of: str | None
) -> EntryDraft | None:
    lines = correcting_lines({}, ledger.loan_balances(session, loan.id))
    if not lines:
        return None
    draft = EntryDraft(
        entry_type="undo_disbursal",
        currency=loan.currency,
        effective_date=today,  # type: ignore[arg-type]
        lines=[LineDraft(ln.account_code, ln.debit, ln.credit, loan.id) for ln in lines],
        loan_id=loan.id,
        product_id=loan.product_id,
        transaction_id=tx_id,
        reversal_of=reversal_of,
        description="disbursal undone",
        created_by=principal.user_id,
    )
    entry_id = ledger.post(session, draft)
    session.flush()
    for tx in repo.transactions(session, loan.id):
        if tx.id == tx_id:
            tx.journal_entry_id = entry_id
    return draft


def _reset(session: Session, loan: Loan, status: LoanStatus) -> None:
    """Back to an approved application: no disbursement, no schedule, an empty snapshot, no stored states."""
    repo.drop_checkpoints(session, loan.id)
    loan.status = status.value
    loan.disbursed_principal = loan.disbursement_date = None
    loan.maturity_date = loan.closed_on = loan.written_off_on = None
    loan.snapshot_date = None
    loan.installment_amount = loan.principal_outstanding = loan.interest_outstanding = 0
    loan.interest_prepaid = loan.fees_outstanding = loan.penalties_outstanding = 0
    loan.credit_balance = loan.interest_recognized = loan.days_past_due = 0
    loan.delinquency_bucket = "current"
    loan.next_due_date = loan.next_due_amount = None
    loan.past_maturity = False
    loan.current_period_start = loan.current_due_date = loan.oldest_unpaid_due_date = None
    loan.current_period_interest = loan.interest_before_current = 0
    loan.projection_state = None
    loan.latest_event_date = None
    loan.version += 1
    repo.save_installments(session, loan.id, [])
