"""Loan modifications as events of the projection (CONTRACT "Modifications"; README "Modifications").

An approved modification is an event in the loan's log, effective at the start of its date. When the
projection meets it (`apply_modification`, called by `servicing._run` in date order with every other event),
it rebuilds the installments not yet due on that date — the current one and later — from the state the
earlier events left, so a payment backdated before a modification changes what the modification rebuilds.
Installments already due are never touched, except by a re-age, which moves their unpaid principal and
interest into the rebuilt ones.

Rules (all amounts integer minor units, one half-up rounding per amount):
- The current installment keeps its period start; its interest is what had accrued on it through the
  effective date under the old terms plus the interest from the effective date to its (new) due date under
  the new terms; it is recognised evenly over its period like any installment.
- Later installments run one regular period each (30/360: exactly 1/periods-per-year) on the unpaid principal.
- Equal installments get the annuity of the unpaid principal over the rebuilt installments at the new rate
  (or the requested installment amount: the last then takes whatever remains); equal principal spreads the
  principal evenly; interest-only keeps the bullet at the end. The last installment absorbs every residual.
- Money already received for the rebuilt installments is kept: principal received stays on the current
  installment (as paid, like a prepayment), interest received pays the rebuilt installments' interest in order
  (interest beyond all of it — a rate cut after early payment — becomes principal received).
- Due dates come from an anchor, never chained: the regime keeps (anchor, anchor_number) so that installment k
  falls due anchor + (k − anchor_number) periods. A payment holiday of N moves the anchor number back by N;
  a new next due date D re-anchors the grid at D.
- Payment holiday interest for the skipped periods (from the effective date to the start of the first regular
  period after the holiday) is capitalised (added to principal; posted Dr loan portfolio, Cr interest income),
  spread evenly over the rebuilt installments as interest, or waived.
- Re-age: the unpaid principal of the installments already due joins the rebuilt principal and their unpaid
  interest is capitalised (Dr loan portfolio, Cr interest receivable: it was already income), so nothing is
  overdue any more and days past due restart at 0; penalties and fees stay where they were charged.
"""

from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from app.domain.calendar import DayCount, add_periods, day_count, year_fraction_of_period
from app.domain.schedule import Amortization, ScheduleTerms, half_up_div
from app.domain.servicing import Installment, Modification, Prepayment, recognised_interest

if TYPE_CHECKING:
    from app.domain.servicing import _Projection

_HIGH = Context(prec=60)


class ModificationType(StrEnum):
    reschedule = "reschedule"
    payment_holiday = "payment_holiday"
    rate_change = "rate_change"
    re_age = "re_age"


TRANCHE = "tranche"  # a further disbursement: the same rebuild with more principal (product multi_disbursement)


class HolidayInterest(StrEnum):
    capitalized = "capitalize"
    spread = "spread"
    waive = "waive"


@dataclass(frozen=True)
class Regime:
    """The terms that govern the open installments: the rate and the due-date grid (anchor-based)."""

    annual_rate_percent: Decimal
    anchor: date
    anchor_number: int
    term: int

    @classmethod
    def initial(cls, terms: ScheduleTerms) -> "Regime":
        if terms.first_payment_date is not None:
            return cls(Decimal(terms.annual_rate_percent), terms.first_payment_date, 1, terms.term)
        return cls(Decimal(terms.annual_rate_percent), terms.disbursement_date, 0, terms.term)

    @classmethod
    def from_json(cls, data: dict[str, str]) -> "Regime":
        return cls(
            Decimal(data["rate"]), date.fromisoformat(data["anchor"]), int(data["anchor_number"]), int(data["term"])
        )

    def to_json(self) -> dict[str, str]:
        return {
            "rate": str(self.annual_rate_percent),
            "anchor": self.anchor.isoformat(),
            "anchor_number": str(self.anchor_number),
            "term": str(self.term),
        }

    def due(self, terms: ScheduleTerms, number: int) -> date:
        return add_periods(self.anchor, terms.frequency, number - self.anchor_number, terms.frequency_interval)


def regime_of(projection: "_Projection") -> Regime:
    if projection.regime is not None:
        return Regime.from_json(projection.regime)
    return Regime.initial(projection.terms.schedule)


