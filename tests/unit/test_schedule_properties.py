"""hypothesis properties of the schedule engine, APR and explanations."""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.domain.apr import schedule_apr
from app.domain.calendar import DayCount, Frequency, add_periods
from app.domain.errors import DomainValidationError
from app.domain.explain import explain_interest
from app.domain.money import currency
from app.domain.schedule import (
    Amortization,
    InterestMethod,
    Schedule,
    ScheduleTerms,
    generate_schedule,
    reamortize,
)

CURRENCIES = [currency("USD"), currency("JPY"), currency("KWD")]
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def terms_strategy(draw: st.DrawFn, *, max_term: int = 240) -> ScheduleTerms:
    cur = draw(st.sampled_from(CURRENCIES))
    units = draw(st.integers(min_value=1, max_value=10**9))
    principal = Decimal(units).scaleb(-cur.minor_units)
    rate = Decimal(draw(st.integers(min_value=0, max_value=60_000))).scaleb(-3)
    term = draw(st.integers(min_value=1, max_value=max_term))
    frequency = draw(st.sampled_from(list(Frequency)))
    disbursed = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31)))
    first = None
    if draw(st.booleans()):
        latest = add_periods(disbursed, frequency, 2)
        first = disbursed + timedelta(days=draw(st.integers(min_value=1, max_value=(latest - disbursed).days)))
    amortization = draw(st.sampled_from(list(Amortization)))
    multiple = None
    if amortization == Amortization.equal_installments and draw(st.booleans()):
        multiple = draw(st.sampled_from(["1", "5", "20", "100"]))
        multiple = Decimal(multiple) if Decimal(multiple) <= principal else None
    return ScheduleTerms(
        principal=principal,
        annual_rate_percent=rate,
        term=term,
        frequency=frequency,
        disbursement_date=disbursed,
        currency=cur,
        first_payment_date=first,
        amortization=amortization,
        interest_method=draw(st.sampled_from(list(InterestMethod))),
        day_count=draw(st.sampled_from(list(DayCount))),
        grace_principal_periods=draw(st.integers(min_value=0, max_value=term - 1)),
        installment_multiple_of=multiple,
    )


@PROFILE
@given(terms_strategy())
def test_principal_sums_exactly_balance_never_negative_and_ends_at_zero(terms: ScheduleTerms) -> None:
    schedule = _generate(terms)
    rows = schedule.installments
    exponent = -terms.currency.minor_units
    assert 1 <= len(rows) <= terms.term
    assert sum(r.principal for r in rows) == terms.principal
    assert rows[-1].balance == 0
    previous = terms.principal
    for number, row in enumerate(rows, start=1):
        assert row.number == number
        assert row.principal >= 0 and row.interest >= 0 and row.balance >= 0
        assert row.balance == previous - row.principal
        assert row.total == row.principal + row.interest
        for amount in (row.principal, row.interest, row.total, row.balance):
            assert amount.as_tuple().exponent == exponent
        previous = row.balance
    assert schedule.installment_amount.as_tuple().exponent == exponent


@PROFILE
@given(terms_strategy(), st.data())
def test_due_dates_come_from_the_anchor(terms: ScheduleTerms, data: st.DataObject) -> None:
    rows = _generate(terms).installments
    k = data.draw(st.integers(min_value=1, max_value=len(rows)))
    if terms.first_payment_date is None:
        assert rows[k - 1].due_date == add_periods(terms.disbursement_date, terms.frequency, k)
    else:
        assert rows[k - 1].due_date == add_periods(terms.first_payment_date, terms.frequency, k - 1)
    assert rows[0].period_start == terms.disbursement_date


@PROFILE
@given(terms_strategy())
def test_equal_installment_totals_differ_only_in_the_last(terms: ScheduleTerms) -> None:
    regular = ScheduleTerms(
        **{
            **_fields(terms),
            "amortization": Amortization.equal_installments,
            "grace_principal_periods": 0,
            "first_payment_date": None,
            "day_count": DayCount.thirty_360,
        }
    )
    schedule = _generate(regular)
    for row in schedule.installments[:-1]:
        # An installment rounded down to its multiple can fall below a period's interest: that period is
        # interest-only (interest is never capitalised), every other regular one is exactly the installment.
        interest_only = row.principal == 0 and row.interest >= schedule.installment_amount
        assert row.total == schedule.installment_amount or interest_only, row


def _generate(terms: ScheduleTerms) -> Schedule:
    """generate_schedule, discarding draws whose installment_multiple_of rounds the installment to zero."""
    try:
        return generate_schedule(terms)
    except DomainValidationError as exc:
        assume(exc.field != "installment_multiple_of")
        raise


