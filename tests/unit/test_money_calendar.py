
"""Money parsing/rounding, period arithmetic, day counts and schedule validation."""

from datetime import date
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.calendar import (
    Actual360,
    Actual365Fixed,
    ActualActualISDA,
    DayCount,
    Frequency,
    Thirty360US,
    add_periods,
    day_count,
    due_dates,
    periods_per_year,
)
from app.domain.errors import DomainValidationError
from app.domain.money import currency, format_minor, format_money, from_minor, parse_money, quantize, to_minor
from app.domain.schedule import ScheduleTerms, generate_schedule

USD, JPY, KWD = currency("USD"), currency("JPY"), currency("KWD")


@pytest.mark.parametrize(
    ("code", "units"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3), ("KES", 2), ("NGN", 2), ("INR", 2),
     ("UGX", 0), ("TZS", 2), ("ZAR", 2), ("CHF", 2)],
)  # fmt: skip
def test_iso_4217_minor_units(code: str, units: int) -> None:
    assert currency(code).minor_units == units


def test_unknown_currency_names_the_field() -> None:
    with pytest.raises(DomainValidationError) as exc:
        currency("XXX")
    assert exc.value.field == "currency"


@pytest.mark.parametrize(
    ("value", "cur", "expected"),
    [(1234, USD, "1234.00"), ("1234.5", USD, "1234.50"), ("-0", USD, "0.00"), ("1235", JPY, "1235"),
     ("1.234", KWD, "1.234"), (Decimal("2.50"), USD, "2.50")],
)  # fmt: skip
def test_parse_money_accepts_ints_and_plain_decimal_strings(value: object, cur: object, expected: str) -> None:
    assert str(parse_money(value, cur, "amount")) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [1234.5, True, "1e5", "1E5", "NaN", "Infinity", "-inf", "abc", "", "1.", ".5", "+1", " 1", "1.234", "1,000",
     "١٢", None, [1], Decimal("NaN"), "-5", "9" * 41, 10**30],
)  # fmt: skip
def test_parse_money_rejects_with_the_field_name(value: object) -> None:
    with pytest.raises(DomainValidationError) as exc:
        parse_money(value, USD, "principal")
    assert exc.value.field == "principal"
    assert exc.value.message


def test_parse_money_options_and_jpy_decimals() -> None:
    assert parse_money("-5.25", USD, "x", allow_negative=True) == Decimal("-5.25")
    with pytest.raises(DomainValidationError):
        parse_money("0", USD, "amount", positive=True)
    with pytest.raises(DomainValidationError):
        parse_money("12.5", JPY, "amount")


def test_minor_units_round_trip_and_exactness() -> None:
    assert to_minor(Decimal("1234.50"), USD) == 123450
    assert to_minor(Decimal("1235"), JPY) == 1235
    assert from_minor(123450, USD) == Decimal("1234.50") and str(from_minor(5, KWD)) == "0.005"
    assert str(from_minor(7, JPY)) == "7"
    with pytest.raises(DomainValidationError):
        to_minor(Decimal("0.001"), USD)
    assert format_money(Decimal("1234.5"), USD) == "1234.50"
    assert format_money(Decimal("1235"), JPY) == "1235"
    assert quantize(Decimal("2.345"), USD) == Decimal("2.35")
    assert quantize(Decimal("2.349"), USD, ROUND_DOWN) == Decimal("2.34")


def test_add_periods_is_anchor_based_with_month_end_clamp() -> None:
    jan31 = date(2024, 1, 31)
    assert [add_periods(jan31, Frequency.monthly, n) for n in range(1, 5)] == [
        date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30), date(2024, 5, 31)
    ]  # fmt: skip
    assert add_periods(date(2024, 2, 29), Frequency.yearly, 1) == date(2025, 2, 28)
    assert add_periods(date(2024, 2, 29), Frequency.yearly, 4) == date(2028, 2, 29)
    assert add_periods(date(2024, 11, 30), Frequency.quarterly, 1) == date(2025, 2, 28)
    assert add_periods(date(2025, 1, 1), Frequency.biweekly, 2) == date(2025, 1, 29)
    assert add_periods(date(2025, 3, 31), Frequency.monthly, -1) == date(2025, 2, 28)
    assert due_dates(jan31, Frequency.monthly, 3) == (date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30))
    assert due_dates(date(2024, 1, 10), Frequency.monthly, 2, date(2024, 1, 31)) == (
        date(2024, 1, 31),
        date(2024, 2, 29),
    )
    assert [periods_per_year(f) for f in Frequency] == [365, 52, 26, 12, 4, 1]
    # frequency_interval (issue 13): every N periods, still from the anchor (never chained)
    assert [add_periods(jan31, Frequency.monthly, n, 2) for n in (1, 2, 3)] == [
        date(2024, 3, 31), date(2024, 5, 31), date(2024, 7, 31)
    ]  # fmt: skip
    assert [add_periods(date(2024, 1, 1), Frequency.daily, n, 15) for n in (1, 2, 4)] == [
        date(2024, 1, 16), date(2024, 1, 31), date(2024, 3, 1)
    ]  # fmt: skip
    assert add_periods(date(2024, 1, 1), Frequency.weekly, 1, 4) == date(2024, 1, 29)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2025, 1, 15), date(2025, 2, 15), 30),
        (date(2024, 1, 31), date(2024, 3, 31), 60),  # D1 31 -> 30, then D2 31 -> 30
        (date(2024, 1, 15), date(2024, 1, 31), 16),  # D2 stays 31 when D1 < 30
        (date(2025, 2, 28), date(2025, 3, 31), 30),  # D1 last of February -> 30
        (date(2024, 2, 29), date(2025, 2, 28), 360),  # both last of February -> D2 30
        (date(2024, 2, 28), date(2024, 3, 28), 30),  # Feb 28 is not the last day in 2024
    ],
)
def test_thirty_360_us(start: date, end: date, days: int) -> None:
    assert Thirty360US().days(start, end) == days
    assert Thirty360US().fraction(start, end) == (days, 360)


