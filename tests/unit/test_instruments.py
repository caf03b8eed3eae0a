"""Golden scenarios and properties of the servicing instruments in the pure projection (CONTRACT "Servicing
instruments"; app/domain/instruments.py): ad-hoc charges, waivers, goodwill credits and chargebacks, each an
event re-evaluated like a payment. Minor units throughout (10662 = 106.62).

LOAN12 (tests/unit/test_servicing_rules.py): 1,200.00 at 12 %, 12 monthly installments, 30/360, disbursed
2024-01-01, late fee 10.00 once per installment after 5 grace days.
  annuity 106.62; #1 due 02-01: interest 12.00, principal 94.62, balance 1105.38
  #2 due 03-01: interest 11.05, principal 95.57, balance 1009.81
  #3 due 04-01: interest 1009.81 * 1 % = 10.0981 -> 10.10, principal 96.52, balance 913.29
"""

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from app.domain.instruments import (
    Charge,
    Chargeback,
    ChargeCollection,
    ChargeKind,
    FeeRule,
    ProductCharge,
    Waiver,
    WaiverBucket,
    disbursement_fees,
    loan_apr,
    nsf_fees,
)
from app.domain.lifecycle import LoanStatus
from app.domain.schedule import generate_schedule
from app.domain.servicing import (
    Allocation,
    Event,
    InterestRecalculation,
    LoanState,
    LoanTerms,
    Payment,
    period_numbers,
    project,
    resume,
)
from tests.unit.test_servicing_properties import PROPERTY_SETTINGS, check_invariants, loan_terms
from tests.unit.test_servicing_properties import Case as PaymentCase
from tests.unit.test_servicing_rules import LOAN12, roles

D = date
NO_FEE = replace(LOAN12, late_fee=None)
PERCENT_2_DEDUCTED = ProductCharge("ORIG", "Origination", ChargeKind.disbursement, FeeRule(percent=Decimal(2)),
                                   ChargeCollection.deducted)


def fees(state: LoanState) -> list[int]:
    return [r.fees for r in state.installments]


# --- ad-hoc charges ---------------------------------------------------------------------------------------------


def test_a_charge_falls_in_the_installment_whose_period_holds_its_due_date() -> None:
    # #1 and #2 paid on their due dates; a 25.00 charge due 03-15 lies in #3's period (03-01, 04-01]
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Payment(2, D(2024, 3, 1), 10662),
                           Charge(3, D(2024, 3, 15), 2500)]
    state = project(NO_FEE, events, D(2024, 3, 20))
    assert fees(state)[:4] == [0, 0, 2500, 0]
    assert state.allocations[3] == Allocation(fees=2500)
    assert state.fees_outstanding == 2500
    # owed from its due date: Dr 1210 fees receivable 25.00, Cr 4100 fee income 25.00
    assert roles(state)["fees_receivable"] == 2500 and roles(state)["fee_income"] == -2500
    # the 04-01 payment of 106.62 + 25.00 = 131.62 pays #3 in full (fees before interest and principal)
    paid = project(NO_FEE, [*events, Payment(4, D(2024, 4, 1), 13162)], D(2024, 4, 1))
    assert paid.allocations[4] == Allocation(principal=9652, interest=1010, fees=2500)
    assert paid.installments[2].outstanding == 0 and paid.fees_outstanding == 0


def test_a_charge_is_not_owed_before_its_due_date_and_a_due_date_on_a_due_date_belongs_to_that_row() -> None:
    events: list[Event] = [Charge(1, D(2024, 2, 1), 500)]
    assert fees(project(NO_FEE, events, D(2024, 1, 31)))[0] == 0  # as of the day before: nothing charged
    assert fees(project(NO_FEE, events, D(2024, 2, 1)))[:2] == [500, 0]  # due 02-01 -> #1 (due 02-01)


