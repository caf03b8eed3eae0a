"""The projection: `project(terms, events, as_of) -> LoanState`, the single source of every number of a
disbursed loan. Pure and deterministic; works in integer minor units of the loan's currency.

Conventions (README "Servicing"; CONTRACT "Loans" and "Servicing instruments"):
- Interest is scheduled per installment (`schedule.py`); within a period it is recognised (accrued) in
  proportion to the day count's days elapsed, rounded half-up, so the accrual at the due date is exactly the
  installment's interest. Interest paid before it is recognised is interest received in advance (a
  liability), never income.
- Allocation of a payment dated d: (1) installments due on or before d, oldest first, each by the product's
  order (default penalties -> fees -> interest -> principal); (2) the current installment (the earliest not
  yet due) as scheduled, in the same order, so an installment whose scheduled total was received is paid
  and never falls due, however early the money came; (3) the rest by the product's `prepayment`:
  `reduce_term` prepays principal keeping the installment amount (later installments re-amortised from the
  lower balance, the term shortens), `reduce_installment` prepays principal keeping the maturity (a new level
  installment), `pay_ahead` pays the next installments in order as scheduled.
- A payment at least the payoff for its date closes the loan: interest is owed only as accrued through that
  date (interest received in advance is credited back), and any excess is an overpayment (a credit balance).
- A late fee is charged once per installment at the end of the first day its days past due exceed the
  product's grace days, if it is still unpaid then (after that day's payments): fixed amount or percent of
  the installment's overdue principal and interest.
- Days past due = as-of date - the oldest unpaid due date (principal or interest unpaid).
- Corrections never lose money: a refund that the remaining payments no longer cover (its payment was
  reversed) is principal owed again; a recovery beyond what was written off is a refundable credit.
- A chargeback's principal owed again is due at once: an installment of its own, a period of no length
  (period start = due date = the chargeback's date, no interest), placed after the installments due by then.
  Installment numbers are the rows' order; inside the projection such a row carries the number of the
  installment before it, so every other row keeps its contractual period number (the due-date grid,
  re-amortisation and modifications count periods): `_to_periods` / `displayed` convert at the boundary.
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from app.domain.calendar import DayCount, day_count
from app.domain.instruments import Charge, Chargeback, FeeRule, Waiver, installment_fee
from app.domain.lifecycle import LoanStatus
from app.domain.money import to_minor
from app.domain.postings import LoanTotals
from app.domain.schedule import (
    ScheduledInstallment,
    ScheduleTerms,
    generate_schedule,
    half_up_div,
    reamortize,
    reamortize_keeping_maturity,
)

COMPONENTS = ("penalties", "fees", "interest", "principal")
DEFAULT_ALLOCATION_ORDER = COMPONENTS


class Prepayment(StrEnum):
    """What money beyond the current installment does (CONTRACT "Servicing instruments")."""

    reduce_term = "reduce_term"
    reduce_installment = "reduce_installment"
    pay_ahead = "pay_ahead"


class InterestRecalculation(StrEnum):
    none = "none"
    daily = "daily"  # simple interest on the principal actually outstanding (app/domain/simple_interest.py)


@dataclass(frozen=True)
class LateFeeRule:
    grace_days: int
    amount: int | None = None  # minor units
    percent_of_overdue: Decimal | None = None

    def fee(self, overdue_minor: int) -> int:
        if self.amount is not None:
            return self.amount
        if self.percent_of_overdue is not None:
            num, den = self.percent_of_overdue.as_integer_ratio()
            return half_up_div(overdue_minor * num, den * 100)
        return 0


@dataclass(frozen=True)
class LoanTerms:
    schedule: ScheduleTerms  # principal = the disbursed amount, disbursement_date = the actual date
    late_fee: LateFeeRule | None = None
    allocation_order: tuple[str, ...] = DEFAULT_ALLOCATION_ORDER
    prepayment: Prepayment = Prepayment.reduce_term
    interest_recalculation: InterestRecalculation = InterestRecalculation.none
    # Product charges (app/domain/instruments.py): fees charged and paid at disbursement (deducted from the
    # money paid out, or capitalized into schedule.principal), and fees added to every installment.
    disbursement_fees: int = 0
    installment_fees: tuple[FeeRule, ...] = ()
    # Non-accrual (CONTRACT "Ledger time"): while days past due exceed this, accrual goes to interest in suspense.
    non_accrual_after_days: int | None = None


@dataclass(frozen=True)
class Payment:
    seq: int
    date: date
    amount: int
    # Received while the loan stood written off: a recovery whatever its value date, as long as the
    # write-off stands (CONTRACT: payments on a written_off loan are recoveries).
    recovery: bool = False
    goodwill: bool = False  # a goodwill credit: paid by the lender (Dr goodwill expense), allocated as a payment


@dataclass(frozen=True)
class WriteOff:
    seq: int
    date: date


@dataclass(frozen=True)
class Refund:
    seq: int
    date: date
    amount: int


_Date = date  # `date` is also a field name below


@dataclass(frozen=True)
class Modification:
    """An approved loan modification, effective at the start of `date` (app/domain/modifications.py)."""

    seq: int
    date: date
    kind: str  # reschedule | payment_holiday | rate_change | re_age
    new_term: int | None = None
    installment_amount: int | None = None  # minor units
    annual_rate_percent: Decimal | None = None
    next_due_date: _Date | None = None
    holiday_installments: int = 0
    holiday_interest: str = "capitalize"  # capitalize | spread | waive
    disbursed: int = 0  # kind "tranche": a further disbursement (product multi_disbursement)


Event = Payment | WriteOff | Refund | Charge | Waiver | Chargeback | Modification


@dataclass(frozen=True)
class Allocation:
    principal: int = 0
    interest: int = 0
    fees: int = 0
    penalties: int = 0
    overpayment: int = 0
    recovery: int = 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees + self.penalties + self.overpayment + self.recovery


@dataclass(slots=True)
class Installment:
    number: int
    period_start: date
    due_date: date
    principal: int
    interest: int
    fees: int = 0
    penalties: int = 0
    paid_principal: int = 0
    paid_interest: int = 0
    paid_fees: int = 0
    paid_penalties: int = 0
    late_fee_date: date | None = None
    # Forgiven by waivers: already taken off `interest`, `fees` and `penalties` (those are what is owed), kept
    # to show what was charged (app/domain/instruments.py).
    waived_interest: int = 0
    waived_fees: int = 0
    waived_penalties: int = 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.fees + self.penalties

    @property
    def paid(self) -> int:
        return self.paid_principal + self.paid_interest + self.paid_fees + self.paid_penalties

    @property
    def outstanding(self) -> int:
        return self.total - self.paid

    @property
    def outstanding_principal_interest(self) -> int:
        return self.principal - self.paid_principal + self.interest - self.paid_interest

    @property
    def due_at_once(self) -> bool:
        """Principal a chargeback made owed again: a period of no length, due the day it arose."""
        return self.period_start == self.due_date

    def status(self, as_of: date) -> str:
        if self.outstanding == 0:
            return "paid"
        if self.due_date < as_of:
            return "overdue"
        return "partially_paid" if self.paid else "pending"


@dataclass(frozen=True)
class Checkpoint:
    """Everything of a projection besides its installments: with the stored installments it is a valid
    starting state, so an event dated after it costs O(installments), not a replay (ARCHITECTURE)."""

    as_of: date
    installment_amount: int
    maturity_date: date
    credit: int = 0
    overpaid: int = 0
    refunded: int = 0
    recovered: int = 0
    closed_on: date | None = None
    written_off_on: date | None = None
    written_off: LoanTotals = field(default_factory=LoanTotals)
    recognised_at_write_off: int = 0
    readvanced: int = 0
    settled_rows: int = 0  # installments whose interest was fixed at a payoff (fully recognised)
    # Daily interest recalculation: interest accrued through `segment_start` (every closed segment rounded).
    accrued_interest: int = 0
    segment_start: date | None = None
    goodwill: int = 0  # goodwill credits received (lender-funded payments)
    fees_through: date | None = None  # installment fees are charged for periods begun by this date
    # Modifications (app/domain/modifications.py): the terms governing the open installments, and the
    # interest capitalised so far.
    regime: dict[str, str] | None = None
    capitalized: int = 0
    tranched: int = 0  # disbursed after the first disbursement (tranches)

    def to_json(self) -> dict[str, object]:
        w = self.written_off
        return {
            "as_of": self.as_of.isoformat(),
            "installment_amount": self.installment_amount,
            "maturity_date": self.maturity_date.isoformat(),
            "credit": self.credit,
            "overpaid": self.overpaid,
            "refunded": self.refunded,
            "recovered": self.recovered,
            "closed_on": self.closed_on.isoformat() if self.closed_on else None,
            "written_off_on": self.written_off_on.isoformat() if self.written_off_on else None,
            "written_off": [
                w.principal_written_off,
                w.interest_written_off,
                w.fees_written_off,
                w.penalties_written_off,
            ],
            "recognised_at_write_off": self.recognised_at_write_off,
            "readvanced": self.readvanced,
            "settled_rows": self.settled_rows,
            "accrued_interest": self.accrued_interest,
            "segment_start": self.segment_start.isoformat() if self.segment_start else None,
            "goodwill": self.goodwill,
            "fees_through": self.fees_through.isoformat() if self.fees_through else None,
            "regime": self.regime,
            "capitalized": self.capitalized,
            "tranched": self.tranched,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> "Checkpoint":
        def day(key: str) -> date | None:
            value = data.get(key)
            return date.fromisoformat(str(value)) if value else None

        wo = [int(str(x)) for x in data["written_off"]]  # type: ignore[attr-defined]
        return cls(
            as_of=date.fromisoformat(str(data["as_of"])),
            installment_amount=int(str(data["installment_amount"])),
            maturity_date=date.fromisoformat(str(data["maturity_date"])),
            credit=int(str(data["credit"])),
            overpaid=int(str(data["overpaid"])),
            refunded=int(str(data["refunded"])),
            recovered=int(str(data["recovered"])),
            closed_on=day("closed_on"),
            written_off_on=day("written_off_on"),
            written_off=LoanTotals(
                principal_written_off=wo[0],
                interest_written_off=wo[1],
                fees_written_off=wo[2],
                penalties_written_off=wo[3],
            ),
            recognised_at_write_off=int(str(data["recognised_at_write_off"])),
            readvanced=int(str(data.get("readvanced", 0))),
            settled_rows=int(str(data.get("settled_rows", 0))),
            accrued_interest=int(str(data.get("accrued_interest", 0))),
            segment_start=day("segment_start"),
            goodwill=int(str(data.get("goodwill", 0))),
            fees_through=day("fees_through"),
            regime=data.get("regime"),  # type: ignore[arg-type]
            capitalized=int(str(data.get("capitalized", 0))),
            tranched=int(str(data.get("tranched", 0))),
        )


@dataclass(frozen=True)
class AccrualSegment:
    """Interest on a constant principal over [start, end) by the day count, rounded half-up once."""

    start: date
    end: date
    principal: int
    interest: int
    projected: bool = False  # after the last event: as if every installment is paid on its due date


@dataclass
class LoanState:
    as_of: date
    status: LoanStatus
    installments: list[Installment]
    allocations: dict[int, Allocation]
    totals: LoanTotals
    installment_amount: int
    credit: int
    principal_outstanding: int
    interest_outstanding: int
    fees_outstanding: int
    penalties_outstanding: int
    days_past_due: int
    next_due: tuple[date, int] | None
    per_diem: int
    closed_on: date | None
    written_off_on: date | None
    maturity_date: date
    checkpoint: Checkpoint
    # Interest paid before it was recognised (an installment paid early): owed back at payoff, so it lowers
    # the total; a liability in the books (README "Posting rules").
    interest_in_advance: int = 0
    # The amount each write-off event took off the books (principal, interest, fees, penalties).
    write_offs: dict[int, Allocation] = field(default_factory=dict)
    # Simple-interest loans: how interest accrued, segment by segment (a full replay only; empty otherwise).
    accrual_segments: list[AccrualSegment] = field(default_factory=list)
    # Non-accrual: recognised interest held in suspense (not income) until collected; "accruing" | "non_accrual".
    interest_in_suspense: int = 0
    accrual_status: str = "accruing"

    @property
    def total_outstanding(self) -> int:
        """The payoff for the as-of date: what is owed, less interest received in advance."""
        return (
            self.principal_outstanding
            + self.interest_outstanding
            + self.fees_outstanding
            + self.penalties_outstanding
            - self.interest_in_advance
        )


class NumberedRow(Protocol):
    """An installment as the projection or the installments table holds it."""

    @property
    def number(self) -> int: ...
    @property
    def period_start(self) -> date: ...
    @property
    def due_date(self) -> date: ...


def period_numbers(rows: Sequence[NumberedRow]) -> list[int]:
    """The contractual period number of each row (numbered in order, as stored and shown): a row due at once
    takes the number of the period before it."""
    extra, out = 0, []
    for row in rows:
        extra += row.period_start == row.due_date
        out.append(row.number - extra)
    return out


def _to_periods(rows: list[Installment]) -> None:
    """Stored numbering -> the projection's (period numbers), in place."""
    for row, period in zip(rows, period_numbers(rows), strict=True):
        row.number = period


