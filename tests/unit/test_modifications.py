"""Golden scenarios and properties of loan modifications in the projection (app/domain/modifications.py;
CONTRACT "Modifications"). Amounts in minor units (10662 = 106.62); every expectation is worked out beside it.

LOAN12 (tests/unit/test_servicing_rules.py): 1,200.00 at 12 %, 12 monthly installments, 30/360, disbursed
2024-01-01, late fee 10.00 once per installment after 5 grace days.
  annuity 1200 * 0.01 / (1 - 1.01**-12) = 106.6186 -> 106.62
  #1 due 02-01: interest 12.00, principal 94.62, balance 1105.38
  #2 due 03-01: interest 11.05, principal 95.57, balance 1009.81
  #3 due 04-01: interest 10.10, principal 96.52, balance 913.29
"""

from datetime import date
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.domain.calendar import DayCount
from app.domain.lifecycle import LoanStatus
from app.domain.postings import role_balances
from app.domain.schedule import InterestMethod
from app.domain.servicing import Event, InterestRecalculation, LoanTerms, Modification, Payment, project, resume
from tests.unit.test_servicing_properties import loan_terms
from tests.unit.test_servicing_rules import LOAN12, _terms

D = date
PAID_TWO = [Payment(1, D(2024, 2, 1), 10662), Payment(2, D(2024, 3, 1), 10662)]


def _rows(state: object) -> list[tuple[int, date, int, int]]:
    return [(r.number, r.due_date, r.principal, r.interest) for r in state.installments]  # type: ignore[attr-defined]


def _books_balance(terms: LoanTerms, events: list[Event], on: date) -> None:
    state = project(terms, events, on)
    balances = role_balances(state.totals)
    assert sum(balances.values()) == 0
    if state.status == LoanStatus.active:
        # the portfolio account holds exactly the principal the installments still owe
        assert balances.get("loan_portfolio", 0) == state.principal_outstanding  # type: ignore[call-overload]


def test_a_two_month_holiday_with_capitalised_interest_on_a_12_month_loan() -> None:
    holiday = Modification(3, D(2024, 3, 1), "payment_holiday", holiday_installments=2, holiday_interest="capitalize")
    state = project(LOAN12, [*PAID_TWO, holiday], D(2024, 3, 1))
    # after #1 and #2 the balance is 1009.81. #3-#12 move two months later: #3 is due 06-01, #12 2025-03-01.
    # Interest for the skipped months, 03-01 -> 05-01 (60 days 30/360): 1009.81 * 0.12 * 60/360 = 20.1962 -> 20.20,
    # capitalised: principal 1009.81 + 20.20 = 1030.01 (Dr 1100 Loan portfolio, Cr 4000 Interest income).
    # New annuity over the 10 installments left: 1030.01 * 0.01 / (1 - 1.01**-10) = 108.7496 -> 108.75;
    # #3 (period 03-01 -> 06-01) interest 1030.01 * 0.01 = 10.30 for its last regular month, principal 98.45.
    assert state.totals.interest_capitalized == 2020
    assert state.principal_outstanding == 103001
    assert state.installment_amount == 10875
    rows = _rows(state)
    assert rows[2] == (3, D(2024, 6, 1), 9845, 1030)
    assert state.installments[2].period_start == D(2024, 3, 1)
    assert [r[1] for r in rows[2:]] == [D(2024, m, 1) for m in range(6, 13)] + [D(2025, m, 1) for m in (1, 2, 3)]
    assert sum(r[2] for r in rows) == 120000 + 2020
    assert state.maturity_date == D(2025, 3, 1)
    assert state.days_past_due == 0
    _books_balance(LOAN12, [*PAID_TWO, holiday], D(2024, 3, 1))
    # nothing falls due during the holiday: on 05-31 the loan is still current
    assert project(LOAN12, [*PAID_TWO, holiday], D(2024, 5, 31)).days_past_due == 0


def test_holiday_interest_spread_or_waived() -> None:
    spread = Modification(3, D(2024, 3, 1), "payment_holiday", holiday_installments=2, holiday_interest="spread")
    waive = Modification(3, D(2024, 3, 1), "payment_holiday", holiday_installments=2, holiday_interest="waive")
    # waived: 1009.81 over 10 installments at 1 % is the original 106.62 (the 20.20 is never charged)
    waived = project(LOAN12, [*PAID_TWO, waive], D(2024, 3, 1))
    assert waived.installment_amount == 10662 and waived.totals.interest_capitalized == 0
    assert _rows(waived)[2] == (3, D(2024, 6, 1), 9652, 1010)
    # spread: the 20.20 is 2.02 more interest on each of the 10 installments (#3 interest 10.10 + 2.02 = 12.12)
    spread_state = project(LOAN12, [*PAID_TWO, spread], D(2024, 3, 1))
    assert _rows(spread_state)[2] == (3, D(2024, 6, 1), 9652, 1212)
    assert sum(r.interest for r in spread_state.installments) - sum(r.interest for r in waived.installments) == 2020


