"""Origination end to end over HTTP: submit → approve/reject/withdraw → disburse, product limits, the lifecycle
table (every invalid transition is generated from it), branch scope, roles, optimistic versions and dry runs."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.database import Base, Database
from app.domain.lifecycle import TRANSITIONS, LoanAction, LoanStatus, allowed_actions
from tests.api.helpers_lending import (
    BORROWERS,
    LOANS,
    STATUSES,
    act,
    active_loan,
    approve,
    approved_loan,
    disburse,
    get_loan,
    loan_body,
    loan_in_status,
    make_borrower,
    make_product,
    pay,
    submit_loan,
)
from tests.conftest import World, assert_problem, unique


def business_date(world: World) -> date:
    return date.fromisoformat(world.get("auditor", "/api/v1/operations/business-date").json()["business_date"])


def add_months(day: date, months: int) -> date:
    """CONTRACT Schedules: due dates are anchored on the disbursement date and clamp to the month end."""
    year, month = divmod(day.month - 1 + months, 12)
    first_of_next = date(day.year + year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(day.year + year, month + 1, min(day.day, (first_of_next - timedelta(days=1)).day))


def username(world: World, who: str) -> str:
    name: str = world.get(who, "/api/v1/users/me").json()["username"]
    return name


def table_counts(db: Database) -> dict[str, int]:
    with db.session(writer=False) as session:
        return {
            table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }


# --- the whole path ------------------------------------------------------------------------------------------


def test_submit_approve_disburse_end_to_end(world: World) -> None:
    today = business_date(world)
    body = loan_body(world, principal="1200", term=12, external_id=unique("app-"))
    r = world.post("officer_a", LOANS, body)
    assert r.status_code == 201, r.text
    loan = r.json()
    assert r.headers["location"] == f"{LOANS}/{loan['id']}"
    assert loan["status"] == "submitted" and loan["allowed_actions"] == allowed_actions(LoanStatus.submitted)
    assert (loan["principal"], loan["requested_principal"], loan["term"]) == ("1200.00", "1200.00", 12)
    assert loan["annual_rate_percent"] == "12" and loan["currency"] == "USD"
    assert loan["borrower_id"] == body["borrower_id"] and loan["product_id"] == body["product_id"]
    assert loan["branch_id"] == world.branches["A"] and loan["external_id"] == body["external_id"]
    assert loan["submitted_on"] == today.isoformat()
    assert loan["disbursement_date"] is None and loan["balances"]["total"] == "0.00"
    assert world.get("officer_a", r.headers["location"]).json() == loan

    r = act(world, loan["id"], "approve", {"note": "fine"})
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["status"] == "approved" and approved["approved_principal"] == "1200.00"
    assert approved["approved_on"] == today.isoformat() and approved["version"] > loan["version"]
    assert r.headers["etag"] == f'"{approved["version"]}"'

    r = act(world, loan["id"], "disburse", who="officer_a")
    assert r.status_code == 200, r.text
    active = r.json()
    assert active["status"] == "active" and active["allowed_actions"] == allowed_actions(LoanStatus.active)
    assert active["disbursement_date"] == today.isoformat() and active["disbursed_principal"] == "1200.00"
    assert active["balances"] == {"principal": "1200.00", "interest": "0.00", "fees": "0.00", "penalties": "0.00",
                                  "interest_in_advance": "0.00", "total": "1200.00", "credit": "0.00"}
    assert active["installment_amount"] == "106.62"  # 1200 at 1 %/month over 12: the textbook annuity
    assert active["next_due"] == {"date": add_months(today, 1).isoformat(), "amount": "106.62"}
    assert active["maturity_date"] is not None and active["days_past_due"] == 0
    assert get_loan(world, loan["id"], "auditor") == active


def test_schedule_exists_after_disbursement_and_its_principal_sums_to_the_amount(world: World) -> None:
    loan = disburse(world, approved_loan(world, principal="1000.00", term=6)["id"], amount="750.00")
    r = world.get("officer_a", f"{LOANS}/{loan['id']}/schedule")
    assert r.status_code == 200, r.text
    rows = r.json()["installments"]
    assert [row["number"] for row in rows] == list(range(1, 7))
    assert sum(Decimal(row["principal"]) for row in rows) == Decimal("750.00")
    assert all(row["status"] == "pending" and row["paid"]["principal"] == "0.00" for row in rows)
    due_dates = [row["due_date"] for row in rows]
    assert due_dates == sorted(due_dates) and due_dates[0] > loan["disbursement_date"]
    for row in rows:
        assert Decimal(row["total"]) == Decimal(row["principal"]) + Decimal(row["interest"])
    assert loan["maturity_date"] == due_dates[-1]


def test_schedule_before_disbursement_is_a_preview_of_the_approved_amount(world: World) -> None:
    loan = approve(world, submit_loan(world, principal="900.00", term=3)["id"], approved_principal="600.00")
    rows = world.get("officer_a", f"{LOANS}/{loan['id']}/schedule").json()["installments"]
    assert sum(Decimal(row["principal"]) for row in rows) == Decimal("600.00") and len(rows) == 3


# --- submit: product and limit validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "patch"),
    [
        ("principal", {"principal": "99.99"}),
        ("principal", {"principal": "10000.01"}),
        ("term", {"term": 2}),
        ("term", {"term": 37}),
        ("annual_rate_percent", {"annual_rate_percent": "4.99"}),
        ("annual_rate_percent", {"annual_rate_percent": "30.000001"}),
    ],
)
def test_submit_outside_the_products_limits_is_422_naming_the_field(
    world: World, field: str, patch: dict[str, Any]
) -> None:
    body = {**loan_body(world), **patch}
    problem = assert_problem(world.post("officer_a", LOANS, body), 422, field)
    assert "this product" in problem["detail"]


def test_every_limit_violation_is_reported_at_once(world: World) -> None:
    body = {**loan_body(world), "principal": "50", "term": 48, "annual_rate_percent": "40"}
    problem = assert_problem(world.post("officer_a", LOANS, body), 422)
    assert {e["field"] for e in problem["errors"]} == {"principal", "term", "annual_rate_percent"}


def test_submit_at_the_limits_and_with_a_custom_rate_is_accepted(world: World) -> None:
    low = submit_loan(world, principal="100", term=3, annual_rate_percent="5")
    assert (low["principal"], low["term"], low["annual_rate_percent"]) == ("100.00", 3, "5")
    high = submit_loan(world, principal="10000.00", term=36, annual_rate_percent="30.0")
    assert (high["principal"], high["term"], high["annual_rate_percent"]) == ("10000.00", 36, "30")


def test_term_defaults_only_when_the_product_has_a_single_term(world: World) -> None:
    fixed = make_product(world, min_term=6, max_term=6)
    loan = submit_loan(world, product=fixed, term=None)
    assert loan["term"] == 6 and loan["annual_rate_percent"] == "12"
    body = loan_body(world, term=None)
    assert "3-36" in assert_problem(world.post("officer_a", LOANS, body), 422, "term")["detail"]


@pytest.mark.parametrize(
    ("field", "patch"),
    [
        ("principal", {"principal": "abc"}),
        ("principal", {"principal": 1200.5}),
        ("principal", {"principal": "1e3"}),
        ("principal", {"principal": "1200.001"}),
        ("principal", {"principal": "-1200"}),
        ("principal", {"principal": "0"}),
        ("principal", {"principal": True}),
        ("term", {"term": 0}),
        ("term", {"term": "twelve"}),
        ("annual_rate_percent", {"annual_rate_percent": "12.0000001"}),
        ("annual_rate_percent", {"annual_rate_percent": 12.5}),
        ("product_id", {"product_id": "00000000-0000-7000-8000-000000000000"}),
        ("borrower_id", {"borrower_id": "00000000-0000-7000-8000-000000000000"}),
        ("expected_disbursement_date", {"expected_disbursement_date": "2000-01-01"}),
        ("expected_disbursement_date", {"expected_disbursement_date": "not a date"}),
        ("surprise", {"surprise": 1}),
    ],
)
def test_bad_submissions_are_422_naming_the_field(world: World, field: str, patch: dict[str, Any]) -> None:
    assert_problem(world.post("officer_a", LOANS, {**loan_body(world), **patch}), 422, field)


def test_missing_required_fields_are_422(world: World) -> None:
    problem = assert_problem(world.post("officer_a", LOANS, {}), 422)
    assert {"borrower_id", "product_id", "principal"} <= {e["field"] for e in problem["errors"]}


def test_external_id_is_unique_and_the_duplicate_names_the_existing_loan(world: World) -> None:
    external_id = unique("ext-")
    first = submit_loan(world, external_id=external_id)
    problem = assert_problem(world.post("officer_a", LOANS, loan_body(world, external_id=external_id)), 409)
    assert problem["field"] == "external_id" and problem["existing_id"] == first["id"]


# --- approve, reject, withdraw -----------------------------------------------------------------------------


def test_approve_a_lower_amount_and_disbursement_defaults_to_it(world: World) -> None:
    loan = submit_loan(world, principal="2000.00")
    approved = approve(world, loan["id"], approved_principal="1500.5")
    assert approved["approved_principal"] == "1500.50" and approved["principal"] == "1500.50"
    assert approved["requested_principal"] == "2000.00"
    active = disburse(world, loan["id"])
    assert active["disbursed_principal"] == active["balances"]["principal"] == "1500.50"


@pytest.mark.parametrize("amount", ["2000.01", "0", "-1", "1000.001", "abc"])
def test_approve_more_than_requested_or_a_bad_amount_is_422(world: World, amount: str) -> None:
    loan = submit_loan(world, principal="2000.00")
    assert_problem(act(world, loan["id"], "approve", {"approved_principal": amount}), 422, "approved_principal")
    assert get_loan(world, loan["id"])["status"] == "submitted"


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_reject_requires_a_reason(world: World, body: dict[str, Any]) -> None:
    loan = submit_loan(world)
    assert_problem(act(world, loan["id"], "reject", body), 422, "reason")


@pytest.mark.parametrize("start", ["submitted", "approved"])
def test_reject_and_withdraw_close_the_application(world: World, start: str) -> None:
    rejected = act(world, loan_in_status(world, start)["id"], "reject", {"reason": "income not verified"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["allowed_actions"] == []
    loan = loan_in_status(world, start)
    withdrawn = act(world, loan["id"], "withdraw", who="officer_a")  # the reason is optional
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["allowed_actions"] == []
    trail = world.get("auditor", f"{LOANS}/{loan['id']}/audit").json()["items"]
    assert trail[-1]["action"] == "loan.withdraw" and trail[-1]["after_status"] == "withdrawn"


# --- disburse ----------------------------------------------------------------------------------------------


def test_partial_disbursement(world: World) -> None:
    loan = approved_loan(world, principal="1200.00")
    active = disburse(world, loan["id"], amount="800")
    assert active["disbursed_principal"] == active["principal"] == active["balances"]["principal"] == "800.00"
    assert active["approved_principal"] == "1200.00"


def test_disbursement_date_defaults_to_the_business_date_and_may_be_given(world: World) -> None:
    today = business_date(world).isoformat()
    assert disburse(world, approved_loan(world)["id"])["disbursement_date"] == today
    assert disburse(world, approved_loan(world)["id"], date=today)["disbursement_date"] == today


def test_a_retried_disbursement_with_the_same_idempotency_key_replays_the_first_answer(world: World) -> None:
    loan = approved_loan(world)
    key = {"Idempotency-Key": unique("disb-")}
    first = world.post("manager", f"{LOANS}/{loan['id']}/disburse", {}, headers=key)
    assert first.status_code == 200, first.text
    again = world.post("manager", f"{LOANS}/{loan['id']}/disburse", {}, headers=key)
    assert again.status_code == 200, again.text
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert len(world.get("manager", f"{LOANS}/{loan['id']}/journal-entries").json()["items"]) == 1


@pytest.mark.parametrize(("action", "body"), [("approve", {"approved_principal": "99.99"}),
                                              ("disburse", {"amount": "0.01"})])
def test_approved_and_disbursed_amounts_stay_within_the_products_limits(
    world: World, action: str, body: dict[str, Any]
) -> None:
    loan = submit_loan(world, principal="1200.00") if action == "approve" else approved_loan(world, principal="1200.00")
    field = next(iter(body))
    assert "this product" in assert_problem(act(world, loan["id"], action, body), 422, field)["detail"]


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("date", {"date": "+1"}),
        ("date", {"date": "-1"}),
        ("amount", {"amount": "1200.01"}),
        ("amount", {"amount": "0"}),
        ("amount", {"amount": "-5"}),
        ("amount", {"amount": "10.001"}),
        ("date", {"date": "31/12/2020"}),
    ],
)
def test_bad_disbursements_are_422(world: World, field: str, body: dict[str, Any]) -> None:
    today = business_date(world)
    if body.get("date") in {"+1", "-1"}:
        body = {"date": (today + timedelta(days=int(body["date"]))).isoformat()}  # future / before the approval
    loan = approved_loan(world, principal="1200.00")
    assert_problem(act(world, loan["id"], "disburse", body), 422, field)
    after = get_loan(world, loan["id"])
    assert after["status"] == "approved" and after["version"] == loan["version"]


def test_first_payment_date_must_follow_the_disbursement(world: World) -> None:
    today = business_date(world)
    body = loan_body(world, first_payment_date=today.isoformat())
    assert_problem(world.post("officer_a", LOANS, body), 422, "first_payment_date")
    later = (today + timedelta(days=45)).isoformat()
    active = disburse(world, approved_loan(world, first_payment_date=later)["id"])
    rows = world.get("manager", f"{LOANS}/{active['id']}/schedule").json()["installments"]
    assert rows[0]["due_date"] == later


# --- audit trail ---------------------------------------------------------------------------------------------


def test_audit_trail_lists_each_action_with_the_statuses_and_the_user(world: World) -> None:
    loan = active_loan(world)
    trail = world.get("auditor", f"{LOANS}/{loan['id']}/audit").json()["items"]
    officer, manager = username(world, "officer_a"), username(world, "manager")
    assert [(r["action"], r["before_status"], r["after_status"], r["username"]) for r in trail] == [
        ("loan.submit", None, "submitted", officer),
        ("loan.approve", "submitted", "approved", manager),
        ("loan.disburse", "approved", "active", manager),
    ]
    assert all(r["at"] and r["request_id"] for r in trail)
    assert trail[0]["at"] <= trail[1]["at"] <= trail[2]["at"]


def test_audit_detail_shows_money_as_decimal_strings(world: World) -> None:
    loan = active_loan(world, principal="1200.00")
    trail = {r["action"]: r["detail"] for r in world.get("auditor", f"{LOANS}/{loan['id']}/audit").json()["items"]}
    assert trail["loan.approve"]["approved_principal"] == "1200.00"
    assert trail["loan.disburse"]["amount"] == "1200.00"


# --- branch scope and roles -----------------------------------------------------------------------------------


def _all_ids(world: World, who: str, url: str, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        page = world.get(who, url, params=query).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


ACTION_REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "approve": ("approve", {}),
    "reject": ("reject", {"reason": "test"}),
    "withdraw": ("withdraw", {}),
    "disburse": ("disburse", {}),
    "write_off": ("write-off", {"reason": "test"}),
    "refund": ("refund", {}),
    "undo_approval": ("undo-approval", {}),
    "undo_disbursal": ("undo-disbursal", {}),
}


def _attempt(world: World, who: str, loan_id: str, action: str, tx_id: str | None = None) -> Any:
    """Call the endpoint of a lifecycle action (LoanAction value) with a body that is valid for it."""
    if action == "repay":
        return pay(world, loan_id, "10.00", who=who)
    if action == "reverse":
        return world.post(who, f"{LOANS}/{loan_id}/transactions/{tx_id or unique('tx-')}/reverse",
                          {"reason": "test"})
    path, body = ACTION_REQUESTS[action]
    return world.post(who, f"{LOANS}/{loan_id}/{path}", body)


def test_officer_of_another_branch_cannot_see_or_touch_a_loan(world: World) -> None:
    loan = active_loan(world)
    payment = pay(world, loan["id"], "50.00")
    assert payment.status_code == 201, payment.text
    tx_id = payment.json()["transaction_id"]
    submitted = submit_loan(world)
    for url in ("", "/schedule", "/transactions", "/payoff", "/journal-entries", "/audit"):
        assert_problem(world.get("officer_b", f"{LOANS}/{loan['id']}{url}"), 404)
    for action in LoanAction:
        target = submitted["id"] if action in {"approve", "reject", "withdraw", "disburse"} else loan["id"]
        assert_problem(_attempt(world, "officer_b", target, action.value, tx_id), 404)
    assert loan["id"] not in _all_ids(world, "officer_b", LOANS)
    assert _all_ids(world, "officer_b", LOANS, branch_id=world.branches["A"]) == []
    assert _all_ids(world, "officer_b", LOANS, borrower_id=loan["borrower_id"]) == []
    assert get_loan(world, loan["id"])["version"] == get_loan(world, loan["id"], "auditor")["version"]
    assert get_loan(world, submitted["id"])["status"] == "submitted"
    # Submitting for another branch's borrower: the borrower simply does not exist for this officer.
    assert_problem(world.post("officer_b", LOANS, loan_body(world, branch="A")), 422, "borrower_id")


def test_branch_scope_on_borrowers(world: World) -> None:
    mine, theirs = make_borrower(world, "B"), make_borrower(world, "A")
    assert world.get("officer_b", f"{BORROWERS}/{mine['id']}").status_code == 200
    assert_problem(world.get("officer_b", f"{BORROWERS}/{theirs['id']}"), 404)
    visible = _all_ids(world, "officer_b", BORROWERS)
    assert mine["id"] in visible and theirs["id"] not in visible
    everyone = _all_ids(world, "auditor", BORROWERS)
    assert {mine["id"], theirs["id"]} <= set(everyone)


def test_lists_filter_and_scope_by_branch(world: World) -> None:
    a, b = submit_loan(world, branch="A"), submit_loan(world, branch="B")
    assert b["branch_id"] == world.branches["B"]
    officer_a, officer_b = _all_ids(world, "officer_a", LOANS), _all_ids(world, "officer_b", LOANS)
    assert a["id"] in officer_a and b["id"] not in officer_a
    assert b["id"] in officer_b and a["id"] not in officer_b
    for who in ("auditor", "manager", "admin"):
        assert {a["id"], b["id"]} <= set(_all_ids(world, who, LOANS))
    assert _all_ids(world, "manager", LOANS, borrower_id=a["borrower_id"]) == [a["id"]]
    by_branch = _all_ids(world, "auditor", LOANS, branch_id=world.branches["B"])
    assert b["id"] in by_branch and a["id"] not in by_branch
    submitted = _all_ids(world, "manager", LOANS, status="submitted")
    assert a["id"] in submitted
    assert a["id"] not in _all_ids(world, "manager", LOANS, status="active")
    page = world.get("manager", LOANS, params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]


def test_auditor_reads_every_branch_and_writes_nothing(world: World) -> None:
    b_loan = active_loan(world, branch="B")
    assert get_loan(world, b_loan["id"], "auditor")["branch_id"] == world.branches["B"]
    for url in ("/schedule", "/transactions", "/payoff", "/journal-entries", "/audit"):
        assert world.get("auditor", f"{LOANS}/{b_loan['id']}{url}").status_code == 200, url
    assert_problem(world.post("auditor", LOANS, loan_body(world, branch="B")), 403)
    submitted = submit_loan(world, branch="B")
    for action in LoanAction:
        target = submitted["id"] if action in {"approve", "reject", "withdraw", "disburse"} else b_loan["id"]
        assert_problem(_attempt(world, "auditor", target, action.value), 403)
    assert get_loan(world, b_loan["id"])["version"] == b_loan["version"]


def test_officers_submit_withdraw_and_disburse_but_do_not_approve(world: World) -> None:
    loan = submit_loan(world)
    assert_problem(act(world, loan["id"], "approve", who="officer_a"), 403)
    assert_problem(act(world, loan["id"], "reject", {"reason": "no"}, who="officer_a"), 403)
    approve(world, loan["id"])
    assert act(world, loan["id"], "disburse", who="officer_a").status_code == 200
    assert_problem(act(world, loan["id"], "write-off", {"reason": "no"}, who="officer_a"), 403)


def test_unauthenticated_is_401(world: World) -> None:
    assert_problem(world.client.get(LOANS), 401)
    assert_problem(world.client.post(LOANS, json=loan_body(world)), 401)


# --- the lifecycle table --------------------------------------------------------------------------------------

INVALID = [(s, a) for s in LoanStatus for a in LoanAction if (s, a) not in TRANSITIONS]
UNDISBURSED = {LoanStatus.submitted, LoanStatus.approved, LoanStatus.rejected, LoanStatus.withdrawn}


def _invalid_case(status: LoanStatus, action: LoanAction) -> Any:
    return pytest.param(status, action, id=f"{status.value}-{action.value}")


@pytest.fixture(scope="module")
def loans_by_status(world: World) -> dict[str, dict[str, Any]]:
    return {status: loan_in_status(world, status) for status in STATUSES}


def test_the_helpers_reach_every_status(loans_by_status: dict[str, dict[str, Any]]) -> None:
    assert set(loans_by_status) == set(LoanStatus)
    for status, loan in loans_by_status.items():
        assert loan["status"] == status and loan["allowed_actions"] == allowed_actions(LoanStatus(status))


def test_the_generated_cases_cover_the_table() -> None:
    assert len(INVALID) + len(TRANSITIONS) == len(LoanStatus) * len(LoanAction)
    assert {s for s, _ in INVALID} == set(LoanStatus)


@pytest.mark.parametrize(("status", "action"), [_invalid_case(s, a) for s, a in INVALID])
def test_every_invalid_transition_is_409_with_the_allowed_actions(
    world: World, loans_by_status: dict[str, dict[str, Any]], status: LoanStatus, action: LoanAction
) -> None:
    loan = loans_by_status[status.value]
    tx_id = None
    if status not in UNDISBURSED:
        tx_id = world.get("manager", f"{LOANS}/{loan['id']}/transactions").json()["items"][0]["id"]
    else:  # a real transaction, of another loan: the lifecycle refuses before anything else is looked at
        other = loans_by_status["active"]["id"]
        tx_id = world.get("manager", f"{LOANS}/{other}/transactions").json()["items"][0]["id"]
    problem = assert_problem(_attempt(world, "manager", loan["id"], action.value, tx_id), 409)
    assert problem["allowed_actions"] == allowed_actions(status)
    assert problem["type"].endswith("invalid-transition") or "transition" in problem["title"].lower()
    after = get_loan(world, loan["id"])
    assert (after["status"], after["version"]) == (status.value, loan["version"])


@pytest.mark.parametrize("status", ["submitted", "approved", "rejected", "withdrawn"])
def test_no_payoff_quote_before_disbursement(
    world: World, loans_by_status: dict[str, dict[str, Any]], status: str
) -> None:
    problem = assert_problem(world.get("manager", f"{LOANS}/{loans_by_status[status]['id']}/payoff"), 409)
    assert problem["allowed_actions"] == allowed_actions(LoanStatus(status))


# --- optimistic concurrency -----------------------------------------------------------------------------------


def test_a_stale_if_match_is_409_and_the_current_one_succeeds(world: World) -> None:
    loan = submit_loan(world)
    stale = str(loan["version"] - 1)
    problem = assert_problem(world.post("manager", f"{LOANS}/{loan['id']}/approve", {},
                                        headers={"If-Match": f'"{stale}"'}), 409)
    assert problem.get("current_version") == loan["version"]
    assert get_loan(world, loan["id"])["status"] == "submitted"
    r = world.post("manager", f"{LOANS}/{loan['id']}/approve", {}, headers={"If-Match": f'"{loan["version"]}"'})
    assert r.status_code == 200, r.text
    approved = r.json()
    old = world.post("manager", f"{LOANS}/{loan['id']}/disburse", {}, headers={"If-Match": str(loan["version"])})
    assert_problem(old, 409)
    fresh = world.post("manager", f"{LOANS}/{loan['id']}/disburse", {}, headers={"If-Match": str(approved["version"])})
    assert fresh.status_code == 200, fresh.text
    assert_problem(world.post("manager", f"{LOANS}/{loan['id']}/approve", {}, headers={"If-Match": "seven"}),
                   422, "If-Match")


# --- dry run ----------------------------------------------------------------------------------------------------


def test_dry_run_submit_writes_nothing(world: World, db: Database) -> None:
    body = loan_body(world, external_id=unique("dry-"))
    before = table_counts(db)
    r = world.post("officer_a", LOANS, body, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    assert table_counts(db) == before
    out = r.json()
    assert out["dry_run"] is True and out["loan"]["status"] == "submitted" and out["journal_entries"] == []
    assert "location" not in r.headers
    # The would-be loan's external id is still free.
    assert world.post("officer_a", LOANS, body).status_code == 201


def test_dry_run_approve_and_disburse_write_nothing_and_show_the_journal_lines(world: World, db: Database) -> None:
    loan = submit_loan(world, principal="1200.00")
    before = table_counts(db)
    r = world.post("manager", f"{LOANS}/{loan['id']}/approve", {"approved_principal": "1000"},
                   params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["loan"]["status"] == "approved" and r.json()["loan"]["approved_principal"] == "1000.00"
    assert table_counts(db) == before and get_loan(world, loan["id"]) == loan

    approved = approve(world, loan["id"], approved_principal="1000")
    before = table_counts(db)
    r = world.post("manager", f"{LOANS}/{loan['id']}/disburse", {"amount": "900"}, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert table_counts(db) == before and get_loan(world, loan["id"]) == approved
    assert out["loan"]["status"] == "active" and out["loan"]["disbursed_principal"] == "900.00"
    assert [sorted((ln["account_code"], ln["debit"], ln["credit"]) for ln in e["lines"])
            for e in out["journal_entries"]] == [[("1000", "0.00", "900.00"), ("1100", "900.00", "0.00")]]
    assert out["installments"] and sum(Decimal(i["principal"]) for i in out["installments"]) == Decimal("900.00")
    assert "etag" not in r.headers


def test_dry_run_still_validates(world: World, db: Database) -> None:
    loan, too_long = approved_loan(world, principal="1200.00"), {**loan_body(world), "term": 99}
    before = table_counts(db)
    assert_problem(world.post("manager", f"{LOANS}/{loan['id']}/disburse", {"amount": "5000"},
                              params={"dry_run": "true"}), 422, "amount")
    assert_problem(world.post("manager", f"{LOANS}/{loan['id']}/approve", {}, params={"dry_run": "true"}), 409)
    assert_problem(world.post("officer_a", LOANS, too_long, params={"dry_run": "true"}), 422, "term")
    assert table_counts(db) == before


def test_dry_run_money_actions_write_nothing_and_skip_idempotency_keys(world: World, db: Database) -> None:
    loan = active_loan(world, principal="1200.00")
    key = unique("key-")
    before = table_counts(db)
    r = world.post("manager", f"{LOANS}/{loan['id']}/payments", {"amount": "100.00"},
                   headers={"Idempotency-Key": key}, params={"dry_run": "true"})
    assert r.status_code == 200, r.text
    # paid on the disbursement day: installment 1 as scheduled, interest 1200.00 * 1 % = 12.00 first
    assert (r.json()["allocation"]["interest"], r.json()["allocation"]["principal"]) == ("12.00", "88.00")
    w = world.post("manager", f"{LOANS}/{loan['id']}/write-off", {"reason": "test"}, params={"dry_run": "true"})
    assert w.status_code == 200 and w.json()["loan"]["status"] == "written_off", w.text
    assert table_counts(db) == before and get_loan(world, loan["id"]) == loan
    real = pay(world, loan["id"], "100.00", key=key)
    assert real.status_code == 201 and "idempotent-replayed" not in real.headers, real.text
