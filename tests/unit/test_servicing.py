"""Golden servicing scenarios for the pure projection `project(terms, events, as_of)`, every expectation
computed by hand in the comment beside it (minor units: 34002 = 340.02 USD).

The loan used throughout (LOAN3): 1,000.00 at 12 % nominal, 3 monthly installments, 30/360, disbursed
2024-01-01, late fee 15.00 once per installment when its DPD exceeds 5 grace days.
  periodic rate 1 %; annuity 1000 * 0.01 / (1 - 1.01**-3) = 340.0221 -> 340.02
  #1 due 02-01: interest 1000.00 * 1 % = 10.00, principal 330.02, balance 669.98
  #2 due 03-01: interest 669.98 * 1 % = 6.6998 -> 6.70, principal 333.32, balance 336.66
  #3 due 04-01: interest 336.66 * 1 % = 3.3666 -> 3.37, principal 336.66 (last absorbs), total 340.03
Accrual inside a period is the period interest * elapsed 30/360 days / 30, rounded half-up.
Late-fee trigger day = due + grace + 1 (the first day DPD > 5): 02-07 for #1, 03-07 for #2, 04-07 for #3.
"""

from datetime import date
from decimal import Decimal

from app.domain.calendar import Frequency
from app.domain.lifecycle import LoanStatus
from app.domain.money import currency
from app.domain.postings import role_balances
from app.domain.schedule import ScheduleTerms
from app.domain.servicing import (
    Allocation,
    Event,
    LateFeeRule,
    LoanState,
    LoanTerms,
    Payment,
    Refund,
    WriteOff,
    payoff_quote,
    project,
)

D = date


def _terms(term: int = 3) -> LoanTerms:
    schedule = ScheduleTerms(
        principal=Decimal("1000.00"),
        annual_rate_percent=Decimal("12"),
        term=term,
        frequency=Frequency.monthly,
        disbursement_date=D(2024, 1, 1),
        currency=currency("USD"),
    )
    return LoanTerms(schedule, LateFeeRule(grace_days=5, amount=1500))


LOAN3 = _terms(3)
LOAN6 = _terms(6)


def roles(state: LoanState) -> dict[str, int]:
    """The journal target of the loan: signed balances (debit positive) per account role."""
    return {role.value: amount for role, amount in role_balances(state.totals).items()}


def balances(state: LoanState) -> tuple[int, int, int, int]:
    return state.principal_outstanding, state.interest_outstanding, state.fees_outstanding, state.penalties_outstanding


def rows(state: LoanState) -> list[tuple[int, int, int, int, int, int]]:
    """(number, principal, interest, penalties, paid principal, paid interest) per installment."""
    return [(r.number, r.principal, r.interest, r.penalties, r.paid_principal, r.paid_interest) for r in state.installments]


def test_the_schedule_before_any_payment() -> None:
    state = project(LOAN3, [], D(2024, 1, 1))
    assert rows(state) == [(1, 33002, 1000, 0, 0, 0), (2, 33332, 670, 0, 0, 0), (3, 33666, 337, 0, 0, 0)]
    assert state.installment_amount == 34002 and state.status == LoanStatus.active
    assert balances(state) == (100000, 0, 0, 0) and state.next_due == (D(2024, 2, 1), 34002)
    # per diem = 1000.00 * 12 % / 360 = 0.3333 -> 0.33
    assert state.per_diem == 33
    assert roles(state) == {"fund_source": -100000, "loan_portfolio": 100000}
    # 01-16: 15 of 30 days of #1 have accrued: 10.00 * 15 / 30 = 5.00 (balances never show unaccrued interest)
    mid = project(LOAN3, [], D(2024, 1, 16))
    assert balances(mid) == (100000, 500, 0, 0)
    assert roles(mid) == {
        "fund_source": -100000,
        "loan_portfolio": 100000,
        "interest_receivable": 500,
        "interest_income": -500,
    }


