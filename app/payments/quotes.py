"""Payoff quotes, persisted: the payoff the servicing core computes for a date (its math untouched), with
`valid_until` = that date. A payment citing the quote, of at least its total, dated on or before `valid_until`,
pays at least the payoff of its own date (the payoff never falls as days pass), so it closes the loan; paid
before the quoted date, the interest not yet accrued stays with the borrower as a refundable credit."""

from datetime import date
from decimal import Decimal

from app.business_calendar.service import business_date
from app.core.errors import NotFound, ValidationFailed
from app.database import Database
from app.domain.money import currency
from app.idempotency.keys import IdempotentRequest
from app.idempotency.keys import lookup as idempotency_lookup
from app.identity.access import Permission, Principal
from app.loans import repository as loans
from app.loans import servicing
from app.loans.service import minor_amount
from app.payments.models import PayoffQuoteRecord


def create(db: Database, principal: Principal, loan_id: str, on: date | None) -> PayoffQuoteRecord:
    quote = servicing.payoff(db, principal, loan_id, on)  # visibility, status and date checks, the math
    principal.require_on(Permission.payments_write, quote.loan.branch_id, "loan")
    s = quote.state
    with db.transaction() as session:
        record = PayoffQuoteRecord(
            loan_id=quote.loan.id,
            date=quote.on,
            valid_until=quote.on,
            currency=quote.loan.currency,
            principal=s.principal_outstanding,
            interest=s.interest_outstanding,
            fees=s.fees_outstanding,
            penalties=s.penalties_outstanding,
            total=s.total_outstanding,
            per_diem=s.per_diem,
            loan_version=quote.loan.version,
            created_by=principal.user_id,
        )
        session.add(record)
        session.flush()
        session.expunge(record)
        return record


def get(db: Database, principal: Principal, loan_id: str, quote_id: str) -> PayoffQuoteRecord:
    principal.require(Permission.read)
    with db.session(writer=False) as session:
        loan = loans.get(session, loan_id)
        if loan is None or not principal.can_see_branch(loan.branch_id):
            raise NotFound("loan not found")
        record = session.get(PayoffQuoteRecord, quote_id)
        if record is None or record.loan_id != loan_id:
            raise NotFound("payoff quote not found")
        return record


def check_payment(
    db: Database,
    principal: Principal,
    loan_id: str,
    quote_id: str,
    amount: Decimal,
    on: date | None,
    request: IdempotentRequest | None,
) -> None:
    """A payment citing a quote must be of at least its total and dated on or before valid_until (else 422).
    A retried request whose answer is stored replays it, even after the quote expired."""
    with db.session(writer=False) as session:
        loan = loans.get(session, loan_id)
        if loan is None or not principal.can_see_branch(loan.branch_id):
            raise NotFound("loan not found")
        if request is not None and idempotency_lookup(session, request) is not None:
            return
        record = session.get(PayoffQuoteRecord, quote_id)
        if record is None or record.loan_id != loan_id:
            raise ValidationFailed.single("payoff_quote_id", "no such payoff quote for this loan")
    paid_on = on or business_date(db)
    if paid_on > record.valid_until:
        raise ValidationFailed.single(
            "payoff_quote_id", f"the quote was valid until {record.valid_until.isoformat()}; ask for a new one"
        )
    if minor_amount(amount, currency(record.currency), "amount") < record.total:
        raise ValidationFailed.single("amount", "must be at least the quoted total")
