"""The ledger over HTTP: the chart of accounts, the disbursement and repayment entries of a loan, the trial
balance (always balanced; per account it moves by exactly the posted lines), and who may read the books."""

from decimal import Decimal
from typing import Any

import pytest

from tests.api.helpers_lending import LOANS, active_loan, approved_loan, disburse, pay
from tests.conftest import World, assert_problem

LEDGER = "/api/v1/ledger"

# CONTRACT Ledger: at least these, by role; the codes are app.ledger.accounts.CHART.
CONTRACT_ACCOUNTS = {
    "1000": "asset",  # cash / fund source
    "1100": "asset",  # loan portfolio
    "1200": "asset",  # interest receivable
    "1210": "asset",  # fees receivable
    "2100": "liability",  # overpayment liability
    "4000": "income",  # interest income
    "4100": "income",  # fee income
    "4200": "income",  # penalty income
    "5000": "expense",  # write-off expense
}


def lines(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((ln["account_code"], ln["debit"], ln["credit"]) for ln in entry["lines"])


def trial_balance(world: World, who: str = "auditor", **params: str) -> dict[str, Any]:
    r = world.get(who, f"{LEDGER}/trial-balance", params=params)
    assert r.status_code == 200, r.text
    tb: dict[str, Any] = r.json()
    assert tb["total_debit"] == tb["total_credit"], tb
    return tb


def by_code(tb: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    return {a["code"]: {k: Decimal(a[k]) for k in ("debit", "credit", "balance")} for a in tb["accounts"]}


def test_chart_of_accounts_has_the_contracts_accounts(world: World) -> None:
    r = world.get("auditor", f"{LEDGER}/accounts")
    assert r.status_code == 200, r.text
    accounts = {a["code"]: a for a in r.json()["items"]}
    for code, kind in CONTRACT_ACCOUNTS.items():
        assert accounts[code]["type"] == kind and accounts[code]["is_active"] and accounts[code]["name"]
    assert {a["type"] for a in accounts.values()} <= {"asset", "liability", "equity", "income", "expense"}


def test_disbursement_posts_dr_portfolio_cr_fund_source(world: World) -> None:
    loan = disburse(world, approved_loan(world, principal="1500.00")["id"], amount="1234.56")
    r = world.get("officer_a", f"{LOANS}/{loan['id']}/journal-entries")
    assert r.status_code == 200, r.text
    [entry] = r.json()["items"]
    assert entry["entry_type"] == "disbursement" and entry["loan_id"] == loan["id"]
    assert entry["effective_date"] == loan["disbursement_date"] and entry["currency"] == "USD"
    assert lines(entry) == [("1000", "0.00", "1234.56"), ("1100", "1234.56", "0.00")]
    tx = world.get("officer_a", f"{LOANS}/{loan['id']}/transactions").json()["items"]
    assert [(t["type"], t["amount"], t["journal_entry_id"]) for t in tx] == [("disbursement", "1234.56", entry["id"])]
    assert entry["transaction_id"] == tx[0]["id"]

    page = world.get("auditor", f"{LEDGER}/journal-entries", params={"loan_id": loan["id"]}).json()
    assert page["items"] == [entry] and page["next_cursor"] is None


def test_no_journal_entry_before_disbursement(world: World) -> None:
    loan = approved_loan(world)
    assert world.get("manager", f"{LOANS}/{loan['id']}/journal-entries").json() == {"items": [], "next_cursor": None}
    assert world.get("manager", f"{LEDGER}/journal-entries", params={"loan_id": loan["id"]}).json()["items"] == []


def test_a_repayment_posts_dr_fund_source_cr_portfolio(world: World) -> None:
    loan = active_loan(world, principal="1200.00")
    r = pay(world, loan["id"], "200.00", who="officer_a")
    assert r.status_code == 201, r.text
    entries = world.get("manager", f"{LOANS}/{loan['id']}/journal-entries").json()["items"]
    assert [e["entry_type"] for e in entries] == ["disbursement", "repayment"]
    # Paid on the disbursement day: installment 1 (1200.00 at the product's rate) is paid as scheduled, so its
    # interest is received in advance (2110, a liability) until it accrues; the rest is principal.
    installment = world.get("manager", f"{LOANS}/{loan['id']}/schedule").json()["installments"][0]
    interest = Decimal(installment["interest"])
    assert interest > 0
    assert lines(entries[1]) == [
        ("1000", "200.00", "0.00"),
        ("1100", "0.00", f"{Decimal('200.00') - interest:.2f}"),
        ("2110", "0.00", f"{interest:.2f}"),
    ]
    assert entries[1]["transaction_id"] == r.json()["transaction_id"]


def test_trial_balance_balances_and_moves_by_exactly_the_posted_lines(world: World) -> None:
    before = by_code(trial_balance(world))
    loan = active_loan(world, principal="987.65")
    after_tb = trial_balance(world, "manager")
    after = by_code(after_tb)
    assert after_tb["currency"] == "USD" and set(after) == set(before)
    moved = {code for code in after if after[code] != before[code]}
    assert moved == {"1000", "1100"}
    assert after["1100"]["debit"] - before["1100"]["debit"] == Decimal("987.65")
    assert after["1000"]["credit"] - before["1000"]["credit"] == Decimal("987.65")
    for code, row in after.items():
        assert row["balance"] == row["debit"] - row["credit"], code
    assert sum(row["balance"] for row in after.values()) == 0
    assert Decimal(after_tb["total_debit"]) == sum(row["debit"] for row in after.values())
    assert loan["balances"]["principal"] == "987.65"


def test_trial_balance_as_of_a_date_before_any_posting_is_all_zero(world: World) -> None:
    active_loan(world)
    tb = trial_balance(world, as_of="2000-01-01")
    assert tb["as_of"] == "2000-01-01" and tb["total_debit"] == tb["total_credit"] == "0.00"
    assert all(a["debit"] == a["credit"] == a["balance"] == "0.00" for a in tb["accounts"])
    assert {a["code"] for a in tb["accounts"]} >= set(CONTRACT_ACCOUNTS)


def test_journal_entry_date_filters(world: World) -> None:
    loan = active_loan(world)
    day = loan["disbursement_date"]
    for params, found in (({"from": day, "to": day}, True), ({"to": "2000-01-01"}, False), ({"from": "2999-01-01"}, False)):
        page = world.get("auditor", f"{LEDGER}/journal-entries", params={"loan_id": loan["id"], **params}).json()
        assert bool(page["items"]) is found, params
    assert_problem(world.get("auditor", f"{LEDGER}/journal-entries", params={"from": "2020-02-01", "to": "2020-01-01"}),
                   422, "from")
    assert_problem(world.get("auditor", f"{LEDGER}/trial-balance", params={"as_of": "yesterday"}), 422, "as_of")


def test_journal_entries_page_through_with_a_cursor(world: World) -> None:
    active_loan(world)
    active_loan(world)
    first = world.get("auditor", f"{LEDGER}/journal-entries", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = world.get("auditor", f"{LEDGER}/journal-entries", params={"limit": 1, "cursor": first["next_cursor"]})
    assert second.status_code == 200 and second.json()["items"][0]["id"] != first["items"][0]["id"]
    assert_problem(world.get("auditor", f"{LEDGER}/journal-entries", params={"limit": 501}), 422, "limit")


@pytest.mark.parametrize("url", ["/accounts", "/journal-entries", "/trial-balance"])
def test_ledger_is_for_auditors_managers_and_admins(world: World, url: str) -> None:
    for who in ("auditor", "manager", "admin"):
        assert world.get(who, f"{LEDGER}{url}").status_code == 200, who
    for who in ("officer_a", "officer_b"):
        assert_problem(world.get(who, f"{LEDGER}{url}"), 403)
    assert_problem(world.client.get(f"{LEDGER}{url}"), 401)


def test_a_loans_own_journal_follows_the_loans_visibility(world: World) -> None:
    loan = active_loan(world)
    for who in ("officer_a", "manager", "auditor", "admin"):
        assert world.get(who, f"{LOANS}/{loan['id']}/journal-entries").status_code == 200, who
    assert_problem(world.get("officer_b", f"{LOANS}/{loan['id']}/journal-entries"), 404)
    assert_problem(world.get("manager", f"{LOANS}/00000000-0000-7000-8000-000000000000/journal-entries"), 404)