def displayed(rows: list[Installment]) -> list[Installment]:
    """The projection's rows numbered in order (the same rows when none is due at once)."""
    if not any(r.due_at_once for r in rows):
        return rows
    extra, out = 0, []
    for row in rows:
        extra += row.due_at_once
        out.append(replace(row, number=row.number + extra))
    return out


def accrual_fraction(convention: DayCount, start: date, due: date, on: date) -> tuple[int, int]:
    """Share of a period's interest recognised by the end of `on` (start <= on < due), by the day count."""
    dc = day_count(convention)
    whole = dc.days(start, due)
    if whole <= 0:
        whole = (due - start).days
        elapsed = (on - start).days
    else:
        elapsed = dc.days(start, on)
    return min(max(elapsed, 0), whole), max(whole, 1)


def recognised_interest(row: Installment, convention: DayCount, on: date) -> int:
    """Interest of `row` recognised by the end of `on`: none before its period, all of it from its due date
    (whatever was paid: money paid early is interest received in advance until it is recognised)."""
    if on >= row.due_date:
        return row.interest
    if on < row.period_start:
        return 0
    num, den = accrual_fraction(convention, row.period_start, row.due_date, on)
    return half_up_div(row.interest * num, den)


class _Projection:
    def __init__(self, terms: LoanTerms, start: tuple[Sequence[Installment], Checkpoint] | None = None) -> None:
        self.terms = terms
        st = terms.schedule
        self.cur = st.currency
        self.convention = DayCount(st.day_count)
        self.allocations: dict[int, Allocation] = {}
        self.write_offs: dict[int, Allocation] = {}
        self.will_be_written_off = False
        self.pending_recoveries: list[int] = []  # recoveries dated before the write-off (capped by it)
        self.first_open = 0  # rows before this index are settled and stay settled
        if start is None:
            schedule = generate_schedule(st)
            start = (
                self._rows(schedule.installments),
                Checkpoint(
                    st.disbursement_date,
                    to_minor(schedule.installment_amount, self.cur),
                    schedule.installments[-1].due_date,
                ),
            )
        rows, cp = start
        self.rows = [replace(r) for r in rows]
        _to_periods(self.rows)
        self.installment_amount, self.maturity_date = cp.installment_amount, cp.maturity_date
        self.credit, self.overpaid, self.refunded, self.recovered = cp.credit, cp.overpaid, cp.refunded, cp.recovered
        self.closed_on, self.written_off_on = cp.closed_on, cp.written_off_on
        self.written_off, self.recognised_at_write_off = cp.written_off, cp.recognised_at_write_off
        self.readvanced, self.settled_rows = cp.readvanced, cp.settled_rows
        self.goodwill = cp.goodwill
        self.fees_through = cp.fees_through or st.disbursement_date - timedelta(days=1)
        self.regime, self.capitalized, self.tranched = cp.regime, cp.capitalized, cp.tranched
        # Non-accrual bookkeeping (full replays only: engine never resumes such loans from a checkpoint).
        self.suspended = self.suspense_released = self.suspense_written_off = 0
        self.accounted_through = terms.schedule.disbursement_date

    def _rows(self, scheduled: Sequence[ScheduledInstallment]) -> list[Installment]:
        cur = self.cur
        return [
            Installment(r.number, r.period_start, r.due_date, to_minor(r.principal, cur), to_minor(r.interest, cur))
            for r in scheduled
        ]

    # --- queries -------------------------------------------------------------------------------------------
    def principal_outstanding(self) -> int:
        return sum(r.principal - r.paid_principal for r in self.rows[self.first_open :])

    def not_due_index(self, on: date) -> int:
        """Index of the first installment not yet due on `on` (the current one), len(rows) if none."""
        return bisect_right(self.rows, on, key=lambda r: r.due_date)

    def current_row(self, on: date) -> Installment | None:
        index = self.not_due_index(on)
        return self.rows[index] if index < len(self.rows) else None

    def open_rows(self) -> list[Installment]:
        return self.rows[self.skip_settled() :]

    def skip_settled(self) -> int:
        """Move `first_open` past installments paid in full (index of the oldest one still owing)."""
        rows = self.rows
        while self.first_open < len(rows) and rows[self.first_open].outstanding == 0:
            self.first_open += 1
        return self.first_open

    def recognised(self, on: date) -> int:
        if self.written_off_on is not None:
            return self.recognised_at_write_off
        if self.closed_on is not None and on >= self.closed_on:
            return sum(r.interest for r in self.rows)
        return sum(self.row_recognised(i, on) for i in range(len(self.rows)))

    def row_recognised(self, index: int, on: date) -> int:
        """Interest of installment `index` recognised by `on`; one settled by a payoff is recognised in full."""
        row = self.rows[index]
        return row.interest if index < self.settled_rows else recognised_interest(row, self.convention, on)

    def later_accrued(self, split: int, on: date) -> int:
        """Recognised minus paid interest of the installments from `split` on (negative: paid in advance)."""
        return sum(self.row_recognised(i, on) - self.rows[i].paid_interest for i in range(split, len(self.rows)))

    def interest_net(self, on: date) -> int:
        """Recognised minus paid interest: accrued and unpaid when positive, received in advance when negative."""
        return self.recognised(on) - sum(r.paid_interest for r in self.rows)

    def payoff(self, on: date) -> int:
        """What closes the loan by a payment dated `on` (before that day's late fees)."""
        rows = self.rows
        split = self.not_due_index(on)
        due = sum(r.outstanding for r in rows[self.first_open : split])
        later = sum(r.outstanding - r.interest + r.paid_interest for r in rows[split:])
        return due + later + self.later_accrued(split, on)

    def short_of_payoff(self, amount: int, on: date) -> bool:
        """A cheap test that `amount` cannot pay the loan off on `on` (true of most payments), so the payoff
        (interest recognised row by row) is computed only when it might: the payoff is at least the principal
        still owed less interest paid ahead on installments not yet due (every other part of it is >= 0)."""
        rows, split = self.rows, self.not_due_index(on)
        owed = sum(r.principal - r.paid_principal for r in rows[self.first_open :])
        return amount < owed - sum(r.paid_interest for r in rows[split:])

    # --- events ----------------------------------------------------------------------------------------------
    def charge_late_fees(self, through: date) -> None:
        """Charge fees whose trigger day (due + grace + 1) is on or before `through` (end of that day)."""
        rule = self.terms.late_fee
        if rule is None or self.written_off_on is not None or self.closed_on is not None:
            return
        for row in self.open_rows():
            trigger = row.due_date + timedelta(days=rule.grace_days + 1)
            if trigger > through:
                break
            if row.late_fee_date is None and row.outstanding_principal_interest > 0:
                row.penalties += rule.fee(row.outstanding_principal_interest)
                row.late_fee_date = trigger

    def account_accrual(self, through: date) -> None:
        """Non-accrual: the accrual of each day in (accounted_through, through] whose days past due (at the end
        of that day) exceed N goes to interest in suspense. No event falls inside the span, so the oldest unpaid
        installment is fixed and those days are exactly the ones after its due date + N."""
        limit, start = self.terms.non_accrual_after_days, self.accounted_through
        if limit is None or through <= start or self.written_off_on is not None:
            return
        self.accounted_through = through
        oldest = next((r for r in self.rows if r.outstanding_principal_interest > 0), None)
        if oldest is None:
            return
        begin = max(start, oldest.due_date + timedelta(days=limit))
        if through > begin:
            self.suspended += self.recognised(through) - self.recognised(begin)

    def in_suspense(self) -> int:
        return self.suspended - self.suspense_released - self.suspense_written_off

    def release_suspense(self, interest_paid: int) -> None:
        """Interest collected moves out of suspense into income, up to what suspense holds."""
        self.suspense_released += max(min(interest_paid, self.in_suspense()), 0)

    def pay(self, payment: Payment) -> Allocation:
        if self.written_off_on is not None or (payment.recovery and self.will_be_written_off):
            return self.recover(payment)
        if self.closed_on is not None:
            self.overpaid += payment.amount
            self.credit += payment.amount
            return Allocation(overpayment=payment.amount)
        on = payment.date
        self.skip_settled()  # a long-lived loan's paid installments are never walked again
        if not self.short_of_payoff(payment.amount, on) and payment.amount >= self.payoff(on):
            return self.settle(payment.amount, on)
        paid = dict.fromkeys(COMPONENTS, 0)
        remaining = payment.amount
        split = self.not_due_index(on)
        # (1) installments due on or before the payment date, oldest first
        for row in self.rows[self.first_open : split]:
            if remaining == 0:
                break
            remaining = self._pay_row(row, remaining, paid)
        # (2) the current installment as scheduled; (3) the rest by the product's prepayment option
        if remaining and split < len(self.rows):
            current = self.rows[split]
            remaining = self._pay_row(current, remaining, paid)
            if remaining:
                remaining = self._prepay(current, remaining, paid)
        if remaining:  # unreachable while the amount is below the payoff; kept as a credit, never lost
            self.credit += remaining
            self.overpaid += remaining
        return Allocation(paid["principal"], paid["interest"], paid["fees"], paid["penalties"], remaining)

    def _pay_row(self, row: Installment, remaining: int, paid: dict[str, int]) -> int:
        for component in self.terms.allocation_order:
            owed = getattr(row, component) - getattr(row, "paid_" + component)
            take = min(owed, remaining)
            if take:
                setattr(row, "paid_" + component, getattr(row, "paid_" + component) + take)
                paid[component] += take
                remaining -= take
        return remaining

    def _prepay(self, current: Installment, amount: int, paid: dict[str, int]) -> int:
        """Money beyond the (fully paid) current installment, by the product's prepayment option."""
        if self.terms.prepayment == Prepayment.pay_ahead:
            for row in self.rows[self.rows.index(current) + 1 :]:
                if amount == 0:
                    break
                amount = self._pay_row(row, amount, paid)
            return amount
        keep = self.rows.index(current)
        balance = self.principal_outstanding() - amount
        if balance <= 0 or keep + 1 >= len(self.rows):
            return amount
        # The prepaid principal shows on the current installment (as paid); later ones are rebuilt.
        current.principal += amount
        current.paid_principal += amount
        paid["principal"] += amount
        del self.rows[keep + 1 :]
        if self.regime is not None:  # a modification set new terms for the open installments
            from app.domain.modifications import rebuild_after_prepayment  # it imports this module

            self.rows += rebuild_after_prepayment(self, balance, current)
            return 0
        scale = -self.cur.minor_units
        opening = Decimal(balance).scaleb(scale)
        if self.terms.prepayment == Prepayment.reduce_installment:
            rebuilt = reamortize_keeping_maturity(self.terms.schedule, opening, current.number + 1, current.due_date)
            self.rows += self._rows(rebuilt)
            if rebuilt:
                self.installment_amount = to_minor(rebuilt[0].total, self.cur)
        else:
            self.rows += self._reamortized(balance, current.number + 1, current.due_date)
        return 0

    def settle(self, amount: int, on: date) -> Allocation:
        """Pay the loan off on `on`: everything due, later installments' fees and principal, and interest only
        as recognised through `on` — interest received in advance is credited back against the principal."""
        paid = dict.fromkeys(COMPONENTS, 0)
        split = self.not_due_index(on)
        for row in self.rows[self.first_open : split]:
            for component in COMPONENTS:
                paid[component] += getattr(row, component) - getattr(row, "paid_" + component)
        later = self.rows[split:]
        for row in later:
            paid["fees"] += row.fees - row.paid_fees
            paid["penalties"] += row.penalties - row.paid_penalties
            paid["principal"] += row.principal - row.paid_principal
        accrued = self.later_accrued(split, on)
        if accrued >= 0:
            paid["interest"] += accrued
        else:
            paid["principal"] += accrued  # credited back: less principal is needed
        self.close(on, later[0] if later else None)
        excess = amount - sum(paid.values())
        self.credit += excess
        self.overpaid += excess
        return Allocation(paid["principal"], paid["interest"], paid["fees"], paid["penalties"], excess)

    def close(self, on: date, current: Installment | None) -> None:
        """Paid off on `on`: the current period's interest is cut to what had accrued, later rows fold in."""
        if current is not None:
            keep = self.rows.index(current)
            later = self.rows[keep + 1 :]
            current.interest = self.row_recognised(keep, on)
            current.principal += sum(r.principal for r in later)
            current.fees += sum(r.fees for r in later)
            current.penalties += sum(r.penalties for r in later)
            current.waived_fees += sum(r.waived_fees for r in later)
            current.waived_penalties += sum(r.waived_penalties for r in later)
            current.waived_interest += sum(r.waived_interest for r in later)
            del self.rows[keep + 1 :]
        for row in self.rows:
            row.paid_principal, row.paid_interest = row.principal, row.interest
            row.paid_fees, row.paid_penalties = row.fees, row.penalties
        self.closed_on = on
        self.settled_rows = len(self.rows)

    def after_event(self, on: date) -> None:
        """Hook for projections that re-estimate open installments after each event."""

    def _reamortized(self, balance: int, from_number: int, period_start: date) -> list[Installment]:
        if balance <= 0:
            return []
        scale = -self.cur.minor_units
        rebuilt = reamortize(
            self.terms.schedule,
            Decimal(balance).scaleb(scale),
            from_number,
            period_start,
            Decimal(self.installment_amount).scaleb(scale),
        )
        return self._rows(rebuilt)

    def _release_interest_in_advance(self, on: date) -> None:
        """Interest received for days after `on` stops being interest: it pays principal instead."""
        excess = 0
        split = self.not_due_index(on)
        for index, row in enumerate(self.rows[split:], split):
            recognised = self.row_recognised(index, on)
            if row.paid_interest > recognised:
                excess += row.paid_interest - recognised
                row.paid_interest = recognised
        for row in self.rows:
            if excess == 0:
                break
            take = min(row.principal - row.paid_principal, excess)
            row.paid_principal += take
            excess -= take

    def write_off(self, seq: int, on: date) -> None:
        self.account_accrual(on)
        self.suspense_written_off += self.in_suspense()  # never income: written off against suspense
        self._release_interest_in_advance(on)
        recognised = self.recognised(on)
        rows = self.rows
        self.written_off = LoanTotals(
            principal_written_off=self.principal_outstanding(),
            interest_written_off=recognised - sum(r.paid_interest for r in rows),
            fees_written_off=sum(r.fees - r.paid_fees for r in rows),
            penalties_written_off=sum(r.penalties - r.paid_penalties for r in rows),
        )
        w = self.written_off
        self.write_offs[seq] = Allocation(
            w.principal_written_off, w.interest_written_off, w.fees_written_off, w.penalties_written_off
        )
        self.recognised_at_write_off = recognised
        self.written_off_on = on
        # Recoveries dated before the write-off (posted while it stood) are capped by it too.
        pending, self.pending_recoveries = self.pending_recoveries, []
        self.recovered = 0
        for recovery_seq in pending:
            self.allocations[recovery_seq] = self._capped_recovery(self.allocations[recovery_seq].total)

    def _written_off_total(self) -> int:
        w = self.written_off
        return w.principal_written_off + w.interest_written_off + w.fees_written_off + w.penalties_written_off

    def recover(self, payment: Payment) -> Allocation:
        if self.written_off_on is None:  # dated before the write-off it was received under: capped there
            self.pending_recoveries.append(payment.seq)
            self.recovered += payment.amount
            return Allocation(recovery=payment.amount)
        return self._capped_recovery(payment.amount)

    def _capped_recovery(self, amount: int) -> Allocation:
        """Recovery income up to the amount written off; any excess is the borrower's credit (refundable)."""
        recovered = min(amount, max(self._written_off_total() - self.recovered, 0))
        excess = amount - recovered
        self.recovered += recovered
        self.credit += excess
        self.overpaid += excess
        return Allocation(recovery=recovered, overpayment=excess)

    def refund(self, refund: Refund) -> None:
        """Pay out credit. A refund larger than the credit can only come from a replay (the payment that made
        the credit was reversed): the uncovered part is principal the borrower owes again (CONTRACT Loans)."""
        covered = min(refund.amount, self.credit)
        uncovered = refund.amount - covered
        self.credit -= covered
        self.refunded += refund.amount
        if uncovered:
            self._readvance(uncovered, refund.date)

    def _readvance(self, amount: int, on: date) -> None:
        """Principal owed again from `on`: with the installment falling due next, or due at once on `on` when
        none is left; a paid-off loan reopens. On a written-off loan it is written off at once."""
        if not self._owed_again(amount):
            return
        index = bisect_right(self.rows, on - timedelta(days=1), key=lambda r: r.due_date)  # first due >= on
        if index < len(self.rows):
            self.rows[index].principal += amount
            self.first_open = min(self.first_open, index)
            return
        last = self.rows[-1]
        self.rows.append(Installment(last.number + 1, last.due_date, on, amount, 0))

    # --- servicing instruments (app/domain/instruments.py) ----------------------------------------------------
    def charge_installment_fees(self, through: date) -> None:
        """Charge each installment's fees when its period begins (the first at disbursement), so paying the
        current installment as scheduled, early or on time, pays its fee; never twice (`fees_through`)."""
        rules = self.terms.installment_fees
        if not rules or through <= self.fees_through:
            return
        if self.closed_on is None and self.written_off_on is None:
            for index, row in enumerate(self.rows):
                contractual = row.number <= self.terms.schedule.term and not row.due_at_once
                if contractual and self.fees_through < row.period_start <= through:
                    row.fees += installment_fee(rules, row.principal, row.interest)
                    self.first_open = min(self.first_open, index)
        self.fees_through = through

    def instrument(self, event: Charge | Waiver | Chargeback) -> Allocation:
        if isinstance(event, Charge):
            return self.charge(event)
        if isinstance(event, Waiver):
            return self.waive(event)
        return self.charge_back(event)

    def charge(self, charge: Charge) -> Allocation:
        """A fee owed from its date, on the installment whose period holds that date."""
        if self.written_off_on is not None or not self.rows:
            return Allocation()
        index = min(
            bisect_right(self.rows, charge.date - timedelta(days=1), key=lambda r: r.due_date), len(self.rows) - 1
        )
        self.rows[index].fees += charge.amount
        self.first_open = min(self.first_open, index)
        self.closed_on = None  # a fee on a paid-off loan reopens it (the lifecycle books none; a replay may)
        return Allocation(fees=charge.amount)

    def waive(self, waiver: Waiver) -> Allocation:
        """Forgive owed amounts of one bucket, oldest installment first; never more than is owed."""
        if self.written_off_on is not None or self.closed_on is not None:
            return Allocation()
        component, remaining = waiver.bucket.value, waiver.amount
        for row in self.open_rows():
            if remaining == 0 or (component == "interest" and row.due_date > waiver.date):
                break
            take = min(getattr(row, component) - getattr(row, "paid_" + component), remaining)
            setattr(row, component, getattr(row, component) - take)
            setattr(row, "waived_" + component, getattr(row, "waived_" + component) + take)
            remaining -= take
        return Allocation(**{component: waiver.amount - remaining})

    def charge_back(self, chargeback: Chargeback) -> Allocation:
        """Money of a repayment returned to its payer: paid out of the credit balance first, the rest principal
        owed again and due at once (CONTRACT "Servicing instruments")."""
        covered = min(chargeback.amount, self.credit)
        uncovered = chargeback.amount - covered
        self.credit -= covered
        self.refunded += chargeback.amount
        if uncovered:
            self._owe_at_once(uncovered, chargeback.date)
        return Allocation(principal=uncovered, overpayment=covered)

    def _owed_again(self, amount: int) -> bool:
        """Count principal owed again; on a written-off loan it is written off at once (answers False: nothing
        to place), otherwise the loan reopens (True: the caller places it on an installment)."""
        self.readvanced += amount
        if self.written_off_on is not None:
            w = self.written_off
            self.written_off = replace(w, principal_written_off=w.principal_written_off + amount)
            return False
        self.closed_on = None
        return True

    def _owe_at_once(self, amount: int, on: date) -> None:
        """Principal owed again and due on `on` itself: an installment of its own after those due by then (so
        the next payment pays it after any older arrears); a paid-off loan reopens. On a written-off loan it
        is written off at once."""
        if not self._owed_again(amount):
            return
        index = self.not_due_index(on)
        period = self.rows[index - 1].number if index else 0  # see the module docstring
        self.rows.insert(index, Installment(period, on, on, amount, 0))
        if index < self.settled_rows:
            self.settled_rows += 1  # a row settled by a payoff moved up one place
        self.first_open = min(self.first_open, index)

    # --- result ----------------------------------------------------------------------------------------------
    def totals(self, as_of: date) -> LoanTotals:
        rows = self.rows
        return (
            LoanTotals(
                disbursed=to_minor(self.terms.schedule.principal, self.cur) + self.tranched,
                principal_paid=sum(r.paid_principal for r in rows),
                interest_recognized=self.recognised(as_of),
                interest_paid=sum(r.paid_interest for r in rows),
                fees_charged=sum(r.fees for r in rows) + self.terms.disbursement_fees,
                fees_paid=sum(r.paid_fees for r in rows) + self.terms.disbursement_fees,
                penalties_charged=sum(r.penalties for r in rows),
                penalties_paid=sum(r.paid_penalties for r in rows),
                recovered=self.recovered,
                overpaid=self.overpaid,
                refunded=self.refunded,
                principal_readvanced=self.readvanced,
                goodwill_credited=self.goodwill,
                interest_capitalized=self.capitalized,
                interest_suspended=self.suspended,
                suspense_released=self.suspense_released,
                suspense_written_off=self.suspense_written_off,
            )
            + self.written_off
        )

    def status(self) -> LoanStatus:
        if self.written_off_on is not None:
            return LoanStatus.written_off
        if self.closed_on is not None:
            return LoanStatus.overpaid if self.credit else LoanStatus.closed
        return LoanStatus.active

    def per_diem(self, on: date) -> int:
        """What one more day adds to the payoff: the interest recognised on the next day (CONTRACT payoff)."""
        return self.recognised(on + timedelta(days=1)) - self.recognised(on)

    def state(self, as_of: date) -> LoanState:
        status = self.status()
        open_loan = status == LoanStatus.active
        overdue = [r for r in self.rows if r.due_date < as_of and r.outstanding_principal_interest > 0]
        upcoming = next((r for r in self.rows if r.due_date >= as_of and r.outstanding > 0), None)
        arrears = sum(r.outstanding for r in self.rows if r.due_date < as_of)
        next_due = None
        if open_loan and upcoming is not None:
            next_due = (upcoming.due_date, upcoming.outstanding + arrears)
        elif open_loan and overdue:
            next_due = (overdue[0].due_date, arrears)
        net = self.interest_net(as_of) if open_loan else 0
        return LoanState(
            as_of=as_of,
            status=status,
            installments=displayed(self.rows),
            allocations=self.allocations,
            totals=self.totals(as_of),
            installment_amount=self.installment_amount,
            credit=self.credit,
            principal_outstanding=self.principal_outstanding() if open_loan else 0,
            interest_outstanding=max(net, 0),
            fees_outstanding=sum(r.fees - r.paid_fees for r in self.rows) if open_loan else 0,
            penalties_outstanding=sum(r.penalties - r.paid_penalties for r in self.rows) if open_loan else 0,
            days_past_due=(as_of - overdue[0].due_date).days if open_loan and overdue else 0,
            next_due=next_due,
            per_diem=self.per_diem(as_of) if open_loan else 0,
            closed_on=self.closed_on,
            written_off_on=self.written_off_on,
            maturity_date=self.rows[-1].due_date if self.rows else self.maturity_date,
            checkpoint=Checkpoint(
                as_of,
                self.installment_amount,
                self.maturity_date,
                self.credit,
                self.overpaid,
                self.refunded,
                self.recovered,
                self.closed_on,
                self.written_off_on,
                self.written_off,
                self.recognised_at_write_off,
                self.readvanced,
                self.settled_rows,
                goodwill=self.goodwill,
                fees_through=self.fees_through,
                regime=self.regime,
                capitalized=self.capitalized,
                tranched=self.tranched,
            ),
            interest_in_advance=max(-net, 0),
            write_offs=self.write_offs,
            interest_in_suspense=self.in_suspense(),
            accrual_status=self._accrual_status(as_of, open_loan, overdue),
        )

    def _accrual_status(self, as_of: date, open_loan: bool, overdue: list[Installment]) -> str:
        limit = self.terms.non_accrual_after_days
        late = open_loan and overdue and limit is not None and (as_of - overdue[0].due_date).days > limit
        return "non_accrual" if late else "accruing"


