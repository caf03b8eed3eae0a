"""The projection: `project(terms, events, as_of) -> LoanState`, the single source of every number of a
disbursed loan. Pure and deterministic; works in integer minor units of the loan's currency.

Conventions (README "Servicing"):
- Interest is scheduled per installment (`schedule.py`); within a period it is recognised (accrued) in
  proportion to the day count's days elapsed, rounded half-up, so the accrual at the due date is exactly the
  installment's interest.
- Allocation of a payment dated d: installments due on or before d, oldest first, each by the product's
  order (default penalties -> fees -> interest -> principal); then the interest accrued in the current period
  up to d; the rest prepays principal. A prepayment keeps the installment amount and shortens the term: the
  installments after the current one are re-amortised from the lower balance (the current period's
  scheduled interest stands). A payment at least the payoff for its date closes the loan: the current
  period's interest is cut to what had accrued, and any excess is an overpayment (a credit balance).
- A late fee is charged once per installment at the end of the first day its days past due exceed the
  product's grace days, if it is still unpaid then (after that day's payments): fixed amount or percent of
  the installment's overdue principal and interest.
- Days past due = as-of date - the oldest unpaid due date (principal or interest unpaid).
"""

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from app.domain.calendar import DayCount, day_count, is_leap
from app.domain.errors import DomainValidationError
from app.domain.lifecycle import LoanStatus
from app.domain.money import to_minor
from app.domain.postings import LoanTotals
from app.domain.schedule import (
    ScheduledInstallment,
    ScheduleTerms,
    generate_schedule,
    half_up_div,
    reamortize,
)

COMPONENTS = ("penalties", "fees", "interest", "principal")
DEFAULT_ALLOCATION_ORDER = COMPONENTS


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


@dataclass(frozen=True)
class Payment:
    seq: int
    date: date
    amount: int
    # Received while the loan stood written off: a recovery whatever its value date, as long as the
    # write-off stands (CONTRACT: payments on a written_off loan are recoveries).
    recovery: bool = False


@dataclass(frozen=True)
class WriteOff:
    seq: int
    date: date


@dataclass(frozen=True)
class Refund:
    seq: int
    date: date
    amount: int


Event = Payment | WriteOff | Refund


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

    def status(self, as_of: date) -> str:
        if self.outstanding == 0:
            return "paid"
        if self.due_date < as_of:
            return "overdue"
        return "partially_paid" if self.paid else "pending"


class PaymentRejected(DomainValidationError):
    pass


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
        )


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

    @property
    def total_outstanding(self) -> int:
        return (
            self.principal_outstanding + self.interest_outstanding + self.fees_outstanding + self.penalties_outstanding
        )


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
    if on >= row.due_date:
        return row.interest
    if on < row.period_start:
        return row.paid_interest
    num, den = accrual_fraction(convention, row.period_start, row.due_date, on)
    return max(half_up_div(row.interest * num, den), row.paid_interest)