def test_on_time_payments_close_the_loan() -> None:
    events: list[Event] = [
        Payment(1, D(2024, 2, 1), 34002),
        Payment(2, D(2024, 3, 1), 34002),
        Payment(3, D(2024, 4, 1), 34003),
    ]
    after_two = project(LOAN3, events[:2], D(2024, 3, 1))
    # principal left = 336.66 (#3's), nothing accrued on #3 on its first day, nothing overdue
    assert balances(after_two) == (33666, 0, 0, 0) and after_two.days_past_due == 0
    assert after_two.next_due == (D(2024, 4, 1), 34003)
    state = project(LOAN3, events, D(2024, 4, 1))
    # each payment takes exactly its installment: interest first by the default order, then principal
    assert state.allocations == {
        1: Allocation(principal=33002, interest=1000),
        2: Allocation(principal=33332, interest=670),
        3: Allocation(principal=33666, interest=337),
    }
    assert state.status == LoanStatus.closed and state.closed_on == D(2024, 4, 1)
    assert balances(state) == (0, 0, 0, 0) and state.credit == 0 and state.next_due is None
    # received 1020.07 - disbursed 1000.00 = 20.07 of cash, all of it interest income 10.00 + 6.70 + 3.37
    assert roles(state) == {"fund_source": 2007, "interest_income": -2007}


def test_late_then_catch_up_charges_the_fee_once_and_dpd_follows_the_oldest_unpaid_due_date() -> None:
    # DPD = as-of - oldest unpaid due date (02-01); 0 on the due date itself
    assert [project(LOAN3, [], D(2024, 2, d)).days_past_due for d in (1, 2, 6, 7, 20)] == [0, 1, 5, 6, 19]
    # the fee is charged at the end of the first day DPD > grace (02-07), not before
    assert project(LOAN3, [], D(2024, 2, 6)).penalties_outstanding == 0
    day7 = project(LOAN3, [], D(2024, 2, 7))
    assert day7.penalties_outstanding == 1500 and day7.installments[0].late_fee_date == D(2024, 2, 7)
    # 02-07 accrual: #1 10.00 + #2 6.70 * 6 / 30 = 1.34 -> 11.34
    assert day7.interest_outstanding == 1134

    catch_up = [Payment(1, D(2024, 2, 20), 35502)]  # 340.02 + 15.00 fee
    state = project(LOAN3, catch_up, D(2024, 2, 20))
    # penalties -> fees -> interest -> principal on #1: 15.00 + 10.00 + 330.02 = 355.02, nothing left over
    assert state.allocations == {1: Allocation(principal=33002, interest=1000, penalties=1500)}
    assert state.days_past_due == 0 and state.installments[0].outstanding == 0
    # #2 accrued 6.70 * 19 / 30 = 4.2433 -> 4.24
    assert balances(state) == (66998, 424, 0, 0)
    assert roles(state) == {
        "fund_source": 35502 - 100000,
        "loan_portfolio": 100000 - 33002,
        "interest_receivable": 424,
        "interest_income": -(1000 + 424),
        "penalty_income": -1500,
    }
    # charged once: still exactly one 15.00 fee at the end of February (#2 is not yet due)
    later = project(LOAN3, catch_up, D(2024, 2, 29))
    assert later.totals.penalties_charged == 1500 and later.days_past_due == 0


def test_partial_payments_leave_the_installment_overdue_and_fee_still_charged() -> None:
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10000), Payment(2, D(2024, 2, 10), 10000)]
    state = project(LOAN3, events, D(2024, 2, 10))
    # 02-01: #1 interest 10.00 then principal 90.00.  02-07: #1 still owes 240.02 -> fee 15.00.
    # 02-10: the fee 15.00 first, then principal 85.00 (interest already paid)
    assert state.allocations == {
        1: Allocation(principal=9000, interest=1000),
        2: Allocation(principal=8500, penalties=1500),
    }
    first = state.installments[0]
    assert (first.paid_principal, first.outstanding) == (17500, 33002 - 17500)
    assert first.status(D(2024, 2, 10)) == "overdue"
    assert state.installments[1].status(D(2024, 2, 10)) == "pending"
    # principal 1000.00 - 175.00 = 825.00; #2 accrued 6.70 * 9 / 30 = 2.01; DPD 02-10 - 02-01 = 9
    assert balances(state) == (82500, 201, 0, 0) and state.days_past_due == 9
    # next due: #2 (340.02) + the arrears of #1 (155.02)
    assert state.next_due == (D(2024, 3, 1), 34002 + 15502)
    assert roles(state) == {
        "fund_source": 20000 - 100000,
        "loan_portfolio": 82500,
        "interest_receivable": 201,
        "interest_income": -1201,
        "penalty_income": -1500,
    }


