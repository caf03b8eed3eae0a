"""Further disbursements of a multi-disbursement loan (CONTRACT "Servicing instruments"): while the loan is
active, `/disburse` lends another tranche, up to the approved principal in total. The tranche is a `tranche`
event in the loan's log; the projection adds it to the principal on its date and re-amortises the
installments not yet due over the same dates (app/domain/modifications.py), and the correcting entry posts it
(Dr 1100 Loan portfolio, Cr 1000 Fund source)."""

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.errors import ValidationFailed
from app.core.schemas import money_out
from app.domain.modifications import TRANCHE, event_fields
from app.domain.money import currency
from app.domain.servicing import Modification
from app.identity.access import Principal
from app.loans import engine, idempotent
from app.loans.idempotent import MoneyResult
from app.loans.models import Loan, LoanTransaction
from app.loans.schemas import DisburseIn
from app.loans.service import minor_amount


def disburse_tranche(
    session: Session, principal: Principal, loan: Loan, data: DisburseIn, dry_run: bool
) -> MoneyResult:
    assert loan.disbursed_principal is not None and loan.disbursement_date is not None
    today = engine.business_date(session)
    on = data.date or today
    if on > today:
        raise ValidationFailed.single("date", f"must not be after the business date {today.isoformat()}")
    if on < loan.disbursement_date:
        raise ValidationFailed.single("date", "must not be before the first disbursement")
    approved = loan.approved_principal or loan.requested_principal
    lent = loan.disbursed_principal + loan.tranches_disbursed
    left = approved - lent
    amount = left if data.amount is None else minor_amount(data.amount, currency(loan.currency), "amount")
    if amount <= 0 or amount > left:
        raise ValidationFailed.single(
            "amount",
            f"{money_out(left, loan.currency)} of the approved principal {money_out(approved, loan.currency)} "
            "is left to disburse",
        )
    tx = LoanTransaction(
        loan_id=loan.id, event_seq=0, type="disbursement", date=on, amount=amount, created_by=principal.user_id
    )
    fields = event_fields(Modification(0, on, TRANCHE, disbursed=amount))
    event = engine.record_transaction(session, loan, principal, tx, TRANCHE, amount, {"event": fields})
    loan.tranches_disbursed = loan.tranches_disbursed + amount
    state, draft = engine.reproject(
        session,
        loan,
        today,
        principal,
        "disbursement",
        on,
        tx.id,
        description="loan disbursement (tranche)",
        appended=event,
    )
    audit.record(
        session,
        principal,
        "loan.disburse_tranche",
        "loan",
        loan.id,
        loan.status,
        loan.status,
        {
            "amount": money_out(amount, loan.currency),
            "date": on.isoformat(),
            "disbursed": money_out(lent + amount, loan.currency),
        },
    )
    session.flush()
    return idempotent.action_result(loan, today, state, draft, tx, dry_run)
