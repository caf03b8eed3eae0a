"""POST /api/v1/schedules/preview and /explain end to end (CONTRACT "Schedules")."""

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.conftest import World, assert_problem

PREVIEW = "/api/v1/schedules/preview"
EXPLAIN = "/api/v1/schedules/explain"
SMOKE = {
    "principal": "10000.00",
    "annual_rate_percent": "9",
    "term": 24,
    "frequency": "monthly",
    "disbursement_date": "2025-01-15",
}
USD = re.compile(r"^-?\d+\.\d{2}$")
MONEY_KEYS = ("principal", "interest", "total", "balance")
_MISSING = object()


def preview(world: World, who: str = "officer_a", **changes: Any) -> Any:
    return world.post(who, PREVIEW, json=_body(changes))


def _body(changes: dict[str, Any]) -> dict[str, Any]:
    body = {**SMOKE, **changes}
    return {k: v for k, v in body.items() if v is not _MISSING}


def test_contract_smoke_example(world: World) -> None:
    r = preview(world)
    assert r.status_code == 200, r.text
    body = r.json()
    rows = body["installments"]
    assert len(rows) == 24
    assert [row["number"] for row in rows] == list(range(1, 25))
    assert rows[0]["due_date"] == "2025-02-15"
    assert rows[-1]["due_date"] == body["maturity_date"] == "2027-01-15"
    assert sum(Decimal(row["principal"]) for row in rows) == Decimal("10000.00")
    assert rows[-1]["balance"] == "0.00"
    for row in rows:
        assert all(isinstance(row[k], str) and USD.fullmatch(row[k]) for k in MONEY_KEYS), row
        assert Decimal(row["principal"]) + Decimal(row["interest"]) == Decimal(row["total"])
    assert body["installment_amount"] == "456.85"
    assert all(row["total"] == "456.85" for row in rows[:-1])
    assert rows[0]["interest"] == "75.00"  # 10000.00 × 9 % / 12, 30/360 regular period
    totals = body["totals"]
    assert totals == {
        "principal": "10000.00",
        "interest": str(sum(Decimal(row["interest"]) for row in rows)),
        "total": str(sum(Decimal(row["total"]) for row in rows)),
    }
    assert re.fullmatch(r"^\d+\.\d{4}$", body["apr_percent"])
    assert abs(Decimal(body["apr_percent"]) - Decimal(9)) <= Decimal("0.01")
    assert body["currency"] == "USD"
    assert body["amount_financed"] == "10000.00"
    assert body["upfront_fee"] == "0.00"
    assert body["finance_charge"] == totals["interest"]


@pytest.mark.parametrize("who", ["admin", "manager", "officer_a", "officer_b", "auditor"])
def test_any_signed_in_user_may_preview(world: World, who: str) -> None:
    assert preview(world, who).status_code == 200


@pytest.mark.parametrize("path", [PREVIEW, EXPLAIN])
def test_unauthenticated_is_401(world: World, path: str) -> None:
    assert_problem(world.client.post(path, json={**SMOKE, "installment_number": 1}), 401)
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert_problem(world.client.post(path, json={**SMOKE, "installment_number": 1}, headers=bad_token), 401)


def test_due_dates_clamp_to_month_end_from_the_anchor(world: World) -> None:
    r = preview(world, disbursement_date="2024-01-31", term=4)
    assert r.status_code == 200, r.text
    dates = [row["due_date"] for row in r.json()["installments"]]
    assert dates == ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]


