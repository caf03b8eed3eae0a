"""APR: correctly rounded root, Appendix J unit periods, degenerate inputs."""

from datetime import date
from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.apr import apr_percent, unit_periods
from app.domain.calendar import Frequency, add_periods
from app.domain.errors import DomainValidationError

EXACT = Context(prec=60)


def _pv(payments: list[tuple[int, Decimal]], i: Decimal) -> Decimal:
    return sum((EXACT.divide(amount, EXACT.power(1 + i, t)) for t, amount in payments), Decimal(0))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=10_000, max_value=10**8),
    st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=60),
    st.sampled_from([Frequency.weekly, Frequency.monthly, Frequency.quarterly]),
)
def test_apr_is_the_correctly_rounded_root(financed_units: int, payment_units: list[int], f: Frequency) -> None:
    financed = Decimal(financed_units).scaleb(-2)
    amounts = [Decimal(u).scaleb(-2) for u in payment_units]
    if sum(amounts) < financed:
        amounts[-1] += financed - sum(amounts) + Decimal("0.01")
    start = date(2025, 1, 15)
    payments = [(add_periods(start, f, k), a) for k, a in enumerate(amounts, start=1)]
    apr = apr_percent(financed, start, payments, f)
    per_year = {Frequency.weekly: 52, Frequency.monthly: 12, Frequency.quarterly: 4}[f]
    flows = [(k, a) for k, a in enumerate(amounts, start=1)]
    half = Decimal("0.00005")
    lower, upper = (apr - half) / 100 / per_year, (apr + half) / 100 / per_year
    # PV decreases with the rate: the root lies in [lower, upper) for a half-up rounded result.
    assert lower <= 0 or _pv(flows, lower) >= financed
    assert _pv(flows, upper) < financed


def test_appendix_j_unit_periods() -> None:
    assert unit_periods(date(1978, 2, 10), date(1978, 4, 1), Frequency.monthly) == (1, 19, 30)
    assert unit_periods(date(2024, 1, 31), date(2024, 2, 29), Frequency.monthly, 31) == (1, 0, 30)
    assert unit_periods(date(2024, 1, 30), date(2024, 2, 29), Frequency.monthly, 30) == (1, 0, 30)
    assert unit_periods(date(2025, 1, 1), date(2025, 1, 20), Frequency.weekly) == (2, 5, 7)
    assert unit_periods(date(2025, 1, 1), date(2025, 1, 20), Frequency.biweekly) == (1, 5, 14)
    assert unit_periods(date(2025, 1, 15), date(2025, 6, 1), Frequency.quarterly) == (
        1,
        47,
        90,
    )  # 4 months + 17 days = 137 days
    assert unit_periods(date(2025, 1, 3), date(2026, 7, 3), Frequency.yearly) == (1, 6, 12)
    assert unit_periods(date(2025, 1, 3), date(2026, 7, 10), Frequency.yearly) == (1, 188, 365)


@pytest.mark.parametrize(
    ("financed", "payments", "field"),
    [
        (Decimal("0"), [(date(2025, 2, 1), Decimal("10"))], "amount_financed"),
        (Decimal("100"), [], "payments"),
        (Decimal("100"), [(date(2025, 2, 1), Decimal("99"))], "payments"),
        (Decimal("100"), [(date(2024, 12, 1), Decimal("200"))], "payments"),
        (Decimal("100"), [(date(2025, 2, 1), Decimal("-1")), (date(2025, 3, 1), Decimal("300"))], "payments"),
    ],
)
def test_degenerate_inputs_are_rejected(financed: Decimal, payments: list[tuple[date, Decimal]], field: str) -> None:
    with pytest.raises(DomainValidationError) as exc:
        apr_percent(financed, date(2025, 1, 1), payments, Frequency.monthly)
    assert exc.value.field == field


def test_extreme_rates_terminate() -> None:
    start = date(2025, 1, 1)
    huge = apr_percent(Decimal("1.00"), start, [(date(2025, 2, 1), Decimal("1000000"))], Frequency.monthly)
    assert huge > Decimal("1000000")
    tiny = apr_percent(Decimal("1000000.00"), start, [(date(2025, 2, 1), Decimal("1000000.01"))], Frequency.monthly)
    assert tiny == Decimal("0.0000")
    payments = [(add_periods(start, Frequency.monthly, k), Decimal("100")) for k in range(1, 1201)]
    assert apr_percent(Decimal("100"), start, payments, Frequency.monthly) > Decimal("1000")