def test_a_charge_past_maturity_lands_on_the_last_installment() -> None:
    state = project(NO_FEE, [Charge(1, D(2025, 3, 1), 700)], D(2025, 3, 1))
    assert fees(state)[-1] == 700 and sum(fees(state)) == 700


def test_a_payment_booked_after_a_charge_of_its_day_pays_the_fee_first() -> None:
    # charge 30.00 due 02-01 on #1; a payment of 136.62 on 02-01 = 30.00 fee + 12.00 interest + 94.62 principal
    state = project(NO_FEE, [Payment(3, D(2024, 2, 1), 13662), Charge(2, D(2024, 2, 1), 3000)], D(2024, 2, 2))
    assert state.allocations[3] == Allocation(principal=9462, interest=1200, fees=3000)
    # events of one day apply in booking order: booked before the charge, the payment pays #1 and prepays 30.00
    earlier = project(NO_FEE, [Payment(1, D(2024, 2, 1), 13662), Charge(2, D(2024, 2, 1), 3000)], D(2024, 2, 2))
    assert earlier.allocations[1] == Allocation(principal=9462 + 3000 - 1105, interest=1200 + 1105)


# --- waivers ----------------------------------------------------------------------------------------------------


def test_waiving_half_a_penalty() -> None:
    # #1 unpaid: the 10.00 late fee is charged at the end of 02-07 (due 02-01 + 5 grace days + 1)
    late = project(LOAN12, [], D(2024, 2, 10))
    assert late.penalties_outstanding == 1000
    state = project(LOAN12, [Waiver(1, D(2024, 2, 10), WaiverBucket.penalties, 500)], D(2024, 2, 10))
    row = state.installments[0]
    assert (row.penalties, row.waived_penalties) == (500, 500)  # owed 5.00, forgiven 5.00 of the 10.00 charged
    assert state.allocations[1] == Allocation(penalties=500)
    assert state.penalties_outstanding == 500
    # Dr 4200 penalty income 5.00, Cr 1220 penalties receivable 5.00: income 10.00 - 5.00, receivable 5.00
    assert roles(state)["penalty_income"] == -500 and roles(state)["penalties_receivable"] == 500


def test_a_waiver_never_forgives_more_than_is_owed() -> None:
    state = project(LOAN12, [Waiver(1, D(2024, 2, 10), WaiverBucket.penalties, 5000)], D(2024, 2, 10))
    assert state.allocations[1] == Allocation(penalties=1000)  # the service refuses the request (422)
    assert state.penalties_outstanding == 0


def test_waiving_interest_forgives_due_installments_oldest_first_and_not_the_running_period() -> None:
    # as of 03-10: #1 (12.00) and #2 (11.05) are due and unpaid; #3's interest is still accruing
    state = project(NO_FEE, [Waiver(1, D(2024, 3, 10), WaiverBucket.interest, 2000)], D(2024, 3, 10))
    first, second, third = state.installments[:3]
    assert (first.interest, first.waived_interest) == (0, 1200)  # all of #1's 12.00
    assert (second.interest, second.waived_interest) == (305, 800)  # 8.00 of #2's 11.05: 3.05 left
    assert third.waived_interest == 0
    too_much = project(NO_FEE, [Waiver(1, D(2024, 3, 10), WaiverBucket.interest, 5000)], D(2024, 3, 10))
    assert too_much.allocations[1] == Allocation(interest=2305)  # 12.00 + 11.05 is all that is due
    # income recognised is lowered by the waiver: Dr 4000, Cr 1200
    base = project(NO_FEE, [], D(2024, 3, 10))
    assert roles(base)["interest_income"] - roles(state)["interest_income"] == -2000


def test_a_backdated_payment_that_pays_the_penalty_leaves_the_waiver_nothing_to_forgive() -> None:
    # the payment of 116.62 on 02-08 pays #1 with its 10.00 late fee; the waiver of 02-10 then forgives nothing
    events: list[Event] = [Waiver(2, D(2024, 2, 10), WaiverBucket.penalties, 500), Payment(3, D(2024, 2, 8), 11662)]
    state = project(LOAN12, events, D(2024, 2, 10))
    assert state.allocations[3] == Allocation(principal=9462, interest=1200, penalties=1000)
    assert state.allocations[2] == Allocation()