def test_first_payment_date_anchors_the_grid(world: World) -> None:
    r = preview(world, first_payment_date="2025-03-01", term=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [row["due_date"] for row in body["installments"]] == ["2025-03-01", "2025-04-01", "2025-05-01"]
    assert body["first_payment_date"] == "2025-03-01"
    # Odd first period: 30/360 US from Jan 15 to Mar 1 is 46 days -> 10000.00 × 9 % × 46/360 = 115.00.
    assert body["installments"][0]["interest"] == "115.00"


def test_jpy_has_no_decimals(world: World) -> None:
    r = preview(world, principal="1000000", currency="JPY", term=12)
    assert r.status_code == 200, r.text
    body = r.json()
    money = [body["installment_amount"], body["amount_financed"], *body["totals"].values()]
    money += [row[k] for row in body["installments"] for k in MONEY_KEYS]
    assert all(re.fullmatch(r"^\d+$", m) for m in money), money
    assert body["totals"]["principal"] == "1000000"
    assert body["installments"][0]["interest"] == "7500"


def test_kwd_has_three_decimals(world: World) -> None:
    r = preview(world, principal="1000.000", currency="KWD", term=12)
    assert r.status_code == 200, r.text
    body = r.json()
    money = [body["installment_amount"], *body["totals"].values()]
    money += [row[k] for row in body["installments"] for k in MONEY_KEYS]
    assert all(re.fullmatch(r"^\d+\.\d{3}$", m) for m in money), money
    assert body["installments"][-1]["balance"] == "0.000"


def test_integer_money_is_accepted(world: World) -> None:
    r = preview(world, principal=10000, annual_rate_percent=9)
    assert r.status_code == 200, r.text
    assert r.json()["installment_amount"] == "456.85"


def test_upfront_fee_raises_the_apr_above_the_nominal_rate(world: World) -> None:
    r = preview(world, upfront_fee="200.00")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["amount_financed"] == "9800.00"
    assert Decimal(body["finance_charge"]) == Decimal(body["totals"]["interest"]) + Decimal("200.00")
    assert Decimal(body["apr_percent"]) > Decimal("10.9")  # 2 % fee over a 2-year term adds about 2 pp


def test_flat_interest_is_spread_evenly(world: World) -> None:
    r = preview(world, interest_method="flat", term=12, principal="1200.00", annual_rate_percent="10")
    assert r.status_code == 200, r.text
    rows = r.json()["installments"]
    # 1200.00 × 10 % × 12/12 = 120.00 -> 10.00 per installment
    assert {row["interest"] for row in rows} == {"10.00"}
    assert r.json()["totals"]["interest"] == "120.00"


def test_installment_multiple_rounds_the_regular_installment(world: World) -> None:
    r = preview(world, installment_multiple_of="20")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["installment_amount"] == "460.00"
    assert all(row["total"] == "460.00" for row in body["installments"][:-1])
    assert body["installments"][-1]["balance"] == "0.00"


def test_grace_periods_are_interest_only(world: World) -> None:
    r = preview(world, grace_principal_periods=3)
    assert r.status_code == 200, r.text
    rows = r.json()["installments"]
    assert [row["principal"] for row in rows[:3]] == ["0.00"] * 3
    assert [row["interest"] for row in rows[:3]] == ["75.00"] * 3
    assert rows[3]["total"] == r.json()["installment_amount"]


VALIDATION_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("principal zero", {"principal": "0"}, "principal"),
    ("principal zero int", {"principal": 0}, "principal"),
    ("principal negative", {"principal": "-100.00"}, "principal"),
    ("principal above 10^12", {"principal": "1000000000000.01"}, "principal"),
    ("principal huge int", {"principal": 10**30}, "principal"),
    ("principal float", {"principal": 10000.5}, "principal"),
    ("principal exponent", {"principal": "1e5"}, "principal"),
    ("principal NaN", {"principal": "NaN"}, "principal"),
    ("principal text", {"principal": "abc"}, "principal"),
    ("principal bool", {"principal": True}, "principal"),
    ("principal null", {"principal": None}, "principal"),
    ("principal missing", {"principal": _MISSING}, "principal"),
    ("USD three decimals", {"principal": "1.001"}, "principal"),
    ("JPY decimals", {"principal": "100.5", "currency": "JPY"}, "principal"),
    ("KWD four decimals", {"principal": "100.0001", "currency": "KWD"}, "principal"),
    ("term zero", {"term": 0}, "term"),
    ("term above 1200", {"term": 1201}, "term"),
    ("term negative", {"term": -1}, "term"),
    ("term huge", {"term": 10**40}, "term"),
    ("term string", {"term": "12"}, "term"),
    ("term fraction", {"term": 12.5}, "term"),
    ("term null", {"term": None}, "term"),
    ("frequency unknown", {"frequency": "hourly"}, "frequency"),
    ("frequency null", {"frequency": None}, "frequency"),
    ("amortization unknown", {"amortization": "balloon"}, "amortization"),
    ("interest_method unknown", {"interest_method": "compound"}, "interest_method"),
    ("day_count unknown", {"day_count": "30E/360"}, "day_count"),
    ("disbursement Feb 30", {"disbursement_date": "2025-02-30"}, "disbursement_date"),
    ("disbursement month 13", {"disbursement_date": "2025-13-01"}, "disbursement_date"),
    ("disbursement not ISO", {"disbursement_date": "15/01/2025"}, "disbursement_date"),
    ("disbursement timestamp", {"disbursement_date": 1736899200}, "disbursement_date"),
    ("disbursement datetime", {"disbursement_date": "2025-01-15T00:00:00"}, "disbursement_date"),
    ("disbursement null", {"disbursement_date": None}, "disbursement_date"),
    ("first payment impossible", {"first_payment_date": "2025-02-30"}, "first_payment_date"),
    ("first payment on disbursement", {"first_payment_date": "2025-01-15"}, "first_payment_date"),
    ("first payment before disbursement", {"first_payment_date": "2025-01-01"}, "first_payment_date"),
    ("last due date after 9999", {"disbursement_date": "9999-06-01"}, "term"),
    ("rate negative", {"annual_rate_percent": "-0.5"}, "annual_rate_percent"),
    ("rate above 1000", {"annual_rate_percent": "1000.01"}, "annual_rate_percent"),
    ("rate float", {"annual_rate_percent": 9.5}, "annual_rate_percent"),
    ("rate exponent", {"annual_rate_percent": "9e0"}, "annual_rate_percent"),
    ("rate text", {"annual_rate_percent": "nine"}, "annual_rate_percent"),
    ("rate seven decimals", {"annual_rate_percent": "9.0000001"}, "annual_rate_percent"),
    ("fee equals principal", {"upfront_fee": "10000.00"}, "upfront_fee"),
    ("fee above principal", {"upfront_fee": "10000.01"}, "upfront_fee"),
    ("fee negative", {"upfront_fee": "-1.00"}, "upfront_fee"),
    ("fee three decimals", {"upfront_fee": "1.005"}, "upfront_fee"),
    ("fee float", {"upfront_fee": 10.5}, "upfront_fee"),
    ("multiple zero", {"installment_multiple_of": "0"}, "installment_multiple_of"),
    ("multiple negative", {"installment_multiple_of": "-20"}, "installment_multiple_of"),
    ("multiple above principal", {"installment_multiple_of": "10000.01"}, "installment_multiple_of"),
    (
        "multiple with equal principal",
        {"installment_multiple_of": "20", "amortization": "equal_principal"},
        "installment_multiple_of",
    ),
    ("grace equals term", {"grace_principal_periods": 24}, "grace_principal_periods"),
    ("grace negative", {"grace_principal_periods": -1}, "grace_principal_periods"),
    ("currency unknown", {"currency": "ABC"}, "currency"),
    ("currency lower case", {"currency": "usd"}, "currency"),
    ("currency too long", {"currency": "USDX"}, "currency"),
    ("unknown field", {"interest_rate": "9"}, "interest_rate"),
]


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_bad_input_is_422_naming_the_field(world: World, changes: dict[str, Any], field: str) -> None:
    body = assert_problem(preview(world, **changes), 422, field)
    assert body["errors"][0]["message"]


