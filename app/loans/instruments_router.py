"""HTTP for the servicing instruments (CONTRACT "Servicing instruments": 201 with the transaction item and
the loan; 200 for a dry run)."""

from fastapi import APIRouter

from app.loans import instruments
from app.loans.action_routes import MoneyAction, add_money_actions
from app.loans.instrument_schemas import ChargebackIn, ChargeIn, CreditIn, InstrumentOut, WaiverIn

router = APIRouter(prefix="/api/v1/loans", tags=["loans"])

add_money_actions(
    router,
    [
        MoneyAction(
            "add_charge",
            "charges",
            ChargeIn,
            instruments.charge,
            "Charge an ad-hoc fee (officer): owed from its due date, in that installment's fees",
            InstrumentOut,
        ),
        MoneyAction(
            "add_waiver",
            "waivers",
            WaiverIn,
            instruments.waive,
            "Waive owed penalties, fees or due interest, oldest first (manager); more than owed → 422",
            InstrumentOut,
        ),
        MoneyAction(
            "add_credit",
            "credits",
            CreditIn,
            instruments.credit,
            "Goodwill credit funded by the lender, applied like a payment (manager)",
            InstrumentOut,
        ),
        MoneyAction(
            "add_chargeback",
            "chargebacks",
            ChargebackIn,
            instruments.chargeback,
            "Charge back money of a repayment (manager): owed again as principal; more than the repayment → 422",
            InstrumentOut,
        ),
    ],
)
