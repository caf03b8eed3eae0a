"""Resuming the projection from a stored state equals replaying the whole event log (ARCHITECTURE: the
snapshot is a valid starting state), for events dated after the state, including late fees and closure."""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.calendar import DayCount, Frequency
from app.domain.money import currency
from app.domain.schedule import Amortization, ScheduleTerms
from app.domain.servicing import (
    Checkpoint,
    Event,
    InterestRecalculation,
    LateFeeRule,
    LoanTerms,
    Payment,
    Prepayment,
    Refund,
    WriteOff,
    can_resume,
    project,
    resume,
)

START = date(2024, 1, 31)


@st.composite
def loans_and_events(draw: st.DrawFn) -> tuple[LoanTerms, list[tuple[Event, date]]]:
    terms = LoanTerms(
        ScheduleTerms(
            Decimal(draw(st.integers(10_000, 5_000_000))) / 100, Decimal(draw(st.sampled_from(["0", "7.5", "24"]))),
            draw(st.integers(2, 24)), draw(st.sampled_from(list(Frequency))), START, currency("USD"),
            amortization=draw(st.sampled_from(list(Amortization))),
            day_count=draw(st.sampled_from(list(DayCount))),
        ),
        LateFeeRule(draw(st.integers(0, 10)), amount=draw(st.sampled_from([None, 500])),
                    percent_of_overdue=None),
    )
    if terms.late_fee is not None and terms.late_fee.amount is None:
        terms = LoanTerms(terms.schedule, LateFeeRule(terms.late_fee.grace_days, percent_of_overdue=Decimal("2.5")))
    daily = (
        terms.schedule.day_count != DayCount.thirty_360
        and terms.schedule.amortization == Amortization.equal_installments
        and draw(st.booleans())
    )
    terms = replace(
        terms,
        prepayment=draw(st.sampled_from(list(Prepayment))),
        interest_recalculation=InterestRecalculation.daily if daily else InterestRecalculation.none,
    )
    day, steps = START, []
    for seq in range(1, draw(st.integers(1, 12)) + 1):
        day += timedelta(days=draw(st.integers(0, 45)))
        kind = draw(st.sampled_from(["pay", "pay", "pay", "write_off", "refund"]))
        event: Event
        if kind == "pay":
            event = Payment(seq, day, draw(st.integers(1, 600_000)))
        elif kind == "write_off":
            event = WriteOff(seq, day)
        else:
            event = Refund(seq, day, 0)
        as_of = day + timedelta(days=draw(st.sampled_from([0, 0, 0, 3, 40])))
        steps.append((event, as_of))
    return terms, steps


@settings(max_examples=150, deadline=None)
@given(loans_and_events())
def test_resume_equals_full_replay(case: tuple[LoanTerms, list[tuple[Event, date]]]) -> None:
    terms, steps = case
    state = project(terms, [], START)
    rows, checkpoint = state.installments, state.checkpoint
    latest: date | None = None
    events: list[Event] = []
    for event, as_of in steps:
        as_of = max(as_of, checkpoint.as_of)
        events.append(event)
        full = project(terms, events, as_of)
        if can_resume(checkpoint, rows, event.date, latest):
            resumed = resume(terms, rows, checkpoint, [event], as_of)
            assert resumed.installments == full.installments
            assert resumed.totals == full.totals
            assert resumed.checkpoint == full.checkpoint
            assert (resumed.status, resumed.days_past_due, resumed.next_due) == (
                full.status, full.days_past_due, full.next_due)
            if isinstance(event, Payment):
                assert resumed.allocations[event.seq] == full.allocations[event.seq]
        latest = max(filter(None, (latest, event.date)))
        rows, checkpoint = full.installments, full.checkpoint


def test_a_fee_charged_on_the_checkpoint_day_forces_a_replay() -> None:
    cp = Checkpoint(date(2024, 3, 10), 100, date(2025, 1, 1))
    terms = LoanTerms(ScheduleTerms(Decimal("1000"), Decimal("12"), 6, Frequency.monthly, START, currency("USD")))
    rows = project(terms, [], START).installments
    rows[0].late_fee_date = date(2024, 3, 10)
    assert not can_resume(cp, rows, date(2024, 3, 10), None)
    assert can_resume(cp, rows, date(2024, 3, 11), None)
    assert not can_resume(cp, rows, date(2024, 3, 11), date(2024, 3, 12))
