"""Shape loans, installments, transactions and dry-run results for the API (money as decimal strings)."""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from app.core.schemas import money_out
from app.domain.delinquency import bucket_for
from app.domain.instruments import installment_fee, installment_fee_rules
from app.domain.lifecycle import LoanStatus, actions_allowed
from app.domain.money import currency as currency_of
from app.domain.money import format_minor
from app.domain.servicing import Allocation, Installment, LoanState, period_numbers
from app.ledger.entries import EntryDraft
from app.loans.models import Loan, LoanInstallment, LoanTransaction
from app.loans.numbering import paid_through
from app.loans.schemas import (
    AllocationOut,
    Balances,
    DryRunOut,
    InstallmentOut,
    JournalEntryPreview,
    JournalLinePreview,
    LoanOut,
    NextDue,
    TransactionOut,
)
from app.loans.terms import product_charges
from app.products.schemas import format_rate, rate_from_e6, rate_to_e6


def _regime(loan: Loan) -> dict[str, str] | None:
    """The terms an approved modification set (rate, term), kept in the projection's checkpoint."""
    regime = (loan.projection_state or {}).get("regime")
    return regime if isinstance(regime, dict) else None


def _current_rate(loan: Loan) -> str:
    regime = _regime(loan)
    return format_rate(rate_to_e6(Decimal(regime["rate"])) if regime else loan.annual_rate_e6)


def _current_term(loan: Loan) -> int:
    regime = _regime(loan)
    return int(regime["term"]) if regime else loan.term


if TYPE_CHECKING:
    from app.loans.timeline import TimelineItem


def _principal(loan: Loan) -> int:
    if loan.disbursed_principal is not None:
        return loan.disbursed_principal + (loan.tranches_disbursed or 0)
    if loan.approved_principal is not None:
        return loan.approved_principal
    return loan.requested_principal


def loan_out(loan: Loan, as_of: date, state: LoanState | None = None, status: str | None = None) -> LoanOut:
    c = loan.currency
    m = partial(money_out, currency_code=c)
    status = status or loan.status
    if state is not None:
        parts = (
            state.principal_outstanding,
            state.interest_outstanding,
            state.fees_outstanding,
            state.penalties_outstanding,
        )
        advance = state.interest_in_advance
        credit, dpd, next_due = state.credit, state.days_past_due, state.next_due
        accrual_status, suspense = state.accrual_status, state.interest_in_suspense
        maturity: date | None = state.maturity_date
        installment = state.installment_amount
    else:
        parts = (
            loan.principal_outstanding,
            loan.interest_outstanding,
            loan.fees_outstanding,
            loan.penalties_outstanding,
        )
        advance = loan.interest_prepaid
        credit, dpd = loan.credit_balance, loan.days_past_due
        accrual_status, suspense = loan.accrual_status, loan.interest_suspended
        next_due = (loan.next_due_date, loan.next_due_amount or 0) if loan.next_due_date is not None else None
        maturity, installment = loan.maturity_date, loan.installment_amount
    if status == LoanStatus.approved.value and loan.disbursement_date is not None:
        parts, advance, credit, dpd, next_due = (0, 0, 0, 0), 0, 0, 0, None  # as of a date before the disbursement
        accrual_status, suspense = "accruing", 0
    return LoanOut(
        id=loan.id,
        account_no=loan.account_no,
        paid_through=paid_through(state.installments) if state is not None else loan.paid_through,
        status=status,
        borrower_id=loan.borrower_id,
        product_id=loan.product_id,
        branch_id=loan.branch_id,
        currency=c,
        principal=m(_principal(loan)),
        annual_rate_percent=_current_rate(loan),
        apr_percent=None if loan.apr_e6 is None else f"{rate_from_e6(loan.apr_e6):.4f}",
        term=_current_term(loan),
        disbursement_date=loan.disbursement_date,
        maturity_date=maturity,
        balances=Balances(
            principal=m(parts[0]),
            interest=m(parts[1]),
            fees=m(parts[2]),
            penalties=m(parts[3]),
            interest_in_advance=m(advance),
            total=m(sum(parts) - advance),
            credit=m(credit),
        ),
        days_past_due=dpd,
        next_due=NextDue(date=next_due[0], amount=m(next_due[1])) if next_due else None,
        version=loan.version,
        as_of=as_of,
        external_id=loan.external_id,
        requested_principal=m(loan.requested_principal),
        approved_principal=None if loan.approved_principal is None else m(loan.approved_principal),
        disbursed_principal=None if loan.disbursed_principal is None else m(loan.disbursed_principal),
        installment_amount=m(installment),
        # A written-off loan left the ageing buckets: "current" would read as performing.
        delinquency_bucket="written_off" if status == LoanStatus.written_off.value else bucket_for(dpd),
        accrual_status=accrual_status,
        interest_in_suspense=m(suspense),
        frequency=loan.frequency,
        frequency_interval=loan.frequency_interval,
        amortization=loan.amortization,
        interest_method=loan.interest_method,
        day_count=loan.day_count,
        grace_principal_periods=loan.grace_principal_periods,
        expected_disbursement_date=loan.expected_disbursement_date,
        first_payment_date=loan.first_payment_date,
        submitted_on=loan.submitted_on,
        approved_on=loan.approved_on,
        closed_on=loan.closed_on,
        written_off_on=loan.written_off_on,
        allowed_actions=actions_allowed(LoanStatus(status), credit),
        created_at=loan.created_at,
    )


