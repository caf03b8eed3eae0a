"""Golden scenarios for the servicing rules of issue 11 (CONTRACT "Loans" allocation and payoff, "Servicing
instruments"): early payments, prepayment modes, payoff credit-back, simple interest, and corrections that
never lose money. Every expectation is computed by hand in the comment beside it (minor units: 10662 = 106.62).

LOAN12: 1,200.00 at 12 % nominal, 12 monthly installments, 30/360, disbursed 2024-01-01, late fee 10.00 once
per installment when its DPD exceeds 5 grace days (the loan of the reproduced defect).
  periodic rate 1 %; annuity 1200 * 0.01 / (1 - 1.01**-12) = 106.6186 -> 106.62
  #1 due 02-01: interest 12.00, principal 94.62, balance 1105.38
  #2 due 03-01: interest 11.0538 -> 11.05, principal 95.57, balance 1009.81
"""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.calendar import DayCount, Frequency
from app.domain.lifecycle import LoanStatus
from app.domain.money import currency
from app.domain.postings import role_balances
from app.domain.schedule import ScheduleTerms
from app.domain.servicing import (
    Allocation,
    Event,
    InterestRecalculation,
    LateFeeRule,
    LoanState,
    LoanTerms,
    Payment,
    Prepayment,
    Refund,
    WriteOff,
    payoff_quote,
    project,
)
from tests.unit.test_servicing_properties import loan_terms

D = date


def _terms(rate: str = "12", term: int = 12, principal: str = "1200.00", **kw: object) -> LoanTerms:
    schedule = ScheduleTerms(
        principal=Decimal(principal),
        annual_rate_percent=Decimal(rate),
        term=term,
        frequency=Frequency.monthly,
        disbursement_date=D(2024, 1, 1),
        currency=currency("USD"),
        day_count=kw.pop("day_count", DayCount.thirty_360),  # type: ignore[arg-type]
    )
    late_fee = kw.pop("late_fee", LateFeeRule(grace_days=5, amount=1000))
    return LoanTerms(schedule, late_fee, **kw)  # type: ignore[arg-type]


LOAN12 = _terms()


def roles(state: LoanState) -> dict[str, int]:
    return {role.value: amount for role, amount in role_balances(state.totals).items()}


def rows(state: LoanState) -> list[tuple[int, int, int, int, int]]:
    """(number, principal, interest, paid principal, paid interest) per installment."""
    return [(r.number, r.principal, r.interest, r.paid_principal, r.paid_interest) for r in state.installments]


# --- an installment paid before its due date never falls due ---------------------------------------------


@pytest.mark.parametrize(
    ("paid_on", "in_advance"),
    [
        # 30/360 days elapsed of #1's 30: 01-31 is day 30 (US rule), so 12.00 has accrued: nothing in advance
        (D(2024, 1, 31), 0),
        # 10 days before: 21 of 30 days, 12.00 * 21 / 30 = 8.40 accrued, 3.60 received in advance
        (D(2024, 1, 22), 360),
        # 30 days before (01-02): 1 day, 0.40 accrued, 11.60 in advance
        (D(2024, 1, 2), 1160),
        # on the disbursement day: nothing accrued, all 12.00 in advance
        (D(2024, 1, 1), 1200),
    ],
)
def test_an_installment_paid_early_is_paid_and_never_late(paid_on: date, in_advance: int) -> None:
    pay = [Payment(1, paid_on, 10662)]
    # the current installment is paid as scheduled: interest 12.00 (taken whole), principal 94.62
    assert project(LOAN12, pay, paid_on).allocations[1] == Allocation(principal=9462, interest=1200)
    assert project(LOAN12, pay, paid_on).interest_in_advance == in_advance
    # the fee trigger day of #1 is 02-07 (DPD 6 > 5) and the defect showed DPD 7 on 02-08: nothing of it now
    for day in (D(2024, 2, 1), D(2024, 2, 7), D(2024, 2, 8)):
        state = project(LOAN12, pay, day)
        assert state.days_past_due == 0 and state.totals.penalties_charged == 0, day
        assert state.installments[0].status(day) == "paid"
        # next due is #2 alone, not #1 + #2 = 212.84
        assert state.next_due == (D(2024, 3, 1), 10662)
        # on and after 02-01 #1's 12.00 is fully recognised: the advance is used up
        assert state.interest_in_advance == 0
    # 02-08: #2 accrued 11.05 * 7 / 30 = 2.578 -> 2.58; principal 1200.00 - 94.62 = 1105.38
    later = project(LOAN12, pay, D(2024, 2, 8))
    assert (later.principal_outstanding, later.interest_outstanding) == (110538, 258)


