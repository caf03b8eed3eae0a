"""Product charges at disbursement: the fees a disbursement deducts or capitalizes, the loan's APR with them
(Reg Z App. J: deducted fees are prepaid finance charges, installment fees finance charges paid with each
installment), and whether close of business must re-project the loan (installment fees fall due by date)."""

from app.core.errors import ValidationFailed
from app.domain.instruments import disbursement_fees, installment_fee_rules, loan_apr
from app.domain.money import currency
from app.domain.schedule import generate_schedule
from app.loans.models import Loan
from app.loans.terms import loan_terms, product_charges
from app.products.schemas import rate_to_e6


def apply_disbursement_charges(loan: Loan) -> int:
    """Check and record the charges of the loan's (just set) disbursement; returns the fees deducted."""
    assert loan.disbursed_principal is not None
    charges = product_charges(loan)
    deducted, _ = disbursement_fees(charges, loan.disbursed_principal)
    if deducted >= loan.disbursed_principal:
        raise ValidationFailed.single("amount", "the fees deducted at disbursement must be less than the amount")
    terms = loan_terms(loan)
    schedule = generate_schedule(terms.schedule)
    cash = loan.disbursed_principal - deducted
    rules = installment_fee_rules(charges)
    loan.apr_e6 = rate_to_e6(loan_apr(schedule, cash, rules, currency(loan.currency).minor_units))
    loan.close_per_loan = bool(rules)
    return deducted
