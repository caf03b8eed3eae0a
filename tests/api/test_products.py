"""Products end to end: admin-only creation, exact money and rates, the capability rules, immutability."""

from typing import Any

import pytest

from app.products import repository as product_repo
from tests.conftest import World, assert_problem, unique

URL = "/api/v1/products"


def _body(**patch: Any) -> dict[str, Any]:
    return {
        "code": unique("PL-"),
        "name": "Personal loan",
        "currency": "USD",
        "min_principal": "100",
        "max_principal": "5000.5",
        "min_term": 6,
        "max_term": 36,
        "annual_rate_percent": "12.50",
        "min_rate_percent": "10",
        "max_rate_percent": "20.000",
        "frequency": "monthly",
        "amortization": "equal_installments",
        "interest_method": "declining_balance",
        "day_count": "30/360",
        "grace_principal_periods": 1,
        "late_fee": {"amount": "15", "grace_days": 5},
        **patch,
    }


def _create(world: World, **patch: Any) -> dict[str, Any]:
    r = world.post("admin", URL, _body(**patch))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_admin_creates_a_product_with_formatted_money_and_normalised_rates(world: World) -> None:
    body = _body()
    r = world.post("admin", URL, body)
    assert r.status_code == 201, r.text
    product = r.json()
    assert r.headers["location"] == f"{URL}/{product['id']}"
    assert product["code"] == body["code"] and product["currency"] == "USD"
    assert (product["min_principal"], product["max_principal"]) == ("100.00", "5000.50")
    assert (product["annual_rate_percent"], product["min_rate_percent"], product["max_rate_percent"]) == (
        "12.5", "10", "20")
    assert product["late_fee"] == {"amount": "15.00", "percent_of_overdue": None, "grace_days": 5}
    assert product["allocation_order"] == ["penalties", "fees", "interest", "principal"]
    assert product["is_active"] is True
    assert (product["frequency"], product["amortization"], product["interest_method"], product["day_count"]) == (
        "monthly", "equal_installments", "declining_balance", "30/360")
    assert (product["min_term"], product["max_term"], product["grace_principal_periods"]) == (6, 36, 1)
    for who in ("officer_a", "officer_b", "manager", "auditor"):
        assert world.get(who, f"{URL}/{product['id']}").json() == product


def test_defaults_fixed_rate_no_late_fee_and_a_custom_allocation_order(world: World) -> None:
    body = _body(allocation_order=["interest", "principal", "fees", "penalties"])
    for optional in ("min_rate_percent", "max_rate_percent", "late_fee", "grace_principal_periods"):
        del body[optional]
    r = world.post("admin", URL, body)
    assert r.status_code == 201, r.text
    product = r.json()
    assert product["min_rate_percent"] == product["max_rate_percent"] == product["annual_rate_percent"] == "12.5"
    assert product["late_fee"] == {"amount": None, "percent_of_overdue": None, "grace_days": 0}
    assert product["grace_principal_periods"] == 0
    assert product["allocation_order"] == ["interest", "principal", "fees", "penalties"]


def test_percentage_late_fee_and_zero_decimal_and_three_decimal_currencies(world: World) -> None:
    pct = _create(world, late_fee={"percent_of_overdue": "2.500000", "grace_days": 0})
    assert pct["late_fee"] == {"amount": None, "percent_of_overdue": "2.5", "grace_days": 0}
    jpy = _create(world, currency="JPY", min_principal=10000, max_principal="5000000", late_fee={"amount": "500"})
    assert (jpy["min_principal"], jpy["max_principal"], jpy["late_fee"]["amount"]) == ("10000", "5000000", "500")
    kwd = _create(world, currency="KWD", min_principal="0.125", max_principal="100", late_fee={"amount": "1.5"})
    assert (kwd["min_principal"], kwd["max_principal"], kwd["late_fee"]["amount"]) == ("0.125", "100.000", "1.500")
    precise = _create(world, annual_rate_percent="7.123456", min_rate_percent="0", max_rate_percent="1000")
    assert (precise["annual_rate_percent"], precise["min_rate_percent"], precise["max_rate_percent"]) == (
        "7.123456", "0", "1000")