@pytest.mark.parametrize(("changes", "field"), [c[1:] for c in VALIDATION_CASES], ids=[c[0] for c in VALIDATION_CASES])
def test_explain_validates_the_same_terms(world: World, changes: dict[str, Any], field: str) -> None:
    assert_problem(world.post("officer_a", EXPLAIN, json=_body({**changes, "installment_number": 1})), 422, field)


@pytest.mark.parametrize(
    "raw", ["", "[]", "[1, 2]", "null", '"text"', "42", "{", '{"principal": 1e999}', '{"principal": NaN}']
)
def test_malformed_bodies_are_4xx_problems(world: World, raw: str) -> None:
    r = world.client.post(PREVIEW, content=raw, headers=world.h("officer_a", **{"Content-Type": "application/json"}))
    assert r.status_code in {400, 422}, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_enums_are_listed_in_openapi(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert set(schemas["Frequency"]["enum"]) == {"daily", "weekly", "biweekly", "monthly", "quarterly", "yearly"}
    assert set(schemas["DayCount"]["enum"]) == {"30/360", "actual/365", "actual/360", "actual/actual"}
    assert set(schemas["Amortization"]["enum"]) == {"equal_installments", "equal_principal", "interest_only"}
    assert set(schemas["InterestMethod"]["enum"]) == {"declining_balance", "flat"}
    request = schemas["ScheduleRequest"]["properties"]
    money = {"anyOf": [{"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}, {"type": "integer"}]}
    assert request["principal"]["anyOf"] == request["upfront_fee"]["anyOf"] == money["anyOf"]


# --- explain -------------------------------------------------------------------------------------------------


def explain(world: World, number: int, **changes: Any) -> Any:
    return world.post("auditor", EXPLAIN, json=_body({**changes, "installment_number": number}))


def test_explain_recomputes_every_row_of_the_smoke_schedule(world: World) -> None:
    rows = preview(world).json()["installments"]
    for row in rows:
        r = explain(world, row["number"])
        assert r.status_code == 200, r.text
        why = r.json()
        assert why["installment"] == row
        assert why["rounded_interest"] == why["scheduled_interest"] == row["interest"]
        assert why["rounding_mode"] == "half_up"
        assert why["rounding_place"] == "0.01"
        opening = Decimal(why["opening_balance"])
        assert opening == Decimal(row["balance"]) + Decimal(row["principal"])
        exact = opening * Decimal(why["annual_rate_percent"]) / 100
        exact = exact * why["year_fraction_numerator"] / why["year_fraction_denominator"]
        assert Decimal(why["unrounded_interest"]).quantize(Decimal("1e-20")) == exact.quantize(Decimal("1e-20"))
        assert exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) == Decimal(row["interest"])
        assert (why["year_fraction_numerator"], why["year_fraction_denominator"]) == (1, 12)
        assert why["days"] == 30 and why["regular_period"] is True and why["day_numbers"] is None
        is_last = row["number"] == len(rows)
        assert (why["residual_to_last"] is not None) == is_last
    last = explain(world, 24).json()
    assert Decimal(last["residual_to_last"]) == Decimal(rows[-1]["total"]) - Decimal("456.85")


def test_explain_odd_first_period_shows_the_30_360_day_numbers(world: World) -> None:
    r = explain(world, 1, disbursement_date="2024-01-31", first_payment_date="2024-02-29")
    assert r.status_code == 200, r.text
    why = r.json()
    assert why["period_start"] == "2024-01-31" and why["period_end"] == "2024-02-29"
    assert why["regular_period"] is True  # Feb 29 is exactly one period after Jan 31 (month-end clamp)
    r = explain(world, 1, first_payment_date="2025-03-01")
    why = r.json()
    assert why["regular_period"] is False
    assert why["day_numbers"] == {"d1": 15, "m1": 1, "y1": 2025, "d2": 1, "m2": 3, "y2": 2025}
    assert why["days"] == 46 and (why["year_fraction_numerator"], why["year_fraction_denominator"]) == (46, 360)
    assert why["unrounded_interest"] == "115.00" and why["rounded_interest"] == "115.00"
    assert "46/360" in why["formula"]


def test_explain_actual_365(world: World) -> None:
    r = explain(world, 2, day_count="actual/365", disbursement_date="2024-01-31")
    assert r.status_code == 200, r.text
    why = r.json()
    assert (why["period_start"], why["period_end"]) == ("2024-02-29", "2024-03-31")
    assert why["days"] == (date(2024, 3, 31) - date(2024, 2, 29)).days == 31
    assert (why["year_fraction_numerator"], why["year_fraction_denominator"]) == (31, 365)
    exact = Decimal(why["opening_balance"]) * 9 / 100 * 31 / 365
    assert why["rounded_interest"] == str(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_explain_flat(world: World) -> None:
    r = explain(world, 3, interest_method="flat", principal="1200.00", annual_rate_percent="10", term=12)
    assert r.status_code == 200, r.text
    why = r.json()
    assert why["interest_method"] == "flat"
    assert why["opening_balance"] == "1200.00"
    assert why["rounded_interest"] == why["scheduled_interest"] == "10.00"


@pytest.mark.parametrize("number", [25, 1200])
def test_explain_number_beyond_the_schedule_is_422(world: World, number: int) -> None:
    body = assert_problem(explain(world, number), 422, "installment_number")
    assert "24" in body["errors"][0]["message"]


def test_explain_number_beyond_a_schedule_shortened_by_the_multiple(world: World) -> None:
    rows = preview(world, installment_multiple_of="100").json()["installments"]
    assert len(rows) < 24  # 456.85 rounds up to 500.00, so the loan is repaid early
    assert explain(world, len(rows), installment_multiple_of="100").status_code == 200
    assert_problem(explain(world, len(rows) + 1, installment_multiple_of="100"), 422, "installment_number")


@pytest.mark.parametrize("number", [0, -1, 1201, "1", 1.5, None, _MISSING])
def test_explain_bad_installment_number_is_422(world: World, number: Any) -> None:
    r = world.post("auditor", EXPLAIN, json=_body({"installment_number": number}))
    assert_problem(r, 422, "installment_number")