# --- goodwill credits -------------------------------------------------------------------------------------------


def test_a_goodwill_credit_pays_installment_one_like_a_payment() -> None:
    state = project(NO_FEE, [Payment(1, D(2024, 2, 1), 10662, goodwill=True)], D(2024, 2, 1))
    assert state.allocations[1] == Allocation(principal=9462, interest=1200)
    assert state.installments[0].outstanding == 0 and state.days_past_due == 0
    books = roles(state)
    # Dr 5100 goodwill expense 106.62, Cr 1100 94.62 and 1200 12.00: no cash moved beyond the disbursement
    assert books["goodwill_expense"] == 10662
    assert books["fund_source"] == -120000
    assert books["loan_portfolio"] == 120000 - 9462


# --- chargebacks ------------------------------------------------------------------------------------------------


def test_a_chargeback_makes_the_repayment_principal_due_again() -> None:
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Chargeback(2, D(2024, 2, 10), 10662)]
    state = project(NO_FEE, events, D(2024, 2, 10))
    # 1105.38 left after #1 plus the 106.62 returned to the payer: 1212.00 principal owed
    assert state.principal_outstanding == 121200
    # due at once: an installment of its own due 02-10 (no interest); the old #2 (due 03-01) is now #3
    at_once = state.installments[1]
    assert (at_once.number, at_once.period_start, at_once.due_date) == (2, D(2024, 2, 10), D(2024, 2, 10))
    assert (at_once.principal, at_once.interest) == (10662, 0)
    assert [(r.number, r.due_date, r.principal) for r in state.installments[2:4]] == [
        (3, D(2024, 3, 1), 9557), (4, D(2024, 4, 1), 9652)]
    assert len(state.installments) == 13
    assert state.next_due == (D(2024, 2, 10), 10662)
    assert state.allocations[2] == Allocation(principal=10662)
    books = roles(state)
    # Dr 1100 loan portfolio 106.62, Cr 1000 fund source 106.62 (the money went back to the payer)
    assert books["loan_portfolio"] == 121200 and books["fund_source"] == -120000
    assert "overpayment_liability" not in books


