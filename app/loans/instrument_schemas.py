"""Request and response bodies of the servicing instruments (CONTRACT "Servicing instruments")."""

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.schemas import MoneyIn, StrictModel
from app.domain.instruments import WaiverBucket
from app.loans.schemas import LoanOut, Reason, ReasonIn, TransactionOut

ChargeName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ChargeCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]


class ChargeIn(StrictModel):
    name: ChargeName
    amount: MoneyIn
    due_date: dt.date | None = Field(
        default=None,
        description="Owed from this date (default: the business date); in the fees of the installment whose "
        "period holds it. Not before the disbursement, not after the business date (backdating re-projects).",
    )
    code: ChargeCode | None = None


class WaiverIn(StrictModel):
    bucket: WaiverBucket = Field(
        description="What to forgive, oldest installment first: penalties or fees as charged, or interest of "
        "installments already due"
    )
    amount: MoneyIn
    reason: Reason


class CreditIn(StrictModel):
    amount: MoneyIn = Field(description="A goodwill credit funded by the lender, applied like a payment")
    reason: Reason


class ChargebackIn(StrictModel):
    transaction_id: str = Field(max_length=36, description="The repayment whose money is returned to its payer")
    amount: MoneyIn
    reason: Reason


class InstrumentOut(TransactionOut):
    """The transaction the action booked (as in the transactions list) and the loan after it."""

    loan: LoanOut


class ReverseIn(ReasonIn):
    reason_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | None = Field(
        default=None, description='"nsf": a returned repayment; the product\'s NSF fees are charged'
    )