def _interest(balance: int, rate: Decimal, terms: ScheduleTerms, start: date, end: date, regular: bool) -> int:
    """Interest on `balance` over [start, end): 30/360 regular periods are 1/periods-per-year exactly."""
    if end <= start or balance <= 0:
        return 0
    rate_num, rate_den = rate.as_integer_ratio()
    if regular and terms.day_count == DayCount.thirty_360:
        frac_num, frac_den = year_fraction_of_period(terms.frequency, terms.frequency_interval)
    else:
        frac_num, frac_den = day_count(terms.day_count).fraction(start, end)
    return half_up_div(balance * rate_num * frac_num, rate_den * 100 * frac_den)


def _annuity(balance: int, rate: Decimal, terms: ScheduleTerms, periods: int) -> int:
    if periods <= 0:
        return balance
    if rate == 0:
        return half_up_div(balance, periods)
    years_num, years_den = year_fraction_of_period(terms.frequency, terms.frequency_interval)
    i = _HIGH.divide(_HIGH.multiply(rate, Decimal(years_num)), Decimal(100 * years_den))
    discount = _HIGH.power(_HIGH.add(Decimal(1), i), -periods)
    payment = _HIGH.divide(_HIGH.multiply(Decimal(balance), i), _HIGH.subtract(Decimal(1), discount))
    return int(payment.to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class _Plan:
    balance: int  # unpaid principal to amortise over the rebuilt installments
    dues: list[date]
    first_number: int
    period_start: date  # of the first rebuilt installment
    interest_from: date  # interest of the first rebuilt installment runs from here (plus `accrued`)
    accrued: int  # interest accrued on the current installment under the old terms
    rate: Decimal
    installment: int | None = None  # keep this amount (None: level over the rebuilt installments)
    spread: int = 0  # extra interest spread evenly over the rebuilt installments


def build_rows(terms: ScheduleTerms, plan: _Plan) -> tuple[list[Installment], int]:
    """The rebuilt installments and their regular installment amount."""
    count = len(plan.dues)
    amortization = Amortization(terms.amortization)
    installment = plan.installment
    if installment is None:
        installment = _annuity(plan.balance, plan.rate, terms, count)
    part = half_up_div(plan.balance, count)
    if part * (count - 1) > plan.balance:
        part = plan.balance // count
    share = half_up_div(plan.spread, count)
    if share * (count - 1) > plan.spread:
        share = plan.spread // count
    rows: list[Installment] = []
    balance, spread_left, start = plan.balance, plan.spread, plan.interest_from
    for j, due in enumerate(plan.dues):
        interest = _interest(balance, plan.rate, terms, start, due, regular=j > 0)
        if j == 0:
            interest += plan.accrued
        last = j == count - 1
        if last:
            principal = balance
        elif amortization == Amortization.interest_only:
            principal = 0
        elif amortization == Amortization.equal_principal:
            principal = min(balance, part)
        else:
            principal = min(balance, max(0, installment - interest))
        extra = spread_left if last else min(share, spread_left)
        spread_left -= extra
        balance -= principal
        period_start = plan.period_start if j == 0 else plan.dues[j - 1]
        rows.append(Installment(plan.first_number + j, period_start, due, principal, interest + extra))
        if balance == 0 and plan.installment is not None and not last:
            rows[-1].interest += spread_left  # the installment paid the loan early: the spread ends with it
            break
        start = due
    if amortization != Amortization.equal_installments and rows:
        installment = rows[min(1, len(rows) - 1)].total
    return rows, installment


def _rebuild(projection: "_Projection", plan: _Plan, received: tuple[int, int], tail: list[Installment]) -> None:
    """Replace `tail` by the rebuilt installments, keeping what was received for it (principal, interest)."""
    terms = projection.terms.schedule
    paid_principal, paid_interest = received
    # Interest received beyond the rebuilt interest becomes principal received, which lowers the balance and so
    # the interest: the excess shrinks by the period rate each round (a cent at most is left after rounding).
    # The rows are always rebuilt from the plan last changed, or principal would be counted twice.
    rows, installment = build_rows(terms, plan)
    for _ in range(64):
        excess = paid_interest - sum(r.interest for r in rows)
        if excess <= 0 or plan.balance == 0:
            break
        move = min(excess, plan.balance)
        paid_interest -= move
        paid_principal += move
        plan = _with_balance(plan, plan.balance - move)
        rows, installment = build_rows(terms, plan)
    if not rows:  # everything was received already: one settled installment carries it
        rows = [Installment(plan.first_number, plan.period_start, plan.dues[0], 0, 0)]
    first = rows[0]
    first.principal += paid_principal
    first.paid_principal += paid_principal
    for row in rows:
        take = min(row.interest, paid_interest)
        row.paid_interest += take
        paid_interest -= take
    if paid_interest:  # cannot happen after the loop above; never lose money
        first.principal += paid_interest
        first.paid_principal += paid_interest
    for index, old in enumerate(tail):  # fees and penalties stay with their installment (or the last one)
        row = rows[min(index, len(rows) - 1)]
        row.fees += old.fees
        row.paid_fees += old.paid_fees
        row.penalties += old.penalties
        row.paid_penalties += old.paid_penalties
    keep = len(projection.rows) - len(tail)
    del projection.rows[keep:]
    projection.rows += rows
    projection.installment_amount = installment
    projection.maturity_date = rows[-1].due_date
    projection.first_open = min(projection.first_open, keep)


def _with_balance(plan: _Plan, balance: int) -> _Plan:
    return _Plan(
        balance,
        plan.dues,
        plan.first_number,
        plan.period_start,
        plan.interest_from,
        plan.accrued,
        plan.rate,
        plan.installment,
        plan.spread,
    )


def apply_modification(projection: "_Projection", mod: Modification) -> None:
    """Apply an approved modification at the start of `mod.date` (see the module docstring)."""
    if mod.kind == TRANCHE:
        projection.tranched += mod.disbursed
        if _tranche_on_settled_loan(projection, mod):
            return
    if projection.closed_on is not None or projection.written_off_on is not None:
        return  # nothing left to modify: the event stays in the log and changes nothing
    terms = projection.terms.schedule
    on = mod.date
    split = projection.not_due_index(on)
    moved = _re_age(projection, split) if mod.kind == ModificationType.re_age else 0
    tail = projection.rows[split:]
    received = (sum(r.paid_principal for r in tail), sum(r.paid_interest for r in tail))
    unpaid = sum(r.principal for r in tail) - received[0] + moved + mod.disbursed
    if tail:
        first_number, period_start = tail[0].number, tail[0].period_start
        accrued = recognised_interest(tail[0], projection.convention, on) if on > period_start else 0
    else:
        first_number = projection.rows[-1].number + 1 if projection.rows else 1
        period_start, accrued = on, 0
    regime = regime_of(projection)
    rate = regime.annual_rate_percent if mod.annual_rate_percent is None else Decimal(mod.annual_rate_percent)
    count = max(len(tail), 1)
    installment: int | None = None
    spread, interest_from = 0, on
    if mod.kind == ModificationType.reschedule:
        if mod.new_term is not None:
            count = max(mod.new_term - first_number + 1, 1)
        if mod.next_due_date is not None:
            regime = Regime(rate, mod.next_due_date, first_number, regime.term)
        installment = mod.installment_amount
    elif mod.kind == ModificationType.payment_holiday:
        regime = Regime(rate, regime.anchor, regime.anchor_number - mod.holiday_installments, regime.term)
        interest_from = regime.due(terms, first_number - 1)  # the start of the first regular period
        unpaid, spread = _holiday_interest(projection, mod, unpaid, rate, interest_from)
    dues = [regime.due(terms, first_number + j) for j in range(count)]
    if mod.kind != ModificationType.payment_holiday and mod.next_due_date is None and len(tail) == count:
        dues = [r.due_date for r in tail]  # keep the dates as they stand (the grid, or a shortened term)
    if dues[0] <= on:  # past maturity: the first rebuilt installment falls due one period after the date
        anchor = add_periods(on, terms.frequency, 1, terms.frequency_interval)
        regime = Regime(rate, anchor, first_number, regime.term)
        dues = [regime.due(terms, first_number + j) for j in range(count)]
    regime = Regime(rate, regime.anchor, regime.anchor_number, first_number + count - 1)
    plan = _Plan(unpaid, dues, first_number, period_start, interest_from, accrued, rate, installment, spread)
    _rebuild(projection, plan, received, tail)
    projection.regime = regime.to_json()


def _re_age(projection: "_Projection", split: int) -> int:
    """Take the unpaid principal and interest off the installments already due; their interest is capitalised.
    Returns what joins the rebuilt principal."""
    moved = 0
    for row in projection.rows[projection.first_open : split]:
        principal, interest = row.principal - row.paid_principal, row.interest - row.paid_interest
        row.principal -= principal
        row.interest -= interest
        moved += principal + interest
        projection.capitalized += interest
    return moved


def _holiday_interest(
    projection: "_Projection", mod: Modification, unpaid: int, rate: Decimal, holiday_end: date
) -> tuple[int, int]:
    """The skipped periods' interest (effective date -> start of the first regular period after the holiday):
    capitalised into the principal, or spread over the rebuilt installments, or waived. Returns (principal to
    amortise, interest to spread)."""
    terms = projection.terms.schedule
    skipped = _interest(unpaid, rate, terms, mod.date, holiday_end, regular=False)
    if mod.holiday_interest == HolidayInterest.capitalized:
        projection.capitalized += skipped
        return unpaid + skipped, 0
    if mod.holiday_interest == HolidayInterest.spread:
        return unpaid, skipped
    return unpaid, 0


def _tranche_on_settled_loan(projection: "_Projection", mod: Modification) -> bool:
    """A tranche replayed after a backdated payoff or write-off: the money was still lent. On a written-off loan
    it is written off with the rest; a paid-off loan reopens with one installment a period later."""
    if projection.written_off_on is not None:
        w = projection.written_off
        projection.written_off = replace(w, principal_written_off=w.principal_written_off + mod.disbursed)
        return True
    if projection.closed_on is None:
        return False
    terms = projection.terms.schedule
    rate = regime_of(projection).annual_rate_percent
    due = add_periods(mod.date, terms.frequency, 1, terms.frequency_interval)
    interest = _interest(mod.disbursed, rate, terms, mod.date, due, regular=False)
    number = projection.rows[-1].number + 1 if projection.rows else 1
    projection.rows.append(Installment(number, mod.date, due, mod.disbursed, interest))
    projection.closed_on = None
    projection.maturity_date = due
    return True


def rebuild_after_prepayment(projection: "_Projection", balance: int, current: Installment) -> list[Installment]:
    """After a modification, principal prepaid beyond the current installment re-amortises the later ones
    under the modified regime: `reduce_term` keeps the installment amount, `reduce_installment` the maturity."""
    terms = projection.terms.schedule
    regime = regime_of(projection)
    first = current.number + 1
    dues = [regime.due(terms, k) for k in range(first, max(regime.term, first) + 1)]
    keep_amount = projection.terms.prepayment == Prepayment.reduce_term
    installment = projection.installment_amount if keep_amount else None
    plan = _Plan(balance, dues, first, current.due_date, current.due_date, 0, regime.annual_rate_percent, installment)
    rows, amount = build_rows(terms, plan)
    if not keep_amount:
        projection.installment_amount = amount
    return rows


def modification_event(seq: int, on: date, fields: dict[str, object]) -> Modification:
    """The domain event from its stored form (the loan event's payload `event`, written by `event_fields`)."""

    def get(key: str) -> object:
        return fields.get(key)

    rate, next_due, term, amount = (
        get("annual_rate_percent"),
        get("next_due_date"),
        get("new_term"),
        get("installment_amount"),
    )
    return Modification(
        seq=seq,
        date=on,
        kind=str(get("kind")),
        new_term=None if term is None else int(str(term)),
        installment_amount=None if amount is None else int(str(amount)),
        annual_rate_percent=None if rate is None else Decimal(str(rate)),
        next_due_date=None if next_due is None else date.fromisoformat(str(next_due)),
        holiday_installments=int(str(get("holiday_installments") or 0)),
        holiday_interest=str(get("holiday_interest") or HolidayInterest.capitalized.value),
        disbursed=int(str(get("disbursed") or 0)),
    )


def event_fields(mod: Modification) -> dict[str, object]:
    """What a loan event stores to rebuild `mod` (JSON-safe)."""
    return {
        "kind": mod.kind,
        "new_term": mod.new_term,
        "installment_amount": mod.installment_amount,
        "annual_rate_percent": None if mod.annual_rate_percent is None else str(mod.annual_rate_percent),
        "next_due_date": None if mod.next_due_date is None else mod.next_due_date.isoformat(),
        "holiday_installments": mod.holiday_installments,
        "holiday_interest": mod.holiday_interest,
        "disbursed": mod.disbursed,
    }