class _Projection:
    def __init__(self, terms: LoanTerms, start: tuple[Sequence[Installment], Checkpoint] | None = None) -> None:
        self.terms = terms
        st = terms.schedule
        self.cur = st.currency
        self.convention = DayCount(st.day_count)
        self.allocations: dict[int, Allocation] = {}
        self.will_be_written_off = False
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
        self.installment_amount, self.maturity_date = cp.installment_amount, cp.maturity_date
        self.credit, self.overpaid, self.refunded, self.recovered = cp.credit, cp.overpaid, cp.refunded, cp.recovered
        self.closed_on, self.written_off_on = cp.closed_on, cp.written_off_on
        self.written_off, self.recognised_at_write_off = cp.written_off, cp.recognised_at_write_off

    def _rows(self, scheduled: Sequence[ScheduledInstallment]) -> list[Installment]:
        cur = self.cur
        return [
            Installment(r.number, r.period_start, r.due_date, to_minor(r.principal, cur), to_minor(r.interest, cur))
            for r in scheduled
        ]

    # --- queries -------------------------------------------------------------------------------------------
    def principal_outstanding(self) -> int:
        return sum(r.principal - r.paid_principal for r in self.rows[self.first_open :])

    def current_row(self, on: date) -> Installment | None:
        index = bisect_right(self.rows, on, key=lambda r: r.due_date)
        return self.rows[index] if index < len(self.rows) else None

    def open_rows(self) -> list[Installment]:
        rows = self.rows
        while self.first_open < len(rows) and rows[self.first_open].outstanding == 0:
            self.first_open += 1
        return rows[self.first_open :]

    def recognised(self, on: date) -> int:
        if self.written_off_on is not None:
            return self.recognised_at_write_off
        if self.closed_on is not None and on >= self.closed_on:
            return sum(r.interest for r in self.rows)
        return sum(recognised_interest(r, self.convention, on) for r in self.rows)

    def accrued_unpaid(self, on: date) -> int:
        return self.recognised(on) - sum(r.paid_interest for r in self.rows)

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

    def pay(self, payment: Payment) -> Allocation:
        if self.written_off_on is not None or (payment.recovery and self.will_be_written_off):
            self.recovered += payment.amount
            return Allocation(recovery=payment.amount)
        if self.closed_on is not None:
            self.overpaid += payment.amount
            self.credit += payment.amount
            return Allocation(overpayment=payment.amount)
        remaining = payment.amount
        paid = dict.fromkeys(COMPONENTS, 0)
        for row in self.open_rows():
            if row.due_date > payment.date or remaining == 0:
                break
            for component in self.terms.allocation_order:
                owed = getattr(row, component) - getattr(row, "paid_" + component)
                take = min(owed, remaining)
                if take:
                    setattr(row, "paid_" + component, getattr(row, "paid_" + component) + take)
                    paid[component] += take
                    remaining -= take
        current = self.current_row(payment.date)
        if current is not None and remaining:
            accrued = recognised_interest(current, self.convention, payment.date) - current.paid_interest
            take = min(accrued, remaining)
            current.paid_interest += take
            paid["interest"] += take
            remaining -= take
        # Money left over means every installment due by the payment date is settled (step one took it all).
        if remaining:
            principal_left = self.principal_outstanding()
            if remaining >= principal_left and (
                current is None or current.paid_interest >= recognised_interest(current, self.convention, payment.date)
            ):
                paid["principal"] += principal_left
                remaining -= principal_left
                self.close(payment.date, current)
                self.credit += remaining
                self.overpaid += remaining
                return Allocation(paid["principal"], paid["interest"], paid["fees"], paid["penalties"], remaining)
            if current is not None:
                self.prepay(current, remaining, payment.date)
                paid["principal"] += remaining
                remaining = 0
        if not self.open_rows():
            self.close(payment.date, None)
        if remaining:
            # Nothing due is left unpaid and no principal remains: the excess is a credit balance.
            self.credit += remaining
            self.overpaid += remaining
        return Allocation(paid["principal"], paid["interest"], paid["fees"], paid["penalties"], remaining)

    def close(self, on: date, current: Installment | None) -> None:
        """Paid off on `on`: the current period's interest is cut to what had accrued, later rows fold in."""
        if current is not None:
            keep = self.rows.index(current)
            later = self.rows[keep + 1 :]
            current.interest = current.paid_interest
            current.principal += sum(r.principal for r in later)
            current.paid_principal = current.principal
            del self.rows[keep + 1 :]
        for row in self.rows:
            row.paid_principal = row.principal
        self.closed_on = on

    def prepay(self, current: Installment, amount: int, on: date) -> None:
        """Prepay principal on `on`, inside `current`'s period: later installments are re-amortised from the
        lower balance. When nothing of the current period has accrued yet (a payment on its first day), the
        current installment is re-amortised too, so no interest is charged on principal repaid in advance."""
        keep = self.rows.index(current)
        after_prepayment = self.principal_outstanding() - amount
        fresh = current.paid_interest == 0 and recognised_interest(current, self.convention, on) == 0
        if fresh:
            carried = current.paid_principal + amount
            del self.rows[keep:]
            rebuilt = self._reamortized(after_prepayment, current.number, current.period_start)
            first = rebuilt[0] if rebuilt else Installment(current.number, current.period_start, current.due_date, 0, 0)
            first.principal += carried
            first.paid_principal += carried
            self.rows += rebuilt or [first]
            return
        scheduled_unpaid = min(current.principal - current.paid_principal, after_prepayment)
        current.principal = current.paid_principal + amount + scheduled_unpaid
        current.paid_principal += amount
        balance = after_prepayment - scheduled_unpaid
        del self.rows[keep + 1 :]
        if balance <= 0 or current.number >= self.terms.schedule.term:
            current.principal += max(balance, 0)
            return
        self.rows += self._reamortized(balance, current.number + 1, current.due_date)

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

    def write_off(self, on: date) -> None:
        recognised = self.recognised(on)
        rows = self.rows
        self.written_off = LoanTotals(
            principal_written_off=self.principal_outstanding(),
            interest_written_off=recognised - sum(r.paid_interest for r in rows),
            fees_written_off=sum(r.fees - r.paid_fees for r in rows),
            penalties_written_off=sum(r.penalties - r.paid_penalties for r in rows),
        )
        self.recognised_at_write_off = recognised
        self.written_off_on = on

    def refund(self, refund: Refund) -> None:
        if refund.amount > self.credit:
            raise PaymentRejected("amount", "the refund exceeds the loan's credit balance")
        self.credit -= refund.amount
        self.refunded += refund.amount

    # --- result ----------------------------------------------------------------------------------------------
    def totals(self, as_of: date) -> LoanTotals:
        rows = self.rows
        return (
            LoanTotals(
                disbursed=to_minor(self.terms.schedule.principal, self.cur),
                principal_paid=sum(r.paid_principal for r in rows),
                interest_recognized=self.recognised(as_of),
                interest_paid=sum(r.paid_interest for r in rows),
                fees_charged=sum(r.fees for r in rows),
                fees_paid=sum(r.paid_fees for r in rows),
                penalties_charged=sum(r.penalties for r in rows),
                penalties_paid=sum(r.paid_penalties for r in rows),
                recovered=self.recovered,
                overpaid=self.overpaid,
                refunded=self.refunded,
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
        st = self.terms.schedule
        year = {DayCount.thirty_360: 360, DayCount.actual_360: 360, DayCount.actual_365: 365}.get(
            self.convention, 366 if is_leap(on.year) else 365
        )
        num, den = Decimal(st.annual_rate_percent).as_integer_ratio()
        return half_up_div(self.principal_outstanding() * num, den * 100 * year)

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
        return LoanState(
            as_of=as_of,
            status=status,
            installments=self.rows,
            allocations=self.allocations,
            totals=self.totals(as_of),
            installment_amount=self.installment_amount,
            credit=self.credit,
            principal_outstanding=self.principal_outstanding() if open_loan else 0,
            interest_outstanding=self.accrued_unpaid(as_of) if open_loan else 0,
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
            ),
        )


def project(terms: LoanTerms, events: Sequence[Event], as_of: date) -> LoanState:
    """The loan as it stands at the end of `as_of`, from its terms and its (non-reversed) events."""
    return _run(_Projection(terms), events, as_of)


def resume(
    terms: LoanTerms, rows: Sequence[Installment], checkpoint: Checkpoint, events: Sequence[Event], as_of: date
) -> LoanState:
    """Continue a projection from a stored state (its installments and checkpoint) with events dated after
    it: equal to `project()` over all events whenever no event is dated on or before `checkpoint.as_of`
    (on the checkpoint's own date only when no late fee was charged that day)."""
    return _run(_Projection(terms, (rows, checkpoint)), events, as_of)


def payoff_quote(terms: LoanTerms, events: Sequence[Event], on: date) -> LoanState:
    """What closes the loan if paid on `on`: the state at the end of `on` except late fees triggered that very
    day, because a payment dated `on` settles before the day's fees are charged."""
    return _run(_Projection(terms), events, on, fees_through=on - timedelta(days=1))


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
        if isinstance(event, Payment):
            projection.allocations[event.seq] = projection.pay(event)
        elif isinstance(event, WriteOff):
            if projection.written_off_on is None and projection.closed_on is None:
                projection.write_off(event.date)
        else:
            projection.refund(event)
    projection.charge_late_fees(as_of if fees_through is None else fees_through)
    return projection.state(as_of)
