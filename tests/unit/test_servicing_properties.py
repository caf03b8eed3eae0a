"""Properties of the pure projection over random loans and random (partly backdated) event sequences:
the books always balance, every payment is allocated exactly, nothing goes negative or is overpaid per
installment, the result does not depend on insertion order, a reversal is a removal, and principal is conserved.

The stateful HTTP machine (pay, backdate, reverse, payoff, write-off through the real API) lives in
tests/api/test_servicing.py, next to the fixtures that give it its own database."""

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.domain.calendar import DayCount, Frequency
from app.domain.errors import DomainValidationError
from app.domain.money import currency
from app.domain.postings import role_balances
from app.domain.schedule import Amortization, InterestMethod, ScheduleTerms, generate_schedule
from app.domain.servicing import (
    COMPONENTS,
    Event,
    InterestRecalculation,
    LateFeeRule,
    LoanState,
    LoanTerms,
    Payment,
    Prepayment,
    Refund,
    WriteOff,
    _projection,
    _run,
    payoff_quote,
    project,
)
from app.loans.models import LoanEvent
from app.loans.terms import domain_events

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    terms: LoanTerms
    events: tuple[Event, ...]
    as_of: date


@st.composite
def loan_terms(draw: st.DrawFn) -> LoanTerms:
    frequency = draw(st.sampled_from(list(Frequency)))
    term = draw(st.integers(1, 24 if frequency in {Frequency.monthly, Frequency.quarterly, Frequency.yearly} else 40))
    schedule = ScheduleTerms(
        principal=Decimal(draw(st.integers(10_000, 5_000_000))).scaleb(-2),
        annual_rate_percent=Decimal(draw(st.integers(0, 3600))).scaleb(-2),
        term=term,
        frequency=frequency,
        disbursement_date=draw(st.dates(date(2020, 1, 1), date(2026, 12, 31))),
        currency=currency("USD"),
        amortization=draw(st.sampled_from(list(Amortization))),
        interest_method=draw(st.sampled_from([InterestMethod.declining_balance, InterestMethod.declining_balance,
                                              InterestMethod.flat])),
        day_count=draw(st.sampled_from(list(DayCount))),
    )
    try:
        generate_schedule(schedule)
    except DomainValidationError:
        assume(False)
    late_fee = draw(
        st.one_of(
            st.none(),
            st.builds(LateFeeRule, grace_days=st.integers(0, 15), amount=st.integers(1, 5000)),
            st.builds(
                LateFeeRule,
                grace_days=st.integers(0, 15),
                percent_of_overdue=st.integers(1, 1000).map(lambda n: Decimal(n).scaleb(-2)),
            ),
        )
    )
    daily = (
        schedule.day_count != DayCount.thirty_360
        and schedule.grace_principal_periods == 0
        and schedule.amortization == Amortization.equal_installments
        and schedule.interest_method == InterestMethod.declining_balance
        and draw(st.booleans())
    )
    return LoanTerms(
        schedule,
        late_fee,
        prepayment=draw(st.sampled_from(list(Prepayment))),
        interest_recalculation=InterestRecalculation.daily if daily else InterestRecalculation.none,
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    terms = draw(loan_terms())
    start = terms.schedule.disbursement_date
    installment = project(terms, [], start).installment_amount
    horizon = (project(terms, [], start).maturity_date - start).days + 60
    events: list[Event] = []
    seq = 0
    last = start
    for _ in range(draw(st.integers(0, 12))):
        seq += 1
        if events and draw(st.integers(0, 3)) == 0:  # backdated: earlier than the latest event so far
            on = start + timedelta(days=draw(st.integers(0, (last - start).days)))
        else:
            on = start + timedelta(days=draw(st.integers((last - start).days, horizon)))
        last = max(last, on)
        amount = draw(st.one_of(st.integers(1, max(1, installment * 2)), st.integers(1, 10_000_000)))
        events.append(Payment(seq, on, amount))
    if draw(st.integers(0, 4)) == 0:
        seq += 1
        on = start + timedelta(days=draw(st.integers(0, horizon)))
        last = max(last, on)
        events.append(WriteOff(seq, on))
    as_of = last + timedelta(days=draw(st.integers(0, 90)))
    # Refunds last (dated on or after every other event) and never more than the credit at that point.
    credit = project(terms, events, as_of).credit
    if credit and draw(st.booleans()):
        seq += 1
        events.append(Refund(seq, as_of, draw(st.integers(1, credit))))
    return Case(terms, tuple(events), as_of)


def check_invariants(case: Case, state: LoanState) -> None:
    totals = state.totals
    # the journal target balances: every quantity is posted once as a debit and once as a credit
    assert sum(role_balances(totals).values()) == 0
    for name, value in vars(totals).items():
        assert value >= 0, (name, value)
    payments = {e.seq: e.amount for e in case.events if isinstance(e, Payment) and e.date <= case.as_of}
    assert set(state.allocations) == set(payments)
    for seq, allocation in state.allocations.items():
        parts = vars(allocation)
        assert all(v >= 0 for v in parts.values()), allocation
        assert allocation.total == payments[seq], (seq, allocation)
    for row in state.installments:
        for component in COMPONENTS:
            due, paid = getattr(row, component), getattr(row, "paid_" + component)
            assert due >= 0 and paid >= 0, (row, component)
            assert paid <= due, (row, component)
    for value in (state.principal_outstanding, state.interest_outstanding, state.fees_outstanding,
                  state.penalties_outstanding, state.credit, state.days_past_due, state.per_diem,
                  state.interest_in_advance, state.total_outstanding):
        assert value >= 0, state
    # interest is either accrued and unpaid or received in advance, never both
    assert state.interest_outstanding == 0 or state.interest_in_advance == 0
    disbursed = int(case.terms.schedule.principal * 100)
    # principal is conserved; refunds that a reversal left uncovered are principal owed again
    assert (state.principal_outstanding + totals.principal_paid + totals.principal_written_off
            == disbursed + totals.principal_readvanced)
    assert totals.disbursed == disbursed


@PROPERTY_SETTINGS
@given(cases())
def test_books_balance_allocations_are_exact_and_nothing_is_negative(case: Case) -> None:
    check_invariants(case, project(case.terms, case.events, case.as_of))


@PROPERTY_SETTINGS
@given(cases(), st.randoms(use_true_random=False))
def test_insertion_order_does_not_matter(case: Case, rnd: random.Random) -> None:
    shuffled = list(case.events)
    rnd.shuffle(shuffled)
    assert project(case.terms, shuffled, case.as_of) == project(case.terms, case.events, case.as_of)


def _rows(case: Case, reversed_seq: int | None) -> list[LoanEvent]:
    kinds = {Payment: "payment", WriteOff: "write_off", Refund: "refund"}
    rows = [LoanEvent(seq=0, type="disbursed", effective_date=case.terms.schedule.disbursement_date)]
    for e in case.events:
        rows.append(
            LoanEvent(
                seq=e.seq,
                type=kinds[type(e)],
                effective_date=e.date,
                amount=getattr(e, "amount", None),
                reversed_by_seq=1000 if e.seq == reversed_seq else None,
            )
        )
    return rows


@PROPERTY_SETTINGS
@given(cases(), st.data())
def test_reversing_a_payment_equals_removing_it(case: Case, data: st.DataObject) -> None:
    payments = [e for e in case.events if isinstance(e, Payment)]
    assume(payments)
    target = data.draw(st.sampled_from(payments))
    remaining = [e for e in case.events if e.seq != target.seq]
    # a refund that only the removed payment's credit covered is owed again (principal), never an error
    without = project(case.terms, remaining, case.as_of)
    # the write path's event mapping (reversed rows are not in force) gives exactly the removal
    in_force = domain_events(_rows(case, target.seq))
    assert in_force == remaining
    reversed_state = project(case.terms, in_force, case.as_of)
    assert reversed_state == without
    check_invariants(Case(case.terms, tuple(remaining), case.as_of), reversed_state)


@PROPERTY_SETTINGS
@given(cases())
def test_a_payment_of_the_payoff_closes_the_loan_with_zero_balances(case: Case) -> None:
    state = project(case.terms, case.events, case.as_of)
    assume(state.status.value == "active" and state.total_outstanding > 0)
    quote = payoff_quote(case.terms, case.events, case.as_of)
    # the quote is the end-of-day state less any late fee triggered that very day (a payment settles first)
    assert quote.total_outstanding <= state.total_outstanding
    seq = max((e.seq for e in case.events), default=0) + 1
    events = [*case.events, Payment(seq, case.as_of, quote.total_outstanding)]
    closed = project(case.terms, events, case.as_of)
    assert closed.status.value == "closed", closed.status
    assert (closed.principal_outstanding, closed.interest_outstanding, closed.total_outstanding, closed.credit) == (
        0, 0, 0, 0,
    )
    assert closed.allocations[seq].overpayment == 0
    check_invariants(Case(case.terms, tuple(events), case.as_of), closed)


@st.composite
def paid_on_or_before_due(draw: st.DrawFn) -> tuple[LoanTerms, list[Event], date]:
    """Each installment paid in full (its scheduled total, possibly in two parts) on a random day of its own
    period or earlier; anything paid beyond it follows the product's prepayment option."""
    terms = draw(loan_terms())
    start = terms.schedule.disbursement_date
    events: list[Event] = []
    seq = 0
    state = project(terms, [], start)
    as_of = start
    for number in range(1, len(state.installments) + 1):
        if state.status.value != "active":
            break
        row = next((r for r in state.installments if r.number == number), None)
        if row is None:
            break
        owed = row.outstanding
        if owed:
            on = row.period_start + timedelta(days=draw(st.integers(0, (row.due_date - row.period_start).days)))
            on = max(on, as_of)
            parts = [owed] if owed < 2 or draw(st.booleans()) else [owed // 2, owed - owed // 2]
            for part in parts:
                seq += 1
                events.append(Payment(seq, on, part))
            as_of = on
        state = project(terms, events, row.due_date)
        as_of = max(as_of, row.due_date)
    return terms, events, as_of + timedelta(days=draw(st.integers(0, 60)))


@PROPERTY_SETTINGS
@given(paid_on_or_before_due())
def test_installments_paid_by_their_due_dates_are_never_late(case: tuple[LoanTerms, list[Event], date]) -> None:
    terms, events, horizon = case
    start = terms.schedule.disbursement_date
    day = start
    while day <= horizon:
        state = project(terms, events, day)
        assert state.days_past_due == 0, (day, state.installments)
        assert state.totals.penalties_charged == 0, (day, state.installments)
        day += timedelta(days=max(1, (horizon - start).days // 40))


@PROPERTY_SETTINGS
@given(cases(), st.integers(0, 10_000_000))
def test_the_cheap_short_of_payoff_test_never_hides_a_payoff(case: Case, amount: int) -> None:
    """`short_of_payoff` lets a payment skip computing the payoff: it must never say "short" of an amount that
    pays the loan off (else that payment would not close the loan)."""
    projection = _projection(case.terms)
    _run(projection, case.events, case.as_of, fees_through=case.as_of - timedelta(days=1))
    assume(projection.closed_on is None and projection.written_off_on is None)
    payoff = projection.payoff(case.as_of)
    for candidate in (amount, payoff - 1, payoff, payoff + 1):
        if projection.short_of_payoff(candidate, case.as_of):
            assert candidate < payoff, (candidate, payoff)
    assert not projection.short_of_payoff(payoff, case.as_of)