def test_a_backdated_payment_dated_before_the_first_due_date_is_early_too() -> None:
    # entered on 02-10 but effective 01-25 (a backdated payment): as early as one paid on 01-25
    state = project(LOAN12, [Payment(2, D(2024, 1, 25), 10662)], D(2024, 2, 10))
    assert state.days_past_due == 0 and state.totals.penalties_charged == 0


def test_the_books_hold_interest_received_in_advance_as_a_liability_until_it_accrues() -> None:
    pay = [Payment(1, D(2024, 1, 22), 10662)]
    # 01-22: cash 106.62 in; portfolio -94.62; income 8.40 (accrued); 3.60 received in advance (2110)
    assert roles(project(LOAN12, pay, D(2024, 1, 22))) == {
        "fund_source": 10662 - 120000,
        "loan_portfolio": 120000 - 9462,
        "interest_income": -840,
        "interest_received_in_advance": -360,
    }
    # 02-01: the advance has become income
    assert roles(project(LOAN12, pay, D(2024, 2, 1))) == {
        "fund_source": 10662 - 120000,
        "loan_portfolio": 120000 - 9462,
        "interest_income": -1200,
    }


# --- prepayment modes: 500.00 paid on the disbursement day of LOAN12 -------------------------------------


def test_reduce_term_keeps_the_installment_and_shortens_the_term() -> None:
    state = project(_terms(prepayment=Prepayment.reduce_term), [Payment(1, D(2024, 1, 1), 50000)], D(2024, 1, 1))
    # #1 as scheduled (12.00 + 94.62 = 106.62); the other 393.38 prepays principal: 1200.00 - 94.62 - 393.38
    # = 712.00 re-amortised at 106.62 from 02-01 (interest = balance * 1 %, half-up):
    # #2 7.12/99.50 -> 612.50; #3 6.125 -> 6.13/100.49 -> 512.01; #4 5.12/101.50 -> 410.51;
    # #5 4.1051 -> 4.11/102.51 -> 308.00; #6 3.08/103.54 -> 204.46; #7 2.0446 -> 2.04/104.58 -> 99.88;
    # #8 0.9988 -> 1.00, principal 99.88 (last): 12 installments become 8, the amount stays 106.62
    assert state.allocations[1] == Allocation(principal=9462 + 39338, interest=1200)
    assert rows(state)[1:] == [
        (2, 9950, 712, 0, 0), (3, 10049, 613, 0, 0), (4, 10150, 512, 0, 0), (5, 10251, 411, 0, 0),
        (6, 10354, 308, 0, 0), (7, 10458, 204, 0, 0), (8, 9988, 100, 0, 0),
    ]  # fmt: skip
    assert state.installment_amount == 10662 and state.maturity_date == D(2024, 9, 1)
    # payoff: principal 712.00 less the 12.00 received in advance = 700.00 = 1200.00 - 500.00 (nothing accrued)
    assert state.total_outstanding == 70000 and state.interest_in_advance == 1200


def test_reduce_installment_keeps_the_maturity_with_a_lower_installment() -> None:
    terms = _terms(prepayment=Prepayment.reduce_installment)
    state = project(terms, [Payment(1, D(2024, 1, 1), 50000)], D(2024, 1, 1))
    # 712.00 over the 11 periods left: 712 * 0.01 / (1 - 1.01**-11) = 68.6754 -> 68.68;
    # #2 interest 7.12, principal 61.56; ... the last stays due 2025-01-01
    assert state.installment_amount == 6868 and state.maturity_date == D(2025, 1, 1)
    assert rows(state)[1][:3] == (2, 6156, 712) and len(state.installments) == 12
    assert {r.total for r in state.installments[1:-1]} == {6868}
    assert state.total_outstanding == 70000


