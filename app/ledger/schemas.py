from datetime import date, datetime

from pydantic import BaseModel

from app.core.schemas import MoneyOut


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