def _fields(terms: ScheduleTerms) -> dict[str, object]:
    return {name: getattr(terms, name) for name in ScheduleTerms.__dataclass_fields__}


@st.composite
def regular_monthly(draw: st.DrawFn) -> ScheduleTerms:
    return ScheduleTerms(
        principal=Decimal(draw(st.integers(min_value=100_000, max_value=10**10))).scaleb(-2),
        annual_rate_percent=Decimal(draw(st.integers(min_value=1, max_value=3600))).scaleb(-2),
        term=draw(st.integers(min_value=1, max_value=360)),
        frequency=Frequency.monthly,
        disbursement_date=draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))),
        currency=currency("USD"),
        amortization=draw(st.sampled_from(list(Amortization))),
    )


@PROFILE
@given(regular_monthly())
def test_apr_equals_nominal_rate_within_a_hundredth_without_fees(terms: ScheduleTerms) -> None:
    apr = schedule_apr(_generate(terms))
    assert abs(apr - terms.annual_rate_percent) <= Decimal("0.01")
    assert apr.as_tuple().exponent == -4


@PROFILE
@given(regular_monthly(), st.integers(min_value=50, max_value=2000))
def test_apr_exceeds_nominal_rate_when_fees_are_charged(terms: ScheduleTerms, fee_basis_points: int) -> None:
    fee = (terms.principal * fee_basis_points / 10_000).quantize(Decimal("0.01"))
    with_fee = ScheduleTerms(**{**_fields(terms), "upfront_fee": fee})
    assert schedule_apr(_generate(with_fee)) > terms.annual_rate_percent


@PROFILE
@given(terms_strategy(), st.data())
def test_explanation_recomputes_the_interest_exactly(terms: ScheduleTerms, data: st.DataObject) -> None:
    assume(terms.interest_method == InterestMethod.declining_balance)
    schedule = _generate(terms)
    number = data.draw(st.integers(min_value=1, max_value=len(schedule.installments)))
    row = schedule.installments[number - 1]
    e = explain_interest(schedule, number)
    opening = terms.principal if number == 1 else schedule.installments[number - 2].balance
    assert e.opening_balance == opening
    recomputed = (
        e.opening_balance
        * e.annual_rate_percent
        * e.year_fraction_numerator
        / (100 * Decimal(e.year_fraction_denominator))
    ).quantize(e.rounding_place, rounding=e.rounding_mode)
    assert recomputed == e.rounded_interest == e.scheduled_interest == row.interest
    assert e.rounding_mode == ROUND_HALF_UP and e.rounding_place == terms.currency.exponent
    assert (e.residual_to_last is not None) == (number == len(schedule.installments))
    assert str(row.interest) in e.formula


@PROFILE
@given(terms_strategy(max_term=120), st.data())
def test_reamortize_without_prepayment_reproduces_the_schedule(terms: ScheduleTerms, data: st.DataObject) -> None:
    schedule = _generate(terms)
    rows = schedule.installments
    k = data.draw(st.integers(min_value=1, max_value=len(rows)))
    opening = terms.principal if k == 1 else rows[k - 2].balance
    start = terms.disbursement_date if k == 1 else rows[k - 2].due_date
    rebuilt = reamortize(terms, opening, k, start, schedule.installment_amount)
    if terms.interest_method == InterestMethod.declining_balance:
        assert rebuilt == rows[k - 1 :]
    assert sum(r.principal for r in rebuilt) == opening
    assert rebuilt[-1].balance == 0


@PROFILE
@given(terms_strategy(max_term=120), st.data())
def test_reamortize_after_prepayment_keeps_the_installment_and_shortens(
    terms: ScheduleTerms, data: st.DataObject
) -> None:
    terms = ScheduleTerms(
        **{**_fields(terms), "amortization": Amortization.equal_installments, "interest_method": "declining_balance"}
    )
    schedule = _generate(terms)
    rows = schedule.installments
    assume(len(rows) >= 2)
    k = data.draw(st.integers(min_value=2, max_value=len(rows)))
    balance = rows[k - 2].balance
    assume(balance > 0)
    prepaid_units = data.draw(st.integers(min_value=0, max_value=int(balance.scaleb(terms.currency.minor_units))))
    opening = balance - Decimal(prepaid_units).scaleb(-terms.currency.minor_units)
    rebuilt = reamortize(terms, opening, k, rows[k - 2].due_date, schedule.installment_amount)
    if opening == 0:
        assert rebuilt == ()
        return
    assert len(rebuilt) <= len(rows) - k + 1
    assert sum(r.principal for r in rebuilt) == opening
    assert rebuilt[-1].balance == 0
    assert [r.due_date for r in rebuilt] == [r.due_date for r in rows[k - 1 : k - 1 + len(rebuilt)]]