def installment_fields(
    row: Installment | LoanInstallment, currency: str, as_of: date, planned_fees: int = 0
) -> dict[str, Any]:
    """One schedule row as the API shows it (InstallmentOut's fields), as plain data: the schedule endpoint
    serialises these directly (a 520-installment schedule is the API's largest routine body).
    Interest, fees and penalties as charged; `waived` what waivers forgave of them (the row keeps what is owed,
    so charged = owed + waived); outstanding = total - paid - waived. `planned_fees`: installment fees of a
    period not yet begun (charged when it begins), shown so the schedule is the plan in full."""
    cur = currency_of(currency)
    waived = row.waived_interest + row.waived_fees + row.waived_penalties
    owed = row.principal + row.interest + row.fees + row.penalties + planned_fees
    paid = row.paid_principal + row.paid_interest + row.paid_fees + row.paid_penalties
    outstanding = owed - paid
    if outstanding == 0:
        status = "paid"
    elif row.due_date < as_of:
        status = "overdue"
    else:
        status = "partially_paid" if paid else "pending"
    return {
        "number": row.number,
        "period_start": row.period_start,
        "due_date": row.due_date,
        "principal": format_minor(row.principal, cur),
        "interest": format_minor(row.interest + row.waived_interest, cur),
        "fees": format_minor(row.fees + row.waived_fees + planned_fees, cur),
        "penalties": format_minor(row.penalties + row.waived_penalties, cur),
        "total": format_minor(owed + waived, cur),
        "paid": {
            "principal": format_minor(row.paid_principal, cur),
            "interest": format_minor(row.paid_interest, cur),
            "fees": format_minor(row.paid_fees, cur),
            "penalties": format_minor(row.paid_penalties, cur),
        },
        "waived": {
            "interest": format_minor(row.waived_interest, cur),
            "fees": format_minor(row.waived_fees, cur),
            "penalties": format_minor(row.waived_penalties, cur),
        },
        "outstanding": format_minor(outstanding, cur),
        "status": status,
        "late_fee_date": row.late_fee_date,
    }


def installment_out(
    row: Installment | LoanInstallment, currency: str, as_of: date, planned_fees: int = 0
) -> InstallmentOut:
    return InstallmentOut.model_validate(installment_fields(row, currency, as_of, planned_fees))


PLANNED_FEE_STATUSES = frozenset({"submitted", "approved", "active"})


def _installment_rows(
    rows: Sequence[Installment | LoanInstallment], currency: str, as_of: date, loan: Loan | None
) -> list[dict[str, Any]]:
    rules = installment_fee_rules(product_charges(loan)) if loan is not None else ()
    if loan is None or not rules or loan.status not in PLANNED_FEE_STATUSES:
        return [installment_fields(r, currency, as_of) for r in rows]
    begun = loan.disbursement_date is not None  # a preview before disbursement: every fee is still to come
    return [
        installment_fields(
            r,
            currency,
            as_of,
            installment_fee(rules, r.principal, r.interest)
            if period <= loan.term and not (begun and r.period_start <= as_of)
            else 0,
        )
        for r, period in zip(rows, period_numbers(rows), strict=True)
    ]


def installments_out(
    rows: Sequence[Installment | LoanInstallment], currency: str, as_of: date, loan: Loan | None = None
) -> list[InstallmentOut]:
    return [InstallmentOut.model_validate(f) for f in _installment_rows(rows, currency, as_of, loan)]


def schedule_json(loan: Loan, as_of: date, rows: Sequence[Installment | LoanInstallment]) -> bytes:
    """GET /loans/{id}/schedule's body (ScheduleOut), serialised straight from plain data."""
    body = {
        "loan_id": loan.id,
        "as_of": as_of,
        "currency": loan.currency,
        "installments": _installment_rows(rows, loan.currency, as_of, loan),
    }
    return orjson.dumps(body)  # dates as ISO 8601, like the response models


def allocation_out(a: Allocation, currency: str) -> AllocationOut:
    m = partial(money_out, currency_code=currency)
    return AllocationOut(
        principal=m(a.principal),
        interest=m(a.interest),
        fees=m(a.fees),
        penalties=m(a.penalties),
        overpayment=m(a.overpayment),
        recovery=m(a.recovery),
    )


def transaction_out(tx: "LoanTransaction | TimelineItem", currency: str) -> TransactionOut:
    """A transaction item as the list shows it: a stored transaction, or a timeline item (`?include=accruals`,
    `?known_at=`) — both carry the same fields."""
    return TransactionOut(
        id=tx.id,
        type=tx.type,
        date=tx.date,
        amount=money_out(tx.amount, currency),
        allocation=allocation_out(tx.allocation, currency),
        reversed=tx.reversed,
        reversal_of=tx.reversal_of,
        channel=tx.channel,
        external_id=tx.external_id,
        journal_entry_id=tx.journal_entry_id,
        created_at=tx.created_at,
    )


def entries_preview(entries: Sequence[EntryDraft]) -> list[JournalEntryPreview]:
    return [
        JournalEntryPreview(
            entry_type=e.entry_type,
            effective_date=e.effective_date,
            lines=[
                JournalLinePreview(
                    account_code=ln.account_code,
                    debit=money_out(ln.debit, e.currency),
                    credit=money_out(ln.credit, e.currency),
                )
                for ln in e.lines
            ],
        )
        for e in entries
    ]


def dry_run_out(
    loan: Loan,
    as_of: date,
    state: LoanState | None,
    entries: Sequence[EntryDraft],
    allocation: Allocation | None = None,
) -> DryRunOut:
    return DryRunOut(
        loan=loan_out(loan, as_of),
        allocation=allocation_out(allocation, loan.currency) if allocation else None,
        installments=installments_out(state.installments, loan.currency, as_of) if state else None,
        journal_entries=entries_preview(entries),
    )