def test_a_term_extension_from_12_to_18() -> None:
    extend = Modification(3, D(2024, 3, 1), "reschedule", new_term=18)
    state = project(LOAN12, [*PAID_TWO, extend], D(2024, 3, 1))
    # 1009.81 over the 16 installments #3-#18 at 1 %: 1009.81 * 0.01 / (1 - 1.01**-16) = 68.6099 -> 68.61;
    # #3 interest 10.10, principal 58.51; #18 due 2025-07-01 takes the residual.
    assert state.installment_amount == 6861
    rows = _rows(state)
    assert len(rows) == 18 and rows[2] == (3, D(2024, 4, 1), 5851, 1010)
    assert rows[-1][1] == D(2025, 7, 1) and state.maturity_date == D(2025, 7, 1)
    assert sum(r[2] for r in rows) == 120000
    _books_balance(LOAN12, [*PAID_TWO, extend], D(2024, 3, 1))


def test_a_new_installment_amount_and_a_new_next_due_date() -> None:
    # keep 150.00 a month: n = -ln(1 - 1009.81 * 0.01 / 150) / ln(1.01) = 7.004, so 7 full installments
    # (#3-#9) and a last one (#10, 11-01) of the 0.63 principal left plus its 0.01 interest
    keep = Modification(3, D(2024, 3, 1), "reschedule", installment_amount=15000)
    state = project(LOAN12, [*PAID_TWO, keep], D(2024, 3, 1))
    assert state.installment_amount == 15000
    assert _rows(state)[-1] == (10, D(2024, 11, 1), 63, 1)
    assert all(r.principal + r.interest == 15000 for r in state.installments[2:-1])
    # next due date 04-15: the grid re-anchors there (05-15, 06-15 …), never chained; #3 runs 03-01 -> 04-15
    # (44 days 30/360: 1009.81 * 0.12 * 44/360 = 14.81)
    moved = project(LOAN12, [*PAID_TWO, Modification(3, D(2024, 3, 1), "reschedule", next_due_date=D(2024, 4, 15))],
                    D(2024, 3, 1))
    assert [r.due_date for r in moved.installments[2:5]] == [D(2024, 4, 15), D(2024, 5, 15), D(2024, 6, 15)]
    assert moved.installments[2].interest == 1481


def test_a_backdated_rate_change_recomputes_the_interest_from_its_date() -> None:
    cut = Modification(1, D(2024, 1, 16), "rate_change", annual_rate_percent=Decimal(6))
    state = project(LOAN12, [cut], D(2024, 2, 10))
    # #1: 01-01 -> 01-16 at 12 % (15/30 of 12.00 = 6.00) + 01-16 -> 02-01 at 6 % (1200 * 0.06 * 15/360 = 3.00) = 9.00;
    # new annuity 1200 * 0.005 / (1 - 1.005**-12) = 103.2797 -> 103.28; #1 principal 103.28 - 9.00 = 94.28;
    # #2 interest (1200 - 94.28) * 0.005 = 5.5286 -> 5.53, principal 103.28 - 5.53 = 97.75
    assert state.installment_amount == 10328
    assert _rows(state)[:2] == [(1, D(2024, 2, 1), 9428, 900), (2, D(2024, 3, 1), 9775, 553)]
    # recognised through 02-10: 9.00 + 9/30 of 5.53 (1.659 -> 1.66) = 10.66 instead of 12.00 + 3.32 = 15.32
    assert state.totals.interest_recognized == 1066
    before = project(LOAN12, [], D(2024, 2, 10))
    assert before.totals.interest_recognized == 1532
    _books_balance(LOAN12, [cut], D(2024, 2, 10))


def test_re_age_of_a_65_dpd_loan_to_dpd_0() -> None:
    on = D(2024, 4, 6)
    assert project(LOAN12, [], on).days_past_due == 65  # 02-01 -> 04-06
    re_age = Modification(1, on, "re_age")
    state = project(LOAN12, [re_age], on)
    # #1-#3 owed 94.62 + 95.57 + 96.52 = 286.71 principal and 12.00 + 11.05 + 10.10 = 33.15 interest;
    # the interest is capitalised (Dr 1100, Cr 1200), so principal = 1200.00 + 33.15 = 1233.15 over #4-#12.
    assert state.days_past_due == 0
    assert state.principal_outstanding == 123315
    assert state.totals.interest_capitalized == 3315
    # the late fees of #1 (02-07) and #2 (03-07) stay owed; #3's (04-07) never comes
    assert state.penalties_outstanding == 2000
    assert project(LOAN12, [re_age], D(2024, 4, 30)).penalties_outstanding == 2000
    # #4 (04-01 -> 05-01): 5/30 of the old 9.13 accrued before the re-age (1.52) + 1233.15 * 0.12 * 25/360 = 10.28
    assert state.installments[3].interest == 152 + 1028
    _books_balance(LOAN12, [re_age], on)