def test_chargeback_principal_is_due_on_its_date_golden() -> None:
    """LOAN12 (late fee 10.00 after 5 grace days); #1 paid on its due date 02-01, then 50.00 of that repayment
    charged back on 02-15, in the middle of #2's period (02-01, 03-01]."""
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Chargeback(2, D(2024, 2, 15), 5000)]
    on_the_day = project(LOAN12, events, D(2024, 2, 15))
    # a row due 02-15 itself: period start = due date = 02-15, principal 50.00, no interest; 12 + 1 rows
    assert [(r.number, r.period_start, r.due_date, r.principal, r.interest)
            for r in on_the_day.installments[:3]] == [
        (1, D(2024, 1, 1), D(2024, 2, 1), 9462, 1200),
        (2, D(2024, 2, 15), D(2024, 2, 15), 5000, 0),
        (3, D(2024, 2, 1), D(2024, 3, 1), 9557, 1105)]
    assert [r.number for r in on_the_day.installments] == list(range(1, 14))
    # principal 1200.00 - 94.62 + 50.00 = 1155.38; not past due on its own date, and due now
    assert on_the_day.principal_outstanding == 115538
    assert on_the_day.days_past_due == 0 and on_the_day.next_due == (D(2024, 2, 15), 5000)
    # unpaid the next day: 1 day past due; next due = #3's 106.62 + the 50.00 arrears
    next_day = project(LOAN12, events, D(2024, 2, 16))
    assert next_day.days_past_due == 1
    assert next_day.installments[1].status(D(2024, 2, 16)) == "overdue"
    assert next_day.next_due == (D(2024, 3, 1), 10662 + 5000)
    # the payoff is what it was without the chargeback plus the 50.00 (no interest on the row itself)
    assert next_day.total_outstanding == project(LOAN12, events[:1], D(2024, 2, 16)).total_outstanding + 5000
    # still unpaid at the end of 02-21 (DPD 6 > 5 grace days): its late fee of 10.00, like any installment
    late = project(LOAN12, events, D(2024, 2, 21))
    assert late.days_past_due == 6 and late.installments[1].penalties == 1000
    assert late.installments[1].late_fee_date == D(2024, 2, 21)
    assert project(LOAN12, events, D(2024, 2, 20)).penalties_outstanding == 0
    # a payment of 60.00 on 02-20 pays it first (the oldest due), then 10.00 of #3's interest (11.05)
    paid = project(LOAN12, [*events, Payment(3, D(2024, 2, 20), 6000)], D(2024, 2, 20))
    assert paid.allocations[3] == Allocation(principal=5000, interest=1000)
    assert paid.installments[1].outstanding == 0 and paid.days_past_due == 0
    assert paid.installments[2].paid_interest == 1000
    # reversing the chargeback is replaying without it: the row is gone, numbers as before
    without = project(LOAN12, [events[0], Payment(3, D(2024, 2, 20), 6000)], D(2024, 2, 20))
    assert len(without.installments) == 12 and [r.number for r in without.installments] == list(range(1, 13))
    assert all(not r.due_at_once for r in without.installments)


def test_a_chargeback_on_a_due_date_follows_the_installment_due_that_day() -> None:
    # nothing paid; 20.00 charged back of a payment on 03-01, #2's due date: #1, #2 (due 03-01), then the row
    events: list[Event] = [Payment(1, D(2024, 1, 15), 2000), Chargeback(2, D(2024, 3, 1), 2000)]
    state = project(NO_FEE, events, D(2024, 3, 1))
    assert [(r.number, r.due_date, r.due_at_once) for r in state.installments[:4]] == [
        (1, D(2024, 2, 1), False), (2, D(2024, 3, 1), False), (3, D(2024, 3, 1), True), (4, D(2024, 4, 1), False)]


def test_a_payment_backdated_before_a_chargeback_keeps_the_row_due_at_once() -> None:
    # 02-10: 50.00 charged back (row due 02-10); a payment of 200.00 backdated to 02-05 is allocated before it
    # exists (#2 as scheduled, 106.62, then 93.38 prepays principal); the row is still due 02-10 and unpaid.
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Chargeback(2, D(2024, 2, 10), 5000),
                           Payment(3, D(2024, 2, 5), 20000)]
    state = project(NO_FEE, events, D(2024, 2, 12))
    row = state.installments[1]
    assert (row.number, row.due_date, row.principal, row.paid_principal) == (2, D(2024, 2, 10), 5000, 0)
    assert state.installments[2].paid_principal == 9557 + 9338  # #2 (now 3) as scheduled, then the prepayment
    assert state.days_past_due == 2
    stored = project(NO_FEE, [events[0], events[2]], D(2024, 2, 5))
    resumed = resume(NO_FEE, stored.installments, stored.checkpoint, [events[1]], D(2024, 2, 12))
    assert resumed.installments == state.installments and resumed.totals == state.totals