@pytest.mark.parametrize("who", ["manager", "officer_a", "auditor"])
def test_only_admins_create_products(world: World, who: str) -> None:
    assert_problem(world.post(who, URL, _body()), 403)


def test_list_and_get(world: World) -> None:
    created = [_create(world) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        page = world.client.get(URL, params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                headers=world.h("officer_b")).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert {c["id"] for c in created} <= set(seen) and len(seen) == len(set(seen))
    active = world.get("auditor", f"{URL}?is_active=true&limit=500").json()["items"]
    assert {c["id"] for c in created} <= {p["id"] for p in active}
    assert world.get("auditor", f"{URL}?is_active=false&limit=500").json()["items"] == []
    assert_problem(world.get("admin", f"{URL}/00000000-0000-7000-8000-000000000000"), 404)
    assert_problem(world.client.get(URL), 401)


def test_products_are_immutable(world: World) -> None:
    product = _create(world)
    assert world.patch("admin", f"{URL}/{product['id']}", {"name": "changed"}).status_code == 405
    assert world.client.put(f"{URL}/{product['id']}", json={}, headers=world.h("admin")).status_code == 405
    description = world.client.get("/openapi.json").json()["paths"][URL]["post"]["description"]
    assert "immutable" in description


def test_duplicate_code_is_409_with_the_existing_id(world: World) -> None:
    first = _create(world)
    body = assert_problem(world.post("admin", URL, _body(code=first["code"])), 409)
    assert body["field"] == "code" and body["existing_id"] == first["id"]


def test_a_code_taken_by_a_concurrent_writer_is_still_409(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _create(world)
    real = product_repo.get_product_by_code
    calls: list[int] = []

    def blind_first_time(*args: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(product_repo, "get_product_by_code", blind_first_time)
    body = assert_problem(world.post("admin", URL, _body(code=first["code"])), 409)
    assert body["field"] == "code" and body["existing_id"] == first["id"] and len(calls) == 2


@pytest.mark.parametrize(
    ("patch", "fields"),
    [
        ({"min_principal": "6000"}, ("min_principal", "max_principal")),
        ({"min_term": 48}, ("min_term", "max_term")),
        ({"min_rate_percent": "21"}, ("min_rate_percent", "max_rate_percent")),
        ({"annual_rate_percent": "9.5"}, ("annual_rate_percent", "min_rate_percent")),
        ({"annual_rate_percent": "20.01"}, ("annual_rate_percent", "max_rate_percent")),
        ({"min_rate_percent": None, "annual_rate_percent": "25"}, ("annual_rate_percent", "max_rate_percent")),
        ({"grace_principal_periods": 6}, ("grace_principal_periods", "min_term")),
        ({"interest_method": "flat", "amortization": "equal_principal"}, ("interest_method", "amortization")),
        ({"interest_method": "flat", "amortization": "interest_only"}, ("interest_method", "amortization")),
        ({"late_fee": {"amount": "5", "percent_of_overdue": "2"}}, ("late_fee.amount", "late_fee.percent_of_overdue")),
        ({"frequency": "quarterly", "max_term": 401}, ("max_term", "frequency")),
    ],
)
def test_impossible_combinations_are_422_naming_both_fields(
    world: World, patch: dict[str, Any], fields: tuple[str, str]
) -> None:
    body = assert_problem(world.post("admin", URL, _body(**patch)), 422)
    named = [e["field"] for e in body["errors"]]
    assert set(fields) <= set(named), body
    first, second = ({e["message"] for e in body["errors"] if e["field"] == f} for f in fields)
    assert first & second, body  # one rule, one message, both fields


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "DOLLARS"}, "currency"),
        ({"min_principal": "0"}, "min_principal"),
        ({"min_principal": "-100"}, "min_principal"),
        ({"min_principal": "100.001"}, "min_principal"),
        ({"max_principal": "1000000000000.01"}, "max_principal"),
        ({"max_principal": str(10**12 + 1)}, "max_principal"),
        ({"min_term": 0}, "min_term"),
        ({"max_term": 1201}, "max_term"),
        ({"annual_rate_percent": "-1", "min_rate_percent": "-1"}, "annual_rate_percent"),
        ({"max_rate_percent": "1000.1"}, "max_rate_percent"),
        ({"annual_rate_percent": "12.1234567"}, "annual_rate_percent"),
        ({"grace_principal_periods": -1}, "grace_principal_periods"),
        ({"late_fee": {"amount": "0"}}, "late_fee.amount"),
        ({"late_fee": {"amount": "-5"}}, "late_fee.amount"),
        ({"late_fee": {"amount": "1.999"}}, "late_fee.amount"),
        ({"late_fee": {"percent_of_overdue": "0"}}, "late_fee.percent_of_overdue"),
        ({"late_fee": {"percent_of_overdue": "100.01"}}, "late_fee.percent_of_overdue"),
        ({"late_fee": {"grace_days": -1}}, "late_fee.grace_days"),
        ({"late_fee": {"grace_days": 366}}, "late_fee.grace_days"),
        ({"late_fee": {"fixed": "5"}}, "late_fee.fixed"),
        ({"allocation_order": ["principal", "interest", "fees"]}, "allocation_order"),
        ({"allocation_order": ["principal", "interest", "fees", "fees"]}, "allocation_order"),
        ({"allocation_order": ["principal", "interest", "fees", "tips"]}, "allocation_order"),
        ({"frequency": "hourly"}, "frequency"),
        ({"amortization": "balloon"}, "amortization"),
        ({"interest_method": "compound"}, "interest_method"),
        ({"day_count": "30/365"}, "day_count"),
        ({"code": "has space"}, "code"),
        ({"code": ""}, "code"),
        ({"name": "  "}, "name"),
        ({"name": "tab\tname"}, "name"),
        ({"accounts": {"portfolio": "1100"}}, "accounts"),
    ],
)
def test_invalid_values_are_422_naming_the_field(world: World, patch: dict[str, Any], field: str) -> None:
    assert_problem(world.post("admin", URL, _body(**patch)), 422, field)


