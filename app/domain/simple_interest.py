"""Daily interest recalculation (`interest_recalculation: daily`): simple interest as US auto lenders and many
microfinance lenders service loans (CONTRACT "Servicing instruments").

- Interest accrues each day on the principal actually outstanding, by the loan's actual/* day count. Accrual
  runs in segments that end at every due date and every event; each segment is rounded half-up once, so a
  loan paid exactly on its due dates accrues exactly the fixed schedule's interest.
- A payment takes interest accrued to its date first (after penalties and fees in the product's order);
  everything else is principal, so an early payment lowers total interest and a late one raises it.
- Installments are amounts due (the fixed schedule's totals). One is paid once that much was received for it,
  however early. Its principal/interest split is what the money paid; for installments still open it is
  projected assuming each is paid on its due date, and the last installment takes whatever remains.
- `prepayment`: `reduce_term` keeps the amounts (the last installments fall away), `reduce_installment`
  re-levels the later amounts over the same maturity, `pay_ahead` counts the money towards the next
  installments in order. In every mode the money reduces principal on the day it is received.
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal
from itertools import pairwise

from app.domain.calendar import day_count, due_dates
from app.domain.instruments import Chargeback
from app.domain.money import to_minor
from app.domain.schedule import half_up_div, reamortize_keeping_maturity
from app.domain.servicing import (
    COMPONENTS,
    AccrualSegment,
    Allocation,
    Checkpoint,
    Installment,
    LoanState,
    LoanTerms,
    Payment,
    Prepayment,
    Refund,
    _Projection,
)


class DailyProjection(_Projection):
    def __init__(self, terms: LoanTerms, start: tuple[Sequence[Installment], Checkpoint] | None = None) -> None:
        super().__init__(terms, start)
        checkpoint = start[1] if start is not None else None
        st = terms.schedule
        self.accrued = checkpoint.accrued_interest if checkpoint is not None else 0
        self.segment_start = (checkpoint.segment_start if checkpoint is not None else None) or st.disbursement_date
        self.day_count = day_count(self.convention)
        # Accrual segments end at the contractual due dates (never at the current rows' dates, which change).
        self.grid = due_dates(st.disbursement_date, st.frequency, st.term, st.first_payment_date)
        numerator, denominator = Decimal(st.annual_rate_percent).as_integer_ratio()
        self.rate = (numerator, denominator * 100)
        self.segments: list[AccrualSegment] = []  # closed segments, in order (a replay from disbursement)

    def principal_outstanding(self) -> int:
        """The principal actually owed, independent of how open installments are currently split."""
        lent = to_minor(self.terms.schedule.principal, self.cur) + self.readvanced
        return lent - sum(r.paid_principal for r in self.rows)

    # --- accrual ---------------------------------------------------------------------------------------------
    def _segment(self, principal: int, start: date, end: date) -> int:
        if end <= start or principal <= 0:
            return 0
        frac_num, frac_den = self.day_count.fraction(start, end)
        return half_up_div(principal * self.rate[0] * frac_num, self.rate[1] * frac_den)

    def split(self, principal: int, start: date, end: date, projected: bool = False) -> list[AccrualSegment]:
        """The segments from `start` to `end` on a constant principal: one per period (due dates cut them)."""
        bounds = [due for due in self.grid[bisect_right(self.grid, start) :] if due < end]
        edges = [start, *bounds, end]
        return [
            AccrualSegment(a, b, principal, self._segment(principal, a, b), projected)
            for a, b in pairwise(edges)
            if b > a
        ]

    def accrual_between(self, principal: int, start: date, end: date) -> int:
        """Interest on a constant principal from `start` through `end`, one rounded segment per period."""
        return sum(s.interest for s in self.split(principal, start, end))

    def accrue_to(self, on: date) -> None:
        if on > self.segment_start:
            closed = self.split(self.principal_outstanding(), self.segment_start, on)
            self.segments += closed
            self.accrued += sum(s.interest for s in closed)
            self.segment_start = on

    def recognised(self, on: date) -> int:
        if self.written_off_on is not None:
            return self.recognised_at_write_off
        if self.closed_on is not None and on >= self.closed_on:
            return sum(r.interest for r in self.rows)
        if on <= self.segment_start:
            return self.accrued
        return self.accrued + self.accrual_between(self.principal_outstanding(), self.segment_start, on)

    def interest_paid(self) -> int:
        return sum(r.paid_interest for r in self.rows)

    def payoff(self, on: date) -> int:
        rows = self.rows[self.first_open :]
        charges = sum(r.fees - r.paid_fees + r.penalties - r.paid_penalties for r in rows)
        return charges + self.principal_outstanding() + self.recognised(on) - self.interest_paid()

    # --- events ----------------------------------------------------------------------------------------------
    def pay(self, payment: Payment) -> Allocation:
        if self.written_off_on is not None or self.closed_on is not None or payment.recovery:
            return super().pay(payment)
        on = payment.date
        self.accrue_to(on)
        if payment.amount >= self.payoff(on):
            return self.settle(payment.amount, on)
        paid = dict.fromkeys(COMPONENTS, 0)
        remaining = payment.amount
        split = self.not_due_index(on)
        due_rows = self.rows[self.first_open : split + 1]  # installments due by then and the current one
        interest_taken = 0
        for component in self.terms.allocation_order:
            if component == "principal":
                continue  # simple interest: principal takes whatever is left, last
            if component == "interest":
                interest_taken = min(remaining, self.accrued - self.interest_paid())
                remaining -= interest_taken
                paid["interest"] += interest_taken
                continue
            for row in due_rows:
                take = min(getattr(row, component) - getattr(row, "paid_" + component), remaining)
                setattr(row, "paid_" + component, getattr(row, "paid_" + component) + take)
                paid[component] += take
                remaining -= take
        paid["principal"] = remaining
        self._receive(interest_taken, remaining, split)
        return Allocation(paid["principal"], paid["interest"], paid["fees"], paid["penalties"])

    def _receive(self, interest: int, principal: int, split: int) -> None:
        """Count the money towards installments oldest first, interest before principal within each: the ones
        due and the current one; later ones too with `pay_ahead`. Money beyond them prepays principal and
        shows on the current installment (as in the fixed-schedule projection)."""
        last = len(self.rows) - 1 if self.terms.prepayment == Prepayment.pay_ahead else min(split, len(self.rows) - 1)
        for row in self.rows[self.first_open : last + 1]:
            room = row.principal + row.interest - row.paid_principal - row.paid_interest
            take = min(interest, room)
            row.paid_interest += take
            interest -= take
            take = min(principal, room - take)
            row.paid_principal += take
            principal -= take
            if row.paid_principal + row.paid_interest == row.principal + row.interest:
                row.principal, row.interest = row.paid_principal, row.paid_interest
        if interest or principal:
            target = self.rows[last]
            target.paid_interest += interest
            target.paid_principal += principal
            target.interest = max(target.interest, target.paid_interest)
            target.principal = max(target.principal, target.paid_principal)
            if self.terms.prepayment == Prepayment.reduce_installment and principal:
                self._relevel_after(target)

    def _relevel_after(self, current: Installment) -> None:
        """reduce_installment: the installments after `current` get a new level amount over the same maturity."""
        keep = self.rows.index(current)
        later = self.rows[keep + 1 :]
        if not later:
            return
        balance = self.principal_outstanding()
        if balance <= 0:
            return
        scale = -self.cur.minor_units
        rebuilt = reamortize_keeping_maturity(
            self.terms.schedule, Decimal(balance).scaleb(scale), current.number + 1, current.due_date
        )
        for row, fresh in zip(later, rebuilt, strict=False):
            row.principal, row.interest = to_minor(fresh.principal, self.cur), to_minor(fresh.interest, self.cur)
        if rebuilt:
            self.installment_amount = to_minor(rebuilt[0].total, self.cur)

    def settle(self, amount: int, on: date) -> Allocation:
        open_rows = self.open_rows()
        fees = sum(r.fees - r.paid_fees for r in open_rows)
        penalties = sum(r.penalties - r.paid_penalties for r in open_rows)
        interest = self.accrued - self.interest_paid()
        principal = self.principal_outstanding()
        if open_rows:
            first = open_rows[0]
            first.interest = sum(r.paid_interest for r in open_rows) + interest
            first.principal = sum(r.paid_principal for r in open_rows) + principal
            first.fees = sum(r.fees for r in open_rows)
            first.penalties = sum(r.penalties for r in open_rows)
            del self.rows[self.rows.index(first) + 1 :]
        elif self.rows:
            self.rows[-1].interest += interest
        for row in self.rows:
            row.paid_principal, row.paid_interest = row.principal, row.interest
            row.paid_fees, row.paid_penalties = row.fees, row.penalties
        self.closed_on = on
        self.settled_rows = len(self.rows)
        excess = amount - fees - penalties - interest - principal
        self.credit += excess
        self.overpaid += excess
        return Allocation(principal, interest, fees, penalties, excess)

    def _release_interest_in_advance(self, on: date) -> None:
        """Simple interest is never taken before it accrues."""

    def write_off(self, seq: int, on: date) -> None:
        self.accrue_to(on)
        super().write_off(seq, on)

    def refund(self, refund: Refund) -> None:
        if self.written_off_on is None and self.closed_on is None:
            self.accrue_to(refund.date)
        super().refund(refund)

    def charge_back(self, chargeback: Chargeback) -> Allocation:
        if self.written_off_on is None and self.closed_on is None:
            self.accrue_to(chargeback.date)
        return super().charge_back(chargeback)

    def after_event(self, on: date) -> None:
        if self.closed_on is None and self.written_off_on is None:
            self.reestimate()

    def reestimate(self) -> None:
        """Project the open installments from the last event: each paid its amount on its due date (one already
        overdue then, on that date), interest accrued by then first; the last takes whatever principal and
        interest remain. It depends only on the state after the last event, so resuming equals replaying."""
        self.open_rows()
        # Principal due at once (a chargeback) is already due: assumed paid now, it is not spread.
        at_once = [r for r in self.rows[self.first_open :] if r.due_at_once]
        principal = self.principal_outstanding() - sum(r.principal - r.paid_principal for r in at_once)
        interest = self.accrued - self.interest_paid()
        day = self.segment_start
        existing = {r.number: r for r in self.rows[self.first_open :] if not r.due_at_once}
        rebuilt = self.rows[: self.first_open]
        first = min(existing) if existing else (self.rows[-1].number + 1 if self.rows else 1)
        last = max(self.terms.schedule.term, max(existing, default=0))
        for number in range(first, last + 1):
            row = existing.get(number) or self._grid_row(number)
            received = row.paid_principal + row.paid_interest
            if received and received >= row.principal + row.interest:
                rebuilt.append(row)  # paid ahead: settled as received
                continue
            if row.due_date > day:
                interest += self.accrual_between(principal, day, row.due_date)
                day = row.due_date
            take_interest = min(max(self.installment_amount - received, 0), interest)
            take_principal = min(max(self.installment_amount - received - take_interest, 0), principal)
            if number == last or take_principal >= principal:
                row.interest, row.principal = row.paid_interest + interest, row.paid_principal + principal
                rebuilt.append(row)
                break
            row.interest, row.principal = row.paid_interest + take_interest, row.paid_principal + take_principal
            interest -= take_interest
            principal -= take_principal
            rebuilt.append(row)
        if at_once:  # back in due-date order, after the installments due the same day (stable sort)
            rebuilt = sorted(rebuilt + at_once, key=lambda r: r.due_date)
        self.rows = rebuilt

    def _grid_row(self, number: int) -> Installment:
        start = self.grid[number - 2] if number > 1 else self.terms.schedule.disbursement_date
        return Installment(number, start, self.grid[number - 1], 0, 0)

    def _readvance(self, amount: int, on: date) -> None:
        """Principal owed again: with simple interest it accrues interest and the last installment takes it
        (a paid-off loan reopens with it due at once, as in the fixed-schedule projection)."""
        if self.written_off_on is not None or self.closed_on is not None:
            super()._readvance(amount, on)
            return
        self.readvanced += amount

    def state(self, as_of: date) -> LoanState:
        state = super().state(as_of)
        state.checkpoint = replace(state.checkpoint, accrued_interest=self.accrued, segment_start=self.segment_start)
        state.accrual_segments = list(self.segments)
        if state.status.value == "active" and self.rows:
            # what the open installments assume: the current principal until each is paid on its due date
            principal, day = self.principal_outstanding(), self.segment_start
            for row in self.rows[self.first_open :]:
                if row.due_date > day:
                    state.accrual_segments += self.split(principal, day, row.due_date, projected=True)
                    day = row.due_date
                principal -= row.principal - row.paid_principal
        return state