def test_resuming_from_stored_rows_with_a_row_due_at_once_equals_replaying() -> None:
    # the stored rows are numbered in order (1..13); the projection renumbers them to periods and back
    terms = replace(LOAN12, installment_fees=(FeeRule(amount=500),))
    first = [Payment(1, D(2024, 2, 1), 11162), Chargeback(2, D(2024, 2, 15), 5000)]
    later = [Payment(3, D(2024, 3, 20), 30000), Payment(4, D(2024, 12, 1), 30000)]
    stored = project(terms, first, D(2024, 2, 16))
    assert [r.number for r in stored.installments] == list(range(1, 14))
    resumed = resume(terms, stored.installments, stored.checkpoint, later, D(2025, 2, 1))
    replayed = project(terms, first + later, D(2025, 2, 1))
    assert resumed.installments == replayed.installments and resumed.totals == replayed.totals
    # every contractual installment (the 12th is row 13) still carries its 5.00 installment fee; the row due
    # at once none
    assert [r.fees for r in replayed.installments if not r.due_at_once] == [500] * len(
        [r for r in replayed.installments if not r.due_at_once])
    assert [r.fees for r in replayed.installments if r.due_at_once] == [0]


def test_a_chargeback_reopens_a_paid_off_loan() -> None:
    payoff = project(NO_FEE, [], D(2024, 1, 1)).total_outstanding  # 1200.00: nothing accrued on day 0
    events: list[Event] = [Payment(1, D(2024, 1, 1), payoff), Chargeback(2, D(2024, 1, 5), 20000)]
    assert project(NO_FEE, events[:1], D(2024, 1, 1)).status == LoanStatus.closed
    state = project(NO_FEE, events, D(2024, 1, 5))
    assert state.status == LoanStatus.active and state.principal_outstanding == 20000


def test_a_chargeback_after_an_early_payoff_keeps_the_settled_interest() -> None:
    # #1 paid 02-01; paid off on 02-10 (#2 due 03-01 keeps 9 days of its interest: 11.05 * 9/30 = 3.315 -> 3.32);
    # 50.00 charged back on 02-15 goes in before #2 (due 03-01): #2 stays settled, nothing more accrues on it
    payoff = project(NO_FEE, [Payment(1, D(2024, 2, 1), 10662)], D(2024, 2, 10)).total_outstanding
    assert payoff == 110538 + 332
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Payment(2, D(2024, 2, 10), payoff),
                           Chargeback(3, D(2024, 2, 15), 5000)]
    state = project(NO_FEE, events, D(2024, 2, 20))
    assert state.status == LoanStatus.active
    assert [(r.number, r.due_date, r.interest, r.outstanding) for r in state.installments] == [
        (1, D(2024, 2, 1), 1200, 0), (2, D(2024, 2, 15), 0, 5000), (3, D(2024, 3, 1), 332, 0)]
    assert state.totals.interest_recognized == 1200 + 332
    assert (state.interest_outstanding, state.interest_in_advance) == (0, 0)
    assert state.total_outstanding == 5000 and state.days_past_due == 5


def test_a_chargeback_on_a_simple_interest_loan_is_due_at_once_too() -> None:
    # LOAN12 with daily recalculation (actual/365): the 50.00 charged back on 02-15 is its own row due 02-15;
    # the open installments are re-estimated on the rest of the principal (the row is assumed paid at once)
    terms = replace(NO_FEE, schedule=replace(NO_FEE.schedule, day_count="actual/365"),
                    interest_recalculation=InterestRecalculation.daily)
    events: list[Event] = [Payment(1, D(2024, 2, 1), 10662), Chargeback(2, D(2024, 2, 15), 5000)]
    state = project(terms, events, D(2024, 2, 16))
    row = state.installments[1]
    assert (row.number, row.period_start, row.due_date, row.principal, row.interest) == (
        2, D(2024, 2, 15), D(2024, 2, 15), 5000, 0)
    assert len(state.installments) == 13 and state.days_past_due == 1
    # every cent of principal owed sits in exactly one row
    assert sum(r.principal - r.paid_principal for r in state.installments) == state.principal_outstanding
    assert state.principal_outstanding == project(terms, events[:1], D(2024, 2, 16)).principal_outstanding + 5000