def test_prepayment_keeps_the_installment_shortens_the_term_and_recomputes_future_interest() -> None:
    # LOAN6: 1000.00, 12 %, 6 monthly: annuity 10 / (1 - 1.01**-6) = 172.548 -> 172.55
    # #1 10.00/162.55 bal 837.45; #2 8.37/164.18 bal 673.27; #3 6.73/165.82; #4 5.07/167.48; #5 3.40/169.15;
    # #6 1.71/170.82 (maturity 07-01)
    before = project(LOAN6, [Payment(1, D(2024, 2, 1), 17255)], D(2024, 2, 1))
    assert [r.interest for r in before.installments] == [1000, 837, 673, 507, 340, 171]
    events: list[Event] = [Payment(1, D(2024, 2, 1), 17255), Payment(2, D(2024, 2, 16), 40000)]
    state = project(LOAN6, events, D(2024, 2, 16))
    # 02-16: #2 (due 03-01) is the current installment and is paid as scheduled first: interest 8.37 +
    # principal 164.18 = 172.55; the remaining 400.00 - 172.55 = 227.45 prepays principal (reduce_term)
    assert state.allocations[2] == Allocation(principal=16418 + 22745, interest=837)
    # balance after #2: 837.45 - 164.18 - 227.45 = 445.82, re-amortised at 172.55 from #2's due date:
    # #3 interest 445.82 * 1 % = 4.4582 -> 4.46, principal 168.09, balance 277.73
    # #4 interest 2.7773 -> 2.78, principal 169.77, balance 107.96
    # #5 interest 1.0796 -> 1.08, principal 107.96 (last): the term shrinks from 6 to 5 installments
    assert rows(state) == [
        (1, 16255, 1000, 0, 16255, 1000),
        (2, 16418 + 22745, 837, 0, 16418 + 22745, 837),
        (3, 16809, 446, 0, 0, 0),
        (4, 16977, 278, 0, 0, 0),
        (5, 10796, 108, 0, 0, 0),
    ]
    assert state.installment_amount == 17255 and state.installments[2].total == 17255
    assert state.maturity_date == D(2024, 6, 1)
    # future interest 4.46 + 2.78 + 1.08 = 8.32 instead of 6.73 + 5.07 + 3.40 + 1.71 = 16.91.
    # #2's interest 8.37 was taken whole, but only 8.37 * 15 / 30 = 4.185 -> 4.19 has accrued by 02-16: the other
    # 4.18 is interest received in advance (a liability), so the payoff is 445.82 - 4.18 = 441.64
    assert balances(state) == (44582, 0, 0, 0) and state.interest_in_advance == 418
    assert state.total_outstanding == 44164
    # nothing is due on 03-01 any more: #2 is paid; next is #3
    assert state.next_due == (D(2024, 4, 1), 17255)
    assert roles(state) == {
        "fund_source": 17255 + 40000 - 100000,
        "loan_portfolio": 44582,
        "interest_income": -1419,
        "interest_received_in_advance": -418,
    }
    # on 03-01 #2's interest is recognised in full: the advance is gone, nothing is receivable
    march = project(LOAN6, events, D(2024, 3, 1))
    assert (march.interest_outstanding, march.interest_in_advance, march.days_past_due) == (0, 0, 0)


def test_overpayment_leaves_a_credit_and_a_refund_closes_the_loan() -> None:
    pay = Payment(1, D(2024, 1, 16), 120000)
    state = project(LOAN3, [pay], D(2024, 1, 16))
    # payoff on 01-16 = 1000.00 + 10.00 * 15 / 30 = 1005.00; the excess 1200.00 - 1005.00 = 195.00 is a credit
    assert state.allocations == {1: Allocation(principal=100000, interest=500, overpayment=19500)}
    assert state.status == LoanStatus.overpaid and state.credit == 19500 and balances(state) == (0, 0, 0, 0)
    # the period's interest is cut to what had accrued; #2 and #3 fold into #1
    assert rows(state) == [(1, 100000, 500, 0, 100000, 500)]
    assert roles(state) == {"fund_source": 20000, "overpayment_liability": -19500, "interest_income": -500}

    refunded = project(LOAN3, [pay, Refund(2, D(2024, 1, 20), 19500)], D(2024, 1, 20))
    assert refunded.status == LoanStatus.closed and refunded.credit == 0
    assert roles(refunded) == {"fund_source": 500, "interest_income": -500}
    partly = project(LOAN3, [pay, Refund(2, D(2024, 1, 20), 5000)], D(2024, 1, 20))
    assert partly.status == LoanStatus.overpaid and partly.credit == 14500
    # a refund beyond the credit (only a replay can produce one: its payment was reversed) is owed again as
    # principal: 0.01 with #1, which the closed loan folded into one installment due 02-01; the loan reopens
    beyond = project(LOAN3, [pay, Refund(2, D(2024, 1, 20), 19501)], D(2024, 1, 20))
    assert beyond.status == LoanStatus.active and beyond.credit == 0 and beyond.principal_outstanding == 1
    assert roles(beyond) == {"fund_source": 499, "loan_portfolio": 1, "interest_income": -500}