def test_pay_ahead_pays_the_next_installments_in_order() -> None:
    state = project(_terms(prepayment=Prepayment.pay_ahead), [Payment(1, D(2024, 1, 1), 50000)], D(2024, 1, 1))
    # #1-#4 paid as scheduled: 4 * 106.62 = 426.48 (interest 12.00 + 11.05 + 10.10 + 9.13 = 42.28);
    # #5 gets the other 73.52: interest 8.16 first, then principal 65.36
    assert state.allocations[1] == Allocation(principal=44956, interest=5044)
    assert [r.outstanding for r in state.installments[:4]] == [0, 0, 0, 0]
    assert rows(state)[4] == (5, 9846, 816, 6536, 816)
    # nothing has accrued: all 50.44 of interest is in advance; the payoff is 1200.00 - 500.00
    assert state.interest_in_advance == 5044 and state.total_outstanding == 70000
    # #2-#4 never fall due: on 05-20 (after #4's due date 05-01) DPD is 0 and no fee was charged
    later = project(_terms(prepayment=Prepayment.pay_ahead), [Payment(1, D(2024, 1, 1), 50000)], D(2024, 5, 20))
    assert later.days_past_due == 0 and later.totals.penalties_charged == 0
    # 05-20: #5 (due 06-01) is partly paid; it owes 98.46 - 65.36 = 33.10 of principal on 06-01
    assert later.next_due == (D(2024, 6, 1), 9846 - 6536)


def test_a_payoff_credits_back_interest_paid_in_advance() -> None:
    terms = _terms(prepayment=Prepayment.reduce_term)
    events: list[Event] = [Payment(1, D(2024, 1, 1), 50000), Payment(2, D(2024, 1, 1), 70000)]
    state = project(terms, events, D(2024, 1, 1))
    # the quote was 700.00 (712.00 principal - 12.00 in advance): it closes the loan with no interest at all
    assert state.status == LoanStatus.closed and state.credit == 0
    assert state.allocations[2] == Allocation(principal=70000)
    assert roles(state) == {}  # cash 1200.00 out and back; no interest was ever earned
    quote = payoff_quote(terms, events[:1], D(2024, 1, 16))
    # 01-16: #1 accrued 12.00 * 15 / 30 = 6.00 of the 12.00 taken: 6.00 credited back; 712.00 - 6.00
    assert quote.total_outstanding == 70600


# --- payoff per diem ----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(loan_terms(), st.integers(0, 400), st.integers(0, 3))
def test_per_diem_is_what_one_more_day_adds_to_the_payoff(terms: LoanTerms, offset: int, paid: int) -> None:
    start = terms.schedule.disbursement_date
    on = start + timedelta(days=offset)
    first = project(terms, [], start).installments
    events: list[Event] = [Payment(n + 1, r.due_date, r.total) for n, r in enumerate(first[:paid]) if r.due_date <= on]
    state = payoff_quote(terms, events, on)
    nxt = payoff_quote(terms, events, on + timedelta(days=1))
    if state.status != LoanStatus.active or nxt.totals.penalties_charged != state.totals.penalties_charged:
        return
    if any(r.due_date == on + timedelta(days=1) for r in state.installments):
        return  # an installment falls due in between (CONTRACT: per_diem excludes that day)
    assert state.per_diem == nxt.total_outstanding - state.total_outstanding


# --- simple interest (interest_recalculation: daily) ---------------------------------------------------------
# SIMPLE: LOAN12 with actual/365 and daily recalculation; its fixed schedule (the same day count):
#   #1 due 02-01, 31 days: 1200.00 * 12 % * 31 / 365 = 12.2301 -> 12.23, principal 94.39, balance 1105.61
#   #2 due 03-01, 29 days (2024 is a leap year): 1105.61 * 12 % * 29 / 365 = 10.5411 -> 10.54, principal 96.08