def test_a_chargeback_on_an_overpaid_loan_takes_the_credit_first() -> None:
    # 1250.00 on day 0 closes the loan with 50.00 credit; a 80.00 chargeback: 50.00 from the credit, 30.00 owed
    events: list[Event] = [Payment(1, D(2024, 1, 1), 125000), Chargeback(2, D(2024, 1, 5), 8000)]
    state = project(NO_FEE, events, D(2024, 1, 5))
    assert state.allocations[2] == Allocation(principal=3000, overpayment=5000)
    assert state.credit == 0 and state.principal_outstanding == 3000


# --- properties -------------------------------------------------------------------------------------------------


@st.composite
def instrument_cases(draw: st.DrawFn) -> tuple[LoanTerms, list[Event], date]:
    terms = draw(loan_terms())
    start = terms.schedule.disbursement_date
    installment = project(terms, [], start).installment_amount
    horizon = (project(terms, [], start).maturity_date - start).days + 60
    events: list[Event] = []
    for seq in range(1, draw(st.integers(0, 10)) + 1):
        on = start + timedelta(days=draw(st.integers(0, horizon)))
        amount = draw(st.integers(1, max(1, installment * 2)))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            events.append(Payment(seq, on, amount))
        elif kind == 1:
            events.append(Payment(seq, on, amount, goodwill=True))
        elif kind == 2:
            events.append(Charge(seq, on, amount))
        elif kind == 3:
            events.append(Waiver(seq, on, draw(st.sampled_from(list(WaiverBucket))), amount))
        else:
            events.append(Chargeback(seq, on, amount))
    as_of = start + timedelta(days=horizon + draw(st.integers(0, 30)))
    return terms, events, as_of


@PROPERTY_SETTINGS
@given(instrument_cases())
def test_the_books_balance_and_receivables_equal_balances_whatever_the_instruments(
    case: tuple[LoanTerms, list[Event], date],
) -> None:
    terms, events, as_of = case
    state = project(terms, events, as_of)
    books = roles(state)
    assert sum(books.values()) == 0
    assert all(v >= 0 for v in vars(state.totals).values()), state.totals
    if state.status == LoanStatus.active:
        # the per-loan ledger (these target balances) equals the loan's balances, account by account
        assert books.get("loan_portfolio", 0) == state.principal_outstanding
        assert books.get("fees_receivable", 0) == state.fees_outstanding
        assert books.get("penalties_receivable", 0) == state.penalties_outstanding
        assert books.get("interest_receivable", 0) == state.interest_outstanding
        assert -books.get("interest_received_in_advance", 0) == state.interest_in_advance
    assert -books.get("overpayment_liability", 0) == state.credit
    for row in state.installments:
        for part in ("principal", "interest", "fees", "penalties"):
            assert 0 <= getattr(row, "paid_" + part) <= getattr(row, part), (row, part)
        assert min(row.waived_interest, row.waived_fees, row.waived_penalties) >= 0
    for event in events:
        if event.date <= as_of and event.seq in state.allocations:
            assert all(v >= 0 for v in vars(state.allocations[event.seq]).values())


@PROPERTY_SETTINGS
@given(instrument_cases())
def test_rows_are_numbered_in_due_date_order_and_a_chargeback_row_is_past_due_from_the_next_day(
    case: tuple[LoanTerms, list[Event], date],
) -> None:
    terms, events, as_of = case
    state = project(terms, events, as_of)
    rows = state.installments
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    assert all(a.due_date <= b.due_date for a, b in pairwise(rows))
    # the contractual rows keep consecutive period numbers (the due-date grid) around the rows due at once
    periods = [p for r, p in zip(rows, period_numbers(rows), strict=True) if not r.due_at_once]
    assert periods == list(range(1, len(periods) + 1))
    at_once = [r for r in rows if r.due_at_once]
    if not any(isinstance(e, Chargeback) and e.date <= as_of for e in events):
        assert at_once == []
    if state.status == LoanStatus.active:
        unpaid = [r for r in at_once if r.due_date < as_of and r.outstanding_principal_interest > 0]
        assert all(state.days_past_due >= (as_of - r.due_date).days for r in unpaid)