def test_a_backdated_payment_between_two_later_ones_changes_the_later_allocation() -> None:
    on_time, late = Payment(1, D(2024, 2, 1), 34002), Payment(2, D(2024, 3, 20), 34002)
    before = project(LOAN3, [on_time, late], D(2024, 3, 20))
    # 03-07: #2 unpaid -> fee 15.00. 03-20: fee 15.00, interest 6.70, principal 340.02 - 21.70 = 318.32
    assert before.allocations[2] == Allocation(principal=31832, interest=670, penalties=1500)
    assert before.days_past_due == 19  # #2 still owes 15.00 of principal since 03-01

    backdated = Payment(3, D(2024, 3, 5), 34002)  # recorded last, effective 03-05
    state = project(LOAN3, [on_time, late, backdated], D(2024, 3, 20))
    # 03-05 pays #2 in full before its fee trigger (03-07): no fee at all
    assert state.allocations[3] == Allocation(principal=33332, interest=670)
    assert state.totals.penalties_charged == 0
    # 03-20 now finds nothing due: #3 accrued 3.37 * 19 / 30 = 2.1343 -> 2.13; the rest 337.89 covers the
    # principal 336.66 -> the loan closes with 1.23 overpaid
    assert state.allocations[2] == Allocation(principal=33666, interest=213, overpayment=123)
    assert state.allocations[1] == before.allocations[1]
    assert state.status == LoanStatus.overpaid and state.credit == 123 and state.days_past_due == 0
    # interest earned 10.00 + 6.70 + 2.13 = 18.83; cash 3 * 340.02 - 1000.00 = 20.06 = 18.83 + 1.23
    assert roles(state) == {"fund_source": 2006, "overpayment_liability": -123, "interest_income": -1883}
    # the insertion order of events does not matter, only (date, seq)
    assert roles(project(LOAN3, [backdated, late, on_time], D(2024, 3, 20))) == roles(state)


def test_reversing_a_middle_payment_equals_the_projection_without_it() -> None:
    p1, p2, p3 = Payment(1, D(2024, 2, 1), 34002), Payment(2, D(2024, 3, 1), 34002), Payment(3, D(2024, 4, 1), 34003)
    assert project(LOAN3, [p1, p2, p3], D(2024, 4, 1)).status == LoanStatus.closed
    # a reversal is a recompute: the reversed event is simply not in force any more
    state = project(LOAN3, [p1, p3], D(2024, 4, 1))
    # without 03-01: #2 late -> fee 15.00 on 03-07; 04-01 pays #2: fee 15.00, interest 6.70, principal 318.33
    assert state.allocations == {1: Allocation(principal=33002, interest=1000), 3: Allocation(31833, 670, 0, 1500)}
    assert state.status == LoanStatus.active and state.days_past_due == 31  # 04-01 - 03-01
    # principal 333.32 - 318.33 = 14.99 of #2 + 336.66 of #3; interest #3's 3.37 (accrued in full on 04-01)
    assert balances(state) == (1499 + 33666, 337, 0, 0)
    assert roles(state) == {
        "fund_source": 34002 + 34003 - 100000,
        "loan_portfolio": 35165,
        "interest_receivable": 337,
        "interest_income": -2007,
        "penalty_income": -1500,
    }


