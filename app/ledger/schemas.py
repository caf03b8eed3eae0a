from datetime import date, datetime

from pydantic import BaseModel, Field

from app.core.schemas import MoneyOut, money_out
from app.ledger.models import JournalEntry, JournalLine


class AccountOut(BaseModel):
    code: str
    name: str
    type: str
    is_active: bool


class AccountList(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None = None


class JournalLineOut(BaseModel):
    account_code: str
    debit: MoneyOut
    credit: MoneyOut
    loan_id: str | None


class JournalEntryOut(BaseModel):
    id: str
    entry_type: str
    currency: str
    effective_date: date
    value_date: date = Field(description="when the event took effect (the same as effective_date)")
    booking_date: date = Field(description="the business date on which the entry was posted")
    posted_at: datetime
    loan_id: str | None
    transaction_id: str | None
    reversal_of: str | None
    description: str
    lines: list[JournalLineOut]


class TrialBalanceAccount(BaseModel):
    code: str
    name: str
    type: str
    debit: MoneyOut
    credit: MoneyOut
    balance: MoneyOut


class TrialBalanceOut(BaseModel):
    as_of: date
    currency: str
    accounts: list[TrialBalanceAccount]
    total_debit: MoneyOut
    total_credit: MoneyOut


def journal_entry_out(entry: JournalEntry, lines: list[JournalLine]) -> JournalEntryOut:
    return JournalEntryOut(
        id=entry.id,
        entry_type=entry.entry_type,
        currency=entry.currency,
        effective_date=entry.effective_date,
        value_date=entry.effective_date,
        booking_date=entry.booking_date,
        posted_at=entry.posted_at,
        loan_id=entry.loan_id,
        transaction_id=entry.transaction_id,
        reversal_of=entry.reversal_of,
        description=entry.description,
        lines=[
            JournalLineOut(
                account_code=ln.account_code,
                debit=money_out(ln.debit, entry.currency),
                credit=money_out(ln.credit, entry.currency),
                loan_id=ln.loan_id,
            )
            for ln in lines
        ],
    )