def test_actual_conventions_and_isda_split() -> None:
    start, end = date(2024, 12, 1), date(2025, 1, 31)
    assert Actual365Fixed().fraction(start, end) == (61, 365)
    assert Actual360().fraction(start, end) == (61, 360)
    assert ActualActualISDA().split(start, end) == (30, 31)
    num, den = ActualActualISDA().fraction(start, end)
    assert Decimal(num) / Decimal(den) == Decimal(31) / 366 + Decimal(30) / 365
    assert ActualActualISDA().year_fraction(date(2024, 1, 1), date(2025, 1, 1)) == 1
    assert {day_count(dc).code for dc in DayCount} == set(DayCount)
    for dc in DayCount:
        assert day_count(dc).__doc__ and "Source" in str(day_count(dc).__doc__)


def _terms(**overrides: object) -> ScheduleTerms:
    base: dict[str, object] = {
        "principal": Decimal("10000.00"), "annual_rate_percent": Decimal("9"), "term": 24,
        "frequency": Frequency.monthly, "disbursement_date": date(2025, 1, 15), "currency": USD,
    }  # fmt: skip
    base.update(overrides)
    return ScheduleTerms(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"principal": Decimal("0")}, "principal"),
        ({"principal": Decimal("-1")}, "principal"),
        ({"principal": Decimal("1000000000000.01")}, "principal"),
        ({"principal": Decimal("10.001")}, "principal"),
        ({"principal": Decimal("NaN")}, "principal"),
        ({"term": 0}, "term"),
        ({"term": 1201}, "term"),
        ({"term": True}, "term"),
        ({"annual_rate_percent": Decimal("-0.1")}, "annual_rate_percent"),
        ({"annual_rate_percent": Decimal("1000.01")}, "annual_rate_percent"),
        ({"annual_rate_percent": Decimal("7.1234567")}, "annual_rate_percent"),
        ({"first_payment_date": date(2025, 1, 15)}, "first_payment_date"),
        ({"first_payment_date": date(2025, 1, 1)}, "first_payment_date"),
        ({"first_payment_date": date(2025, 6, 1)}, "first_payment_date"),
        ({"grace_principal_periods": 24}, "grace_principal_periods"),
        ({"grace_principal_periods": 30}, "grace_principal_periods"),
        ({"grace_principal_periods": -1}, "grace_principal_periods"),
        ({"upfront_fee": Decimal("10000.00")}, "upfront_fee"),
        ({"upfront_fee": Decimal("-1")}, "upfront_fee"),
        ({"installment_multiple_of": Decimal("0")}, "installment_multiple_of"),
        ({"installment_multiple_of": Decimal("1"), "amortization": "equal_principal"}, "installment_multiple_of"),
        ({"frequency": "hourly"}, "frequency"),
        ({"frequency_interval": 13}, "frequency_interval"),
        ({"day_count": "30E/360"}, "day_count"),
        ({"amortization": "balloon"}, "amortization"),
        ({"interest_method": "rule78"}, "interest_method"),
        ({"disbursement_date": date(9990, 1, 1), "frequency": Frequency.yearly}, "term"),
    ],
)
def test_validation_names_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(DomainValidationError) as exc:
        generate_schedule(_terms(**overrides))
    assert exc.value.field == field


def test_multiple_that_rounds_the_installment_to_zero_is_rejected() -> None:
    with pytest.raises(DomainValidationError) as exc:
        generate_schedule(_terms(installment_multiple_of=Decimal("5000"), term=360))
    assert exc.value.field == "installment_multiple_of"


def test_contract_smoke_example() -> None:
    schedule = generate_schedule(_terms())
    assert len(schedule.installments) == 24
    assert schedule.installments[0].due_date == date(2025, 2, 15)
    assert schedule.total_principal == Decimal("10000.00")
    assert schedule.installments[-1].balance == 0


@given(st.integers(-(10**15), 10**15), st.sampled_from(["USD", "JPY", "KWD"]))
def test_format_minor_equals_the_decimal_formatting(units: int, code: str) -> None:
    cur = currency(code)
    assert format_minor(units, cur) == format_money(from_minor(units, cur), cur)
