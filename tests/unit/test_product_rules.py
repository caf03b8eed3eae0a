"""The product rules table, without a database: every rule fires on an input that violates it and on no
valid input, and reports every field it concerns."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.products.rules import RULES, Rule, decimal_places, field_errors, violations
from app.products.schemas import ProductCreate, format_rate, rate_to_e6

VALID: dict[str, Any] = {
    "code": "PERSONAL-12",
    "name": "Personal loan",
    "currency": "USD",
    "min_principal": "100.00",
    "max_principal": "5000",
    "min_term": 6,
    "max_term": 36,
    "annual_rate_percent": "12",
    "min_rate_percent": "10",
    "max_rate_percent": "20",
    "frequency": "monthly",
    "amortization": "equal_installments",
    "interest_method": "declining_balance",
    "day_count": "30/360",
    "grace_principal_periods": 2,
    "late_fee": {"amount": "5.00", "grace_days": 5},
}

VIOLATIONS: dict[str, dict[str, Any]] = {
    "currency_known": {"currency": "XXX"},
    "min_principal_decimals": {"min_principal": "1.001"},
    "max_principal_decimals": {"max_principal": "1000.001"},
    "min_principal_positive": {"min_principal": "0"},
    "max_principal_cap": {"max_principal": str(10**12 + 1)},
    "principal_range": {"min_principal": "5000.01"},
    "min_term_range": {"min_term": 0, "grace_principal_periods": 0},
    "max_term_range": {"max_term": 1201},
    "term_range": {"min_term": 37},
    "interval_span": {"frequency": "monthly", "frequency_interval": 13},
    "term_span": {"frequency": "yearly", "max_term": 101},
    "annual_rate_range": {"annual_rate_percent": "1000.5", "max_rate_percent": "1000.5"},
    "min_rate_range": {"min_rate_percent": "-1"},
    "max_rate_range": {"max_rate_percent": "1001"},
    "annual_rate_decimals": {"annual_rate_percent": "12.0000001"},
    "min_rate_decimals": {"min_rate_percent": "10.0000001"},
    "max_rate_decimals": {"max_rate_percent": "19.9999999"},
    "rate_bounds": {"min_rate_percent": "21"},
    "annual_rate_at_least_min": {"annual_rate_percent": "9.99"},
    "annual_rate_at_most_max": {"annual_rate_percent": "20.000001"},
    "grace_not_negative": {"grace_principal_periods": -1},
    "grace_leaves_amortizing_period": {"grace_principal_periods": 6},
    "flat_needs_equal_installments": {"interest_method": "flat", "amortization": "interest_only"},
    "late_fee_one_kind": {"late_fee": {"amount": "5", "percent_of_overdue": "2"}},
    "late_fee_amount_decimals": {"late_fee": {"amount": "5.001"}},
    "late_fee_amount_range": {"late_fee": {"amount": "0"}},
    "late_fee_percent_range": {"late_fee": {"percent_of_overdue": "100.000001"}},
    "late_fee_percent_decimals": {"late_fee": {"percent_of_overdue": "1.0000001"}},
    "late_fee_grace_days_range": {"late_fee": {"grace_days": 366}},
    "allocation_order_permutation": {"allocation_order": ["fees", "fees", "interest", "principal"]},
    "daily_needs_actual_days": {"interest_recalculation": "daily", "day_count": "30/360"},
    "multi_disbursement_declining_balance": {"multi_disbursement": True, "interest_method": "flat"},
    "daily_needs_declining_balance": {"interest_recalculation": "daily", "day_count": "actual/365",
                                      "interest_method": "flat"},
    "daily_needs_equal_installments": {"interest_recalculation": "daily", "day_count": "actual/365",
                                       "amortization": "equal_principal"},
    "daily_without_principal_grace": {"interest_recalculation": "daily", "day_count": "actual/365",
                                      "grace_principal_periods": 1},
    "non_accrual_fixed_schedule": {"interest_recalculation": "daily", "day_count": "actual/365",
                                   "non_accrual_after_days": 90},
}

VALID_VARIANTS: list[dict[str, Any]] = [
    {},
    {"currency": "JPY", "min_principal": "10000", "max_principal": 5_000_000, "late_fee": {"amount": 500}},
    {"currency": "KWD", "min_principal": "0.125", "max_principal": "10.500", "late_fee": {"amount": "0.001"}},
    {"min_rate_percent": None, "max_rate_percent": None},
    {"min_rate_percent": "12", "max_rate_percent": "12"},
    {"annual_rate_percent": "0", "min_rate_percent": "0", "max_rate_percent": "1000"},
    {"annual_rate_percent": "7.123456", "min_rate_percent": "7.123456"},
    {"min_principal": "5000", "max_principal": "5000.00"},
    {"max_principal": 999_999_999_999},  # CONTRACT Money: 12 integer digits at most
    {"min_term": 1, "max_term": 1200, "grace_principal_periods": 0},
    {"min_term": 36, "max_term": 36, "grace_principal_periods": 35},
    {"frequency": "yearly", "max_term": 100},
    {"frequency": "weekly", "max_term": 1200},
    {"interest_method": "flat", "amortization": "equal_installments"},
    {"amortization": "interest_only"},
    {"amortization": "equal_principal"},
    {"late_fee": {"percent_of_overdue": "100", "grace_days": 365}},
    {"late_fee": {"percent_of_overdue": "0.000001", "grace_days": 0}},
    {"late_fee": {}},
    {"allocation_order": ["interest", "principal", "fees", "penalties"]},
    {"prepayment": "reduce_installment"},
    {"prepayment": "pay_ahead"},
    {"interest_recalculation": "daily", "day_count": "actual/365", "grace_principal_periods": 0},
    {"interest_recalculation": "daily", "day_count": "actual/actual", "prepayment": "pay_ahead",
     "grace_principal_periods": 0},
]


def _request(patch: dict[str, Any]) -> ProductCreate:
    try:
        return ProductCreate.model_validate({**VALID, **patch})
    except ValidationError:
        # 13-digit money is refused by the schema before any rule runs (CONTRACT Money); the rule is a backstop.
        return ProductCreate.model_validate(VALID).model_copy(update={k: Decimal(v) for k, v in patch.items()})


RULES_BY_NAME = {rule.name: rule for rule in RULES}


def test_rule_names_are_unique_and_every_rule_has_a_violating_case() -> None:
    assert len(RULES_BY_NAME) == len(RULES)
    assert set(VIOLATIONS) == set(RULES_BY_NAME)


@pytest.mark.parametrize("patch", VALID_VARIANTS, ids=[str(i) for i in range(len(VALID_VARIANTS))])
def test_no_rule_fires_on_a_valid_product(patch: dict[str, Any]) -> None:
    assert violations(_request(patch)) == []


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_each_rule_fires_on_its_violation_and_names_all_its_fields(name: str) -> None:
    rule: Rule = RULES_BY_NAME[name]
    request = _request(VIOLATIONS[name])
    assert rule in violations(request)
    errors = field_errors(request)
    for field in rule.fields:
        assert any(e.field == field and e.message == rule.message for e in errors), errors


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_each_rule_is_quiet_on_every_valid_variant(name: str) -> None:
    rule = RULES_BY_NAME[name]
    for patch in VALID_VARIANTS:
        assert not rule.violated(_request(patch)), patch


def test_pair_rules_name_both_fields() -> None:
    pairs = {
        "principal_range": ("min_principal", "max_principal"),
        "term_range": ("min_term", "max_term"),
        "rate_bounds": ("min_rate_percent", "max_rate_percent"),
        "annual_rate_at_least_min": ("annual_rate_percent", "min_rate_percent"),
        "annual_rate_at_most_max": ("annual_rate_percent", "max_rate_percent"),
        "grace_leaves_amortizing_period": ("grace_principal_periods", "min_term"),
        "flat_needs_equal_installments": ("interest_method", "amortization"),
        "late_fee_one_kind": ("late_fee.amount", "late_fee.percent_of_overdue"),
    }
    for name, fields in pairs.items():
        assert RULES_BY_NAME[name].fields == fields


def test_only_a_min_rate_above_the_default_rate_fires_the_window_rule() -> None:
    request = _request({"min_rate_percent": "13", "max_rate_percent": None})
    assert [r.name for r in violations(request)] == ["annual_rate_at_least_min"]


def test_unknown_currency_does_not_cascade_into_decimal_rules() -> None:
    request = _request({"currency": "ABC", "min_principal": "1.12345"})
    assert [r.name for r in violations(request)] == ["currency_known"]


@pytest.mark.parametrize(("text", "places"), [("1", 0), ("1.50", 2), ("100", 0), ("0.000001", 6)])
def test_decimal_places_count_as_written(text: str, places: int) -> None:
    assert decimal_places(Decimal(text)) == places


@pytest.mark.parametrize(("rate", "stored", "shown"), [
    ("12", 12_000_000, "12"), ("7.50", 7_500_000, "7.5"), ("0", 0, "0"), ("1000", 1_000_000_000, "1000"),
    ("0.000001", 1, "0.000001"), ("100.10", 100_100_000, "100.1"),
])
def test_rates_are_stored_exactly_in_micro_percent(rate: str, stored: int, shown: str) -> None:
    assert rate_to_e6(Decimal(rate)) == stored
    assert format_rate(stored) == shown