@PROPERTY_SETTINGS
@given(instrument_cases(), st.data())
def test_reversing_an_instrument_equals_removing_it(case: tuple[LoanTerms, list[Event], date], data: st.DataObject) -> None:
    terms, events, as_of = case
    if not events:
        return
    gone = data.draw(st.sampled_from(events))
    kept = [e for e in events if e is not gone]
    # a reversal is a recompute without the event: the projection of the rest, whatever the event was
    assert roles(project(terms, kept, as_of)) == roles(project(terms, list(reversed(kept)), as_of))


@PROPERTY_SETTINGS
@given(instrument_cases())
def test_payments_only_cases_keep_the_payment_invariants(case: tuple[LoanTerms, list[Event], date]) -> None:
    terms, events, as_of = case
    payments = tuple(e for e in events if isinstance(e, Payment) and not e.goodwill)
    check_invariants(PaymentCase(terms, payments, as_of), project(terms, payments, as_of))


# --- product charges ----------------------------------------------------------------------------------------------

LOAN1000 = replace(NO_FEE, schedule=replace(NO_FEE.schedule, principal=Decimal("1000.00")))


def _independent_apr(financed: Decimal, payments: list[Decimal]) -> Decimal:
    """Monthly unit period, payment k at k periods: bisection on 1 + i, APR = 12 i (App. J actuarial)."""
    lo, hi = Decimal(0), Decimal(1)
    for _ in range(200):
        mid = (lo + hi) / 2
        pv = sum(p / (1 + mid) ** k for k, p in enumerate(payments, 1))
        lo, hi = (mid, hi) if pv > financed else (lo, mid)
    return (lo * 1200).quantize(Decimal("0.0001"))


def test_a_deducted_two_percent_disbursement_fee() -> None:
    # 2 % of 1000.00 = 20.00 deducted: the borrower receives 980.00 and owes 1000.00 (88.85 a month)
    deducted, capitalized = disbursement_fees([PERCENT_2_DEDUCTED], 100000)
    assert (deducted, capitalized) == (2000, 0)
    terms = replace(LOAN1000, disbursement_fees=deducted)
    state = project(terms, [], D(2024, 1, 1))
    books = roles(state)
    # Dr 1100 1000.00; Cr 1000 980.00, Cr 4100 20.00 (fee income at once; nothing receivable)
    assert books["loan_portfolio"] == 100000 and books["fund_source"] == -98000 and books["fee_income"] == -2000
    assert "fees_receivable" not in books and state.fees_outstanding == 0
    schedule = generate_schedule(terms.schedule)
    payments = [row.total for row in schedule.installments]
    assert payments[0] == Decimal("88.85")
    apr = loan_apr(schedule, 98000, (), 2)
    # App. J: amount financed 980.00 against the same payments; 12 % nominal without the fee
    assert apr == _independent_apr(Decimal("980.00"), payments)
    assert loan_apr(schedule, 100000, (), 2) == _independent_apr(Decimal("1000.00"), payments)
    # 15.8555 % against 12.0009 % without the fee (cent rounding): the prepaid 20.00 adds 3.85 pp
    assert (apr, loan_apr(schedule, 100000, (), 2)) == (Decimal("15.8555"), Decimal("12.0009"))


def test_a_capitalized_fee_is_financed() -> None:
    # 20.00 capitalized: the schedule amortizes 1020.00, the borrower receives 1000.00
    charge = ProductCharge("CAP", "Origination", ChargeKind.disbursement, FeeRule(amount=2000),
                           ChargeCollection.capitalized)
    assert disbursement_fees([charge], 100000) == (0, 2000)
    terms = replace(LOAN1000, schedule=replace(LOAN1000.schedule, principal=Decimal("1020.00")),
                    disbursement_fees=2000)
    state = project(terms, [], D(2024, 1, 1))
    books = roles(state)
    # Dr 1100 1020.00; Cr 1000 1000.00, Cr 4100 20.00
    assert books["loan_portfolio"] == 102000 and books["fund_source"] == -100000 and books["fee_income"] == -2000
    # 1020 at 1 % a month over 12: annuity 90.6258 -> 90.63
    assert state.installment_amount == 9063