def _projection(terms: LoanTerms, start: tuple[Sequence[Installment], Checkpoint] | None = None) -> "_Projection":
    if terms.interest_recalculation == InterestRecalculation.daily:
        from app.domain.simple_interest import DailyProjection  # a subclass of _Projection: import cycle

        return DailyProjection(terms, start)
    return _Projection(terms, start)


def project(terms: LoanTerms, events: Sequence[Event], as_of: date) -> LoanState:
    """The loan as it stands at the end of `as_of`, from its terms and its (non-reversed) events."""
    return _run(_projection(terms), events, as_of)


def resume(
    terms: LoanTerms, rows: Sequence[Installment], checkpoint: Checkpoint, events: Sequence[Event], as_of: date
) -> LoanState:
    """Continue a projection from a stored state (its installments and checkpoint) with events dated after
    it: equal to `project()` over all events whenever no event is dated on or before `checkpoint.as_of`
    (on the checkpoint's own date only when no late fee was charged that day)."""
    return _run(_projection(terms, (rows, checkpoint)), events, as_of)


def payoff_quote(terms: LoanTerms, events: Sequence[Event], on: date) -> LoanState:
    """What closes the loan if paid on `on`: the state at the end of `on` except late fees triggered that very
    day, because a payment dated `on` settles before the day's fees are charged."""
    return _run(_projection(terms), events, on, fees_through=on - timedelta(days=1))


