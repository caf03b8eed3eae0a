"""Bodies of payoff quotes and payment batches."""

import datetime as dt

from pydantic import BaseModel, Field

from app.core.schemas import MoneyOut, StrictModel


class PayoffQuoteIn(StrictModel):
    date: dt.date | None = Field(default=None, description="Default: the business date; never before it")


class PayoffQuoteOut(BaseModel):
    id: str
    loan_id: str
    currency: str
    date: dt.date
    valid_until: dt.date = Field(description="A payment citing this quote, dated on or before this, closes the loan")
    total: MoneyOut
    principal: MoneyOut
    interest: MoneyOut
    fees: MoneyOut
    penalties: MoneyOut
    per_diem: MoneyOut
    created_at: dt.datetime


class BatchAccepted(BaseModel):
    id: str
    status: str
    rows: int


class BatchRowResult(BaseModel):
    row: int = Field(description="1-based data row number (the header is row 0)")
    status: str = Field(description="pending | succeeded | duplicate | failed")
    external_id: str | None
    transaction_id: str | None = None
    error: str | None = None


class BatchOut(BaseModel):
    id: str
    status: str = Field(description="processing | done")
    rows: int
    succeeded: int
    failed: int
    pending: int
    created_at: dt.datetime
    finished_at: dt.datetime | None
    results: list[BatchRowResult]
    next_cursor: str | None = Field(default=None, description="more results: pass as ?cursor=")