def test_an_installment_fee_in_every_row() -> None:
    # 5.00 per installment, charged as each period begins: #1 at disbursement, #k on #(k-1)'s due date
    terms = replace(NO_FEE, installment_fees=(FeeRule(amount=500),))
    assert fees(project(terms, [], D(2024, 1, 1)))[:3] == [500, 0, 0]
    assert fees(project(terms, [], D(2024, 2, 1)))[:3] == [500, 500, 0]
    at_maturity = project(terms, [], D(2025, 1, 1))
    assert fees(at_maturity) == [500] * 12
    # paying installment #1 as scheduled (106.62 + 5.00) early, on 01-20, pays it in full
    paid = project(terms, [Payment(1, D(2024, 1, 20), 11162)], D(2024, 1, 20))
    assert paid.installments[0].outstanding == 0 and paid.allocations[1].fees == 500
    # a percent: 1 % of the installment (106.62) = 1.0662 -> 1.07
    percent = replace(NO_FEE, installment_fees=(FeeRule(percent=Decimal(1)),))
    assert fees(project(percent, [], D(2024, 1, 1)))[0] == 107
    # the payoff on day 0 includes #1's fee (charged) and not the others (not begun)
    assert project(terms, [], D(2024, 1, 1)).total_outstanding == 120000 + 500


def test_nsf_fees_are_flat_or_a_percent_of_the_returned_repayment() -> None:
    flat = ProductCharge("NSF", "Returned payment", ChargeKind.nsf, FeeRule(amount=2500))
    pct = ProductCharge("NSF2", "Returned payment 2", ChargeKind.nsf, FeeRule(percent=Decimal("2.5")))
    # 2.5 % of 106.62 = 2.6655 -> 2.67
    assert [fee for _, fee in nsf_fees([flat, pct, PERCENT_2_DEDUCTED], 10662)] == [2500, 267]


def test_installment_fees_resume_equals_replay() -> None:
    terms = replace(NO_FEE, installment_fees=(FeeRule(amount=500),))
    first = project(terms, [Payment(1, D(2024, 2, 1), 11162)], D(2024, 2, 10))
    resumed = resume(terms, first.installments, first.checkpoint, [Payment(2, D(2024, 3, 5), 11162)], D(2024, 3, 5))
    replayed = project(terms, [Payment(1, D(2024, 2, 1), 11162), Payment(2, D(2024, 3, 5), 11162)], D(2024, 3, 5))
    assert resumed.installments == replayed.installments and resumed.totals == replayed.totals


@PROPERTY_SETTINGS
@given(instrument_cases(), st.integers(0, 400))
def test_resuming_from_a_stored_state_equals_replaying_with_instruments(
    case: tuple[LoanTerms, list[Event], date], split_days: int
) -> None:
    """The write path resumes from the snapshot for an event dated after it (ARCHITECTURE): with charges,
    waivers, credits and chargebacks too, resume(state at D, events after D) == project(all events)."""
    terms, events, as_of = case
    split = min(terms.schedule.disbursement_date + timedelta(days=split_days), as_of)
    before = [e for e in events if e.date <= split]
    after = [e for e in events if e.date > split]
    stored = project(terms, before, split)
    if any(r.late_fee_date == split for r in stored.installments):
        return  # resuming on a late fee's own trigger day is not a resume point (servicing.can_resume)
    resumed = resume(terms, stored.installments, stored.checkpoint, after, as_of)
    replayed = project(terms, events, as_of)
    assert resumed.totals == replayed.totals
    assert resumed.installments == replayed.installments