def test_a_payment_backdated_before_a_modification_recomputes_both() -> None:
    holiday = Modification(1, D(2024, 3, 1), "payment_holiday", holiday_installments=2)
    # the same payments, entered after the modification was approved (higher seq) but dated before it
    late_entry = [Payment(5, D(2024, 2, 1), 10662), Payment(6, D(2024, 3, 1), 10662)]
    replayed = project(LOAN12, [holiday, *late_entry], D(2024, 3, 10))
    in_order = project(LOAN12, [*PAID_TWO, Modification(3, D(2024, 3, 1), "payment_holiday", holiday_installments=2)],
                       D(2024, 3, 10))
    assert _rows(replayed) == _rows(in_order)
    assert replayed.principal_outstanding == 103001
    # without them #1 and #2 stay overdue (a holiday moves only what is not yet due: 02-01 -> 03-10 is 38 DPD);
    # the holiday's interest is on the principal of #3-#12 alone, 1009.81, so again 20.20
    alone = project(LOAN12, [holiday], D(2024, 3, 10))
    assert (alone.days_past_due, alone.totals.interest_capitalized) == (38, 2020)


def test_resuming_from_a_stored_state_equals_a_full_replay() -> None:
    state = project(LOAN12, PAID_TWO, D(2024, 3, 1))
    mod = Modification(3, D(2024, 3, 5), "rate_change", annual_rate_percent=Decimal("9.5"))
    pay = Payment(4, D(2024, 4, 1), 20000)
    resumed = resume(LOAN12, state.installments, state.checkpoint, [mod], D(2024, 3, 5))
    resumed = resume(LOAN12, resumed.installments, resumed.checkpoint, [pay], D(2024, 4, 2))
    replayed = project(LOAN12, [*PAID_TWO, mod, pay], D(2024, 4, 2))
    assert _rows(resumed) == _rows(replayed)
    assert resumed.totals == replayed.totals


def test_a_prepayment_after_a_rate_change_reamortises_at_the_new_rate() -> None:
    cut = Modification(1, D(2024, 1, 1), "rate_change", annual_rate_percent=Decimal(6))
    # at 6 %: installment 103.28; #1 interest 6.00, principal 97.28; #2 interest 1102.72 * 0.005 = 5.51, principal
    # 97.77. 303.28 on 02-01 pays #1 (due), #2 (the current one, as scheduled) and prepays 96.72 (reduce_term):
    # 1200 - 97.28 - 97.77 - 96.72 = 908.23 left; #3 interest at 6 % (not 12 %): 908.23 * 0.005 = 4.54
    state = project(LOAN12, [cut, Payment(2, D(2024, 2, 1), 30328)], D(2024, 2, 1))
    assert state.principal_outstanding == 90823
    assert state.installments[2].interest == 454
    assert state.installments[2].principal + state.installments[2].interest == 10328


@st.composite
def modified_cases(draw: st.DrawFn) -> tuple[LoanTerms, list[Event], date]:
    terms = draw(loan_terms())
    assume(terms.interest_recalculation == InterestRecalculation.none)
    assume(terms.schedule.interest_method == InterestMethod.declining_balance)
    start = terms.schedule.disbursement_date
    horizon = (project(terms, [], start).maturity_date - start).days + 60
    events: list[Event] = []
    for seq in range(1, draw(st.integers(1, 8)) + 1):
        on = date.fromordinal(start.toordinal() + draw(st.integers(0, horizon)))
        kind = draw(st.sampled_from(["payment", "payment", "reschedule", "payment_holiday", "rate_change", "re_age"]))
        if kind == "payment":
            events.append(Payment(seq, on, draw(st.integers(1, 200_000))))
        elif kind == "reschedule":
            events.append(Modification(seq, on, kind, new_term=draw(st.one_of(st.none(), st.integers(1, 60))),
                                       annual_rate_percent=draw(st.one_of(st.none(), st.integers(0, 30).map(Decimal)))))
        elif kind == "payment_holiday":
            events.append(Modification(seq, on, kind, holiday_installments=draw(st.integers(1, 4)),
                                       holiday_interest=draw(st.sampled_from(["capitalize", "spread", "waive"]))))
        elif kind == "rate_change":
            events.append(Modification(seq, on, kind, annual_rate_percent=Decimal(draw(st.integers(0, 3000))).scaleb(-2)))
        else:
            events.append(Modification(seq, on, kind))
    as_of = date.fromordinal(start.toordinal() + draw(st.integers(0, horizon + 30)))
    return terms, events, as_of


