from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import DEFAULT_PAGE_SIZE, CurrentUser, Cursor, DbDep, Limit, ReadDbDep
from app.business_calendar.service import business_date
from app.core.schemas import Page, money_out
from app.ledger import service
from app.ledger.schemas import (
    AccountList,
    AccountOut,
    JournalEntryOut,
    TrialBalanceAccount,
    TrialBalanceOut,
    journal_entry_out,
)

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])


@router.get("/accounts", response_model=AccountList, summary="Chart of accounts")
def list_accounts(db: DbDep, principal: CurrentUser) -> AccountList:
    return AccountList(
        items=[
            AccountOut(code=a.code, name=a.name, type=a.type, is_active=a.is_active)
            for a in service.accounts(db, principal)
        ]
    )


@router.get("/journal-entries", response_model=Page[JournalEntryOut], summary="Journal entries with their lines")
def list_entries(
    db: DbDep,
    principal: CurrentUser,
    loan_id: Annotated[str | None, Query(max_length=36)] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: Cursor = None,
) -> Page[JournalEntryOut]:
    found, next_cursor = service.entries(db, principal, loan_id, date_from, date_to, cursor, limit)
    items = [journal_entry_out(e, lines) for e, lines in found]
    return Page[JournalEntryOut](items=items, next_cursor=next_cursor)


@router.get("/trial-balance", response_model=TrialBalanceOut, summary="Trial balance as of a date")
def trial_balance(
    db: ReadDbDep,
    principal: CurrentUser,
    as_of: date | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
) -> TrialBalanceOut:
    tb = service.trial_balance(db, principal, as_of or business_date(db), currency)
    return TrialBalanceOut(
        as_of=tb.as_of,
        currency=tb.currency,
        accounts=[
            TrialBalanceAccount(
                code=r.account.code,
                name=r.account.name,
                type=r.account.type,
                debit=money_out(r.debit, tb.currency),
                credit=money_out(r.credit, tb.currency),
                balance=money_out(r.debit - r.credit, tb.currency),
            )
            for r in tb.rows
        ],
        total_debit=money_out(tb.total_debit, tb.currency),
        total_credit=money_out(tb.total_credit, tb.currency),
    )