SIMPLE = _terms(day_count=DayCount.actual_365, interest_recalculation=InterestRecalculation.daily)
FIXED365 = _terms(day_count=DayCount.actual_365)


def test_simple_interest_paid_on_the_due_dates_equals_the_fixed_schedule() -> None:
    schedule = project(FIXED365, [], D(2024, 1, 1)).installments
    assert (schedule[0].interest, schedule[0].principal, schedule[1].interest) == (1223, 9439, 1054)
    on_time = [Payment(n + 1, r.due_date, r.total) for n, r in enumerate(schedule)]
    simple, fixed = project(SIMPLE, on_time, D(2025, 1, 1)), project(FIXED365, on_time, D(2025, 1, 1))
    assert simple.allocations == fixed.allocations and simple.status == fixed.status == LoanStatus.closed
    assert simple.totals == fixed.totals  # 79.47 of interest either way


def test_simple_interest_paid_ten_days_early_lowers_the_interest() -> None:
    state = project(SIMPLE, [Payment(1, D(2024, 1, 22), 10662)], D(2024, 1, 22))
    # 21 days: 1200.00 * 12 % * 21 / 365 = 8.2849 -> 8.28 interest first; principal 106.62 - 8.28 = 98.34
    assert state.allocations[1] == Allocation(principal=9834, interest=828)
    assert state.installments[0].status(D(2024, 2, 1)) == "paid"
    # #2 is projected paid on 03-01: 01-22 -> 02-01 on 1101.66: 3.6219 -> 3.62, then 02-01 -> 03-01:
    # 1101.66 * 12 % * 29 / 365 = 10.5036 -> 10.50; interest 14.12, principal 106.62 - 14.12 = 92.50
    assert rows(state)[1] == (2, 9250, 1412, 0, 0)
    # every installment 10 days early: 75.07 of interest instead of 79.47, and the last fixed amount overpays
    schedule = project(FIXED365, [], D(2024, 1, 1)).installments
    early = [Payment(n + 1, r.due_date - timedelta(days=10), r.total) for n, r in enumerate(schedule)]
    done = project(SIMPLE, early, D(2025, 1, 1))
    assert done.totals.interest_recognized == 7507 and done.status == LoanStatus.overpaid and done.credit == 440


def test_simple_interest_paid_ten_days_late_raises_the_interest() -> None:
    terms = replace(SIMPLE, late_fee=None)
    state = project(terms, [Payment(1, D(2024, 2, 11), 10662)], D(2024, 2, 11))
    # 01-01 -> 02-01: 12.23; 02-01 -> 02-11 on 1200.00: 1200 * 12 % * 10 / 365 = 3.9452 -> 3.95; 16.18 interest
    assert state.allocations[1] == Allocation(principal=10662 - 1618, interest=1618)
    # while it was late, DPD counted from #1's due date
    assert project(terms, [], D(2024, 2, 10)).days_past_due == 9
    schedule = project(FIXED365, [], D(2024, 1, 1)).installments
    late = [Payment(n + 1, r.due_date + timedelta(days=10), r.total) for n, r in enumerate(schedule)]
    # every installment 10 days late: more interest than the schedule's 79.47, and principal still owed
    done = project(terms, late, D(2025, 1, 11))
    assert done.totals.interest_recognized > 7947 and done.status == LoanStatus.active


# --- corrections that never lose money ------------------------------------------------------------------------

ZERO_RATE = _terms(rate="0", term=4, principal="1000.00")