def can_resume(
    checkpoint: Checkpoint, rows: Sequence[Installment], event_date: date, latest_other: date | None
) -> bool:
    if latest_other is not None and event_date < latest_other:
        return False
    if event_date > checkpoint.as_of:
        return True
    return event_date == checkpoint.as_of and all(r.late_fee_date != event_date for r in rows)


def _run(
    projection: "_Projection", events: Sequence[Event], as_of: date, fees_through: date | None = None
) -> LoanState:
    projection.will_be_written_off = projection.written_off_on is not None or any(
        isinstance(e, WriteOff) for e in events
    )
    for event in sorted(events, key=lambda e: (e.date, e.seq)):
        if event.date > as_of:
            break
        projection.charge_late_fees(event.date - timedelta(days=1))
        projection.charge_installment_fees(event.date)
        projection.account_accrual(event.date - timedelta(days=1))
        if isinstance(event, Payment):
            projection.allocations[event.seq] = projection.pay(event)
            projection.release_suspense(projection.allocations[event.seq].interest)
            if event.goodwill:
                projection.goodwill += event.amount
        elif isinstance(event, WriteOff):
            if projection.written_off_on is None and projection.closed_on is None:
                projection.write_off(event.seq, event.date)
        elif isinstance(event, Modification):
            from app.domain.modifications import apply_modification  # it imports this module

            apply_modification(projection, event)
        elif isinstance(event, Refund):
            projection.refund(event)
        else:
            projection.allocations[event.seq] = projection.instrument(event)
        projection.after_event(event.date)
    projection.charge_late_fees(as_of if fees_through is None else fees_through)
    projection.charge_installment_fees(as_of)
    projection.account_accrual(as_of)
    return projection.state(as_of)