@settings(max_examples=300, deadline=None)
@given(modified_cases())
def test_modifications_keep_the_books_and_the_principal_true(case: tuple[LoanTerms, list[Event], date]) -> None:
    terms, events, as_of = case
    state = project(terms, events, as_of)
    balances = role_balances(state.totals)
    assert sum(balances.values()) == 0
    # every cent of principal is an installment's: disbursed + re-advanced + capitalised interest
    t = state.totals
    assert sum(r.principal for r in state.installments) == t.disbursed + t.principal_readvanced + t.interest_capitalized
    for row in state.installments:
        assert row.principal >= 0 and row.interest >= 0
        assert 0 <= row.paid_principal <= row.principal and 0 <= row.paid_interest <= row.interest
    due_dates = [r.due_date for r in state.installments]
    assert due_dates == sorted(due_dates)
    if state.status == LoanStatus.active:
        assert balances.get("loan_portfolio", 0) == state.principal_outstanding  # type: ignore[call-overload]
    # the day count is the loan's: 30/360 loans are not special-cased here
    assert terms.schedule.day_count in set(DayCount)


def test_two_tranches_reamortise_the_remaining_schedule() -> None:
    from app.domain.modifications import TRANCHE

    terms = _terms(principal="600.00")
    tranche = Modification(2, D(2024, 2, 15), TRANCHE, disbursed=60000)
    state = project(terms, [Payment(1, D(2024, 2, 1), 5331), tranche], D(2024, 2, 15))
    # first tranche 600.00: annuity 600 * 0.01 / (1 - 1.01**-12) = 53.31; #1 interest 6.00, principal 47.31,
    # paid on 02-01: 552.69 left. Second tranche 600.00 on 02-15: 1152.69.
    # #2 (02-01 -> 03-01): 14/30 of the old 5.53 accrued (2.58) + 1152.69 * 0.12 * 16/360 (6.148 -> 6.15) = 8.73;
    # annuity over the 11 installments left: 1152.69 * 0.01 / (1 - 1.01**-11) = 111.18; #2 principal 102.45
    assert state.totals.disbursed == 120000
    assert state.principal_outstanding == 115269
    assert state.installment_amount == 11118
    assert _rows(state)[1] == (2, D(2024, 3, 1), 10245, 873)
    assert state.maturity_date == D(2025, 1, 1)
    balances = role_balances(state.totals)
    assert balances["fund_source"] == -(120000 - 5331)  # type: ignore[index]
    assert balances["loan_portfolio"] == 115269  # type: ignore[index]
    # a tranche replayed after a backdated payoff reopens the loan with one installment a period later
    payoff = project(terms, [], D(2024, 2, 10)).total_outstanding
    reopened = project(terms, [Payment(1, D(2024, 2, 10), payoff), tranche], D(2024, 2, 15))
    assert reopened.status == LoanStatus.active and reopened.principal_outstanding == 60000
    assert reopened.installments[-1].due_date == D(2024, 3, 15)


def test_a_re_age_after_interest_received_ahead_keeps_every_cent_of_principal() -> None:
    """Found by the property above: 1,663.49 over one yearly period, the rate raised to 22.86 % on the
    disbursement day, 903.23 paid that day (386.61 of it interest received ahead), then a re-age. Rebuilding
    turns interest received beyond the new interest into principal received, round after round (each round the
    excess shrinks by the period rate: 120.08, 27.60, 6.34 ... down to a cent). After eight rounds the rows
    were those of the round before while the last cent had already moved: 1,663.50 of principal on the books
    for 1,663.49 lent."""
    from app.domain.calendar import Frequency
    from app.domain.money import currency
    from app.domain.schedule import Amortization, ScheduleTerms

    day = date(2020, 1, 1)
    schedule = ScheduleTerms(
        principal=Decimal("1663.49"),
        annual_rate_percent=Decimal("0.00"),
        term=1,
        frequency=Frequency.yearly,
        disbursement_date=day,
        currency=currency("USD"),
        amortization=Amortization.equal_principal,
        interest_method=InterestMethod.declining_balance,
        day_count=DayCount.actual_360,
    )
    terms = LoanTerms(schedule=schedule)
    events: list[Event] = [
        Modification(1, day, "rate_change", annual_rate_percent=Decimal("22.86")),
        Modification(2, day, "re_age"),
        Payment(3, day, 90323),
        Modification(4, day, "re_age"),
    ]
    state = project(terms, events, day)
    t = state.totals
    assert sum(r.principal for r in state.installments) == t.disbursed == 166349
    assert sum(role_balances(t).values()) == 0
    row = state.installments[0]
    # the 903.23 stays received in full: principal and interest received add up to it
    assert row.paid_principal + row.paid_interest == 90323