def test_a_refund_whose_payment_was_reversed_is_owed_again() -> None:
    pay, refund = Payment(1, D(2024, 1, 10), 120000), Refund(2, D(2024, 1, 15), 20000)
    # 0 %: 4 installments of 250.00. 1200.00 pays off 1000.00 and leaves a 200.00 credit, refunded on 01-15
    assert project(ZERO_RATE, [pay, refund], D(2024, 1, 15)).status == LoanStatus.closed
    # the payment bounced (reversed = removed): the 200.00 refunded is principal owed again, with #1
    reopened = project(ZERO_RATE, [refund], D(2024, 1, 20))
    assert reopened.status == LoanStatus.active and reopened.principal_outstanding == 120000
    assert reopened.installments[0].principal == 25000 + 20000
    assert roles(reopened) == {"fund_source": -120000, "loan_portfolio": 120000}
    # #1 (450.00) unpaid on 02-05: DPD 4
    assert project(ZERO_RATE, [refund], D(2024, 2, 5)).days_past_due == 4


def test_a_recovery_beyond_the_write_off_is_a_refundable_credit() -> None:
    loan3 = _terms(term=3, principal="1000.00")
    events: list[Event] = [Payment(1, D(2024, 2, 1), 34002), WriteOff(2, D(2024, 3, 16)),
                           Payment(3, D(2024, 3, 20), 100000)]
    state = project(loan3, events, D(2024, 3, 20))
    # written off 669.98 + 8.39 + 10.00 (#2's fee) = 688.37; recovery income stops there: 311.63 is credit
    assert state.write_offs[2].total == 68837
    assert state.allocations[3] == Allocation(recovery=68837, overpayment=31163)
    assert state.status == LoanStatus.written_off and state.credit == 31163
    assert roles(state)["recovery_income"] == -68837 and roles(state)["overpayment_liability"] == -31163
    refunded = project(loan3, [*events, Refund(4, D(2024, 3, 21), 31163)], D(2024, 3, 21))
    assert refunded.credit == 0 and "overpayment_liability" not in roles(refunded)


def test_the_write_off_amount_follows_the_projection() -> None:
    loan3 = _terms(term=3, principal="1000.00")
    paid = project(loan3, [Payment(1, D(2024, 2, 1), 34002), WriteOff(2, D(2024, 3, 16))], D(2024, 3, 16))
    # the payment reversed: principal 1000.00 + interest 10.00 + 6.70 + 3.37 * 15 / 30 = 1.69 (18.39 in all)
    # + two fees 10.00 (02-07 and 03-07) = 1038.39
    unpaid = project(loan3, [WriteOff(2, D(2024, 3, 16))], D(2024, 3, 16))
    assert paid.write_offs[2].total == 68837 and unpaid.write_offs[2].total == 103839


def test_a_payment_on_a_closed_loan_is_a_credit() -> None:
    closing = project(LOAN12, [Payment(1, D(2024, 1, 1), 120000)], D(2024, 1, 1))
    assert closing.status == LoanStatus.closed
    after = project(LOAN12, [Payment(1, D(2024, 1, 1), 120000), Payment(2, D(2024, 1, 5), 500)], D(2024, 1, 5))
    assert after.status == LoanStatus.overpaid and after.credit == 500
    assert after.allocations[2] == Allocation(overpayment=500)


def test_a_loan_reopened_by_an_uncovered_refund_is_paid_off_by_its_quote() -> None:
    """Found by the HTTP state machine: a loan paid off mid-period (its current interest cut to 1.59), then
    overpaid by 0.01 and refunded; the payment that made it closed was reversed so the refund is owed again.
    The interest fixed at the payoff stays recognised in full: the new payoff is just the 0.01."""
    loan6 = _terms(term=6, principal="1000.00", late_fee=LateFeeRule(grace_days=5, amount=1500))
    on = D(2024, 5, 15)
    quote = payoff_quote(loan6, [Payment(1, on, 1)], on).total_outstanding
    events: list[Event] = [Payment(2, on, quote), Payment(3, on, 1), Refund(4, on, 1)]  # payment 1 reversed
    reopened = project(loan6, events, on)
    assert reopened.status == LoanStatus.active and reopened.total_outstanding == 1
    assert payoff_quote(loan6, events, on).total_outstanding == 1
    closed = project(loan6, [*events, Payment(5, on, 1)], on)
    assert closed.status == LoanStatus.closed and closed.allocations[5] == Allocation(principal=1)