def test_paying_the_payoff_quote_on_a_mid_period_date_closes_the_loan() -> None:
    events: list[Event] = [Payment(1, D(2024, 2, 1), 34002)]
    quote = project(LOAN3, events, D(2024, 2, 16))
    # payoff on 02-16 = principal 669.98 + #2 accrued 6.70 * 15 / 30 = 3.35 -> 673.33; per diem 669.98*12%/360
    assert (quote.principal_outstanding, quote.interest_outstanding, quote.total_outstanding) == (66998, 335, 67333)
    assert quote.per_diem == 22
    state = project(LOAN3, [*events, Payment(2, D(2024, 2, 16), quote.total_outstanding)], D(2024, 2, 16))
    assert state.allocations[2] == Allocation(principal=66998, interest=335)
    assert state.status == LoanStatus.closed and state.closed_on == D(2024, 2, 16)
    assert balances(state) == (0, 0, 0, 0) and state.credit == 0 and state.total_outstanding == 0
    assert roles(state) == {"fund_source": 1335, "interest_income": -1335}
    # a cent less leaves the loan open with a cent of principal
    # (#2 is paid as scheduled, 340.02 of which 6.70 - 3.35 = 3.35 is interest in advance; 333.30 prepays
    # principal, leaving 669.98 - 333.32 - 333.30 = 3.36 of principal less the 3.35 advance = 0.01)
    short = project(LOAN3, [*events, Payment(2, D(2024, 2, 16), 67332)], D(2024, 2, 16))
    assert short.status == LoanStatus.active and short.total_outstanding == 1
    assert (short.principal_outstanding, short.interest_in_advance) == (336, 335)


def test_write_off_then_a_recovery_payment() -> None:
    events: list[Event] = [Payment(1, D(2024, 2, 1), 34002), WriteOff(2, D(2024, 3, 16)), Payment(3, D(2024, 3, 20), 5000)]
    state = project(LOAN3, events, D(2024, 3, 20))
    # on 03-16: principal 669.98; interest recognised 10.00 + 6.70 + 3.37 * 15 / 30 = 1.685 -> 1.69 = 18.39,
    # of which 10.00 paid -> 8.39 unpaid; #2's fee 15.00 (03-07). Written off 669.98 + 8.39 + 15.00 = 693.37
    t = state.totals
    assert (t.principal_written_off, t.interest_written_off, t.penalties_written_off) == (66998, 839, 1500)
    assert state.allocations[3] == Allocation(recovery=5000)
    assert state.status == LoanStatus.written_off and state.written_off_on == D(2024, 3, 16)
    assert balances(state) == (0, 0, 0, 0) and state.days_past_due == 0
    assert roles(state) == {
        "fund_source": 34002 + 5000 - 100000,
        "interest_income": -1839,
        "penalty_income": -1500,
        "recovery_income": -5000,
        "write_off_expense": 69337,
    }
    # no further accrual after a write-off
    assert roles(project(LOAN3, events, D(2024, 6, 1))) == roles(state)


def test_payoff_quote_on_a_late_fee_trigger_day_closes_the_loan() -> None:
    # 02-07 is #1's trigger day (DPD 6 > 5). The end-of-day state carries the 15.00 fee, but a payment dated
    # 02-07 settles before the day's fees, so the quote leaves it out: 1000.00 + 10.00 + 6.70 * 6 / 30 = 1.34
    assert project(LOAN3, [], D(2024, 2, 7)).total_outstanding == 100000 + 1134 + 1500
    quote = payoff_quote(LOAN3, [], D(2024, 2, 7))
    assert quote.total_outstanding == 100000 + 1134
    state = project(LOAN3, [Payment(1, D(2024, 2, 7), quote.total_outstanding)], D(2024, 2, 7))
    assert state.status == LoanStatus.closed and state.credit == 0 and balances(state) == (0, 0, 0, 0)


def test_a_payment_received_while_written_off_is_a_recovery_only_while_the_write_off_stands() -> None:
    paid = Payment(2, D(2024, 3, 10), 5000, recovery=True)
    written_off = project(LOAN3, [WriteOff(1, D(2024, 3, 16)), paid], D(2024, 3, 20))
    assert written_off.allocations[2] == Allocation(recovery=5000)
    # The write-off reversed (its event gone): the same payment is an ordinary repayment again.
    reopened = project(LOAN3, [paid], D(2024, 3, 20))
    assert reopened.allocations[2].recovery == 0 and reopened.allocations[2].total == 5000