@pytest.mark.parametrize("value", [1234.5, 100.0, "1e5", "1E5", "NaN", "Infinity", "abc", "", " ", True, None,
                                   "1,000", "+100", [100], {"amount": 100}])
@pytest.mark.parametrize("field", ["min_principal", "max_principal"])
def test_money_must_be_an_exact_decimal_string_or_integer(world: World, field: str, value: Any) -> None:
    assert_problem(world.post("admin", URL, _body(**{field: value})), 422, field)


@pytest.mark.parametrize("value", [12.5, "1e1", "NaN", "twelve", True])
def test_rates_must_be_exact_decimals(world: World, value: Any) -> None:
    assert_problem(world.post("admin", URL, _body(annual_rate_percent=value)), 422, "annual_rate_percent")


@pytest.mark.parametrize("value", ["1000.5", "1000.50", "1000.05"])
def test_jpy_amounts_with_decimals_are_422(world: World, value: str) -> None:
    r = world.post("admin", URL, _body(currency="JPY", min_principal="1000", max_principal="5000000",
                                      late_fee={"amount": value}))
    assert_problem(r, 422, "late_fee.amount")
    r = world.post("admin", URL, _body(currency="JPY", min_principal=value, max_principal="5000000",
                                      late_fee={"amount": "500"}))
    assert_problem(r, 422, "min_principal")


def test_every_violation_is_reported_at_once(world: World) -> None:
    body = assert_problem(world.post("admin", URL, _body(currency="JPY", min_principal="9000.5", min_term=50,
                                                         late_fee={"amount": "1"})), 422)
    named = {e["field"] for e in body["errors"]}
    assert {"min_principal", "max_principal", "min_term", "max_term"} <= named


def test_a_nul_byte_id_is_a_bad_request(world: World) -> None:
    assert_problem(world.get("admin", f"{URL}/a%00b"), 400)
