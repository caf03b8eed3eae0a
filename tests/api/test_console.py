"""The operations console over HTTP (server-rendered HTML): sign-in/out and session expiry, CSRF refusal,
branch scope, the dry run before every action, and a resubmitted payment posting once. The browser tests
(tests/browser) drive the same pages in Chromium."""

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.console import session as sessions
from app.core.config import Settings
from tests.api.helpers_lending import active_loan, approved_loan, get_loan, make_borrower, submit_loan
from tests.conftest import PASSWORD, World, fresh_world, make_settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A browser-like client: its own cookie jar, the CSRF token read from the last page."""

    def __init__(self, client: TestClient) -> None:
        self.client = TestClient(client.app)
        self.csrf = ""

    def get(self, path: str, **kw: Any) -> Any:
        r = self.client.get(path, **kw)
        found = CSRF.search(r.text)
        if found:
            self.csrf = found.group(1)
        return r

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        r = self.client.post(path, data=body, **kw)
        found = CSRF.search(r.text)
        if found:
            self.csrf = found.group(1)
        return r

    def login(self, username: str, password: str = PASSWORD) -> Any:
        self.get("/console/login")
        return self.post("/console/login", {"username": username, "password": password, "next": "/console"})


def username(world: World, who: str) -> str:
    if who == "admin":
        return world.users["admin"]
    name: str = world.get(who, "/api/v1/users/me").json()["username"]
    return name


@pytest.fixture
def console(world: World) -> Iterator[Any]:
    def signed_in(who: str) -> Console:
        c = Console(world.client)
        r = c.login(username(world, who))
        assert r.status_code == 200 and "Dashboard" in r.text, r.text[:500]
        return c

    yield signed_in


def hidden_fields(html: str) -> dict[str, str]:
    """The form's hidden inputs (version, idempotency key, ...) except the CSRF token, which Console adds."""
    found = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    found.pop("csrf_token", None)
    return found


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


# --- sessions ---------------------------------------------------------------------------------------------------


def test_pages_need_a_session_and_sign_in_sets_a_strict_httponly_cookie(world: World) -> None:
    c = Console(world.client)
    r = c.get("/console/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=/console/dashboard")
    r = c.get("/console/login")
    assert r.status_code == 200 and '<label for="f-username">' in r.text
    r = c.post(
        "/console/login",
        {"username": username(world, "manager"), "password": PASSWORD, "next": "/console/dashboard"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/dashboard"
    cookie = r.headers["set-cookie"]
    assert (
        "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/console" in cookie
    )
    assert "Secure" not in cookie  # development; production below
    page = c.get("/console/dashboard")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert "<main" in page.text and "<nav" in page.text and 'name="viewport"' in page.text


def test_wrong_password_is_one_message_and_no_session(world: World) -> None:
    c = Console(world.client)
    c.get("/console/login")
    r = c.post("/console/login", {"username": username(world, "manager"), "password": "wrong-password-1"})
    assert r.status_code == 401 and "incorrect username or password" in r.text
    assert c.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_open_redirects_are_refused(world: World) -> None:
    c = Console(world.client)
    c.get("/console/login")
    r = c.post(
        "/console/login",
        {"username": username(world, "manager"), "password": PASSWORD, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/console/dashboard"


def test_logout_needs_the_token_and_ends_the_session(console: Any) -> None:
    c = console("manager")
    assert c.post("/console/logout", csrf=False).status_code == 403
    r = c.post("/console/logout", follow_redirects=False)
    assert r.status_code == 303 and 'console_session=""' in r.headers["set-cookie"]
    assert c.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_session_cookie_is_signed_and_expires() -> None:
    settings = make_settings("sqlite://", access_token_expire_minutes=1)
    s = sessions.new_session("user-1", settings)
    value = sessions.encode(s, settings)
    assert sessions.decode(value, settings) == s
    assert sessions.decode(value, settings, now=s.expires_at) is None  # expired
    _payload, sig = value.split(".")
    forged = sessions.encode(sessions.ConsoleSession("admin", s.issued_at, s.expires_at, s.csrf), settings)
    assert sessions.decode(forged.split(".")[0] + "." + sig, settings) is None
    other = make_settings("sqlite://", secret_key="another-secret-" + "x" * 64)
    assert sessions.decode(value, other) is None
    assert not sessions.csrf_ok(s, "") and not sessions.csrf_ok(s, "x") and sessions.csrf_ok(s, s.csrf)


def test_expired_cookie_means_sign_in_again(world: World) -> None:
    settings: Settings = world.client.app.state.settings  # type: ignore[attr-defined]
    c = Console(world.client)
    user_id = world.users["manager"]
    old = sessions.ConsoleSession(user_id, int(time.time()) - 7200, int(time.time()) - 1, "t")
    c.client.cookies.set(sessions.COOKIE_NAME, sessions.encode(old, settings), path="/console")
    assert c.get("/console/dashboard", follow_redirects=False).status_code == 303


def test_production_cookie_is_secure() -> None:
    from fastapi import Response

    settings = make_settings("sqlite://", env="production", secret_key="p" * 80)
    response = Response()
    sessions.write(response, sessions.new_session("u", settings), settings)
    assert "Secure" in response.headers["set-cookie"]


def test_disabled_user_is_signed_out(world: World) -> None:
    # A user of its own: disabling revokes the user's tokens for good (issue 17 item 7), so not a shared one.
    name = uuid.uuid4().hex[:12]
    r = world.post("admin", "/api/v1/users", {"username": name, "password": PASSWORD, "role": "auditor"})
    assert r.status_code == 201, r.text
    c = Console(world.client)
    assert c.login(name).status_code == 200
    assert c.get("/console/dashboard").status_code == 200
    r = world.patch("admin", f"/api/v1/users/{r.json()['id']}", {"is_active": False})
    assert r.status_code == 200, r.text
    assert c.get("/console/dashboard", follow_redirects=False).status_code == 303


# --- CSRF and scope -----------------------------------------------------------------------------------------------


def test_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(world: World, console: Any) -> None:
    loan = submit_loan(world)
    c = console("manager")
    for data in ({"reason": "x", "version": "1"}, {"reason": "x", "version": "1", "csrf_token": "forged"}):
        r = c.post(f"/console/loans/{loan['id']}/reject", data, csrf=False)
        assert r.status_code == 403 and "security token" in r.text
    assert get_loan(world, loan["id"])["status"] == "submitted"


def test_officer_cannot_see_another_branchs_loan_or_act_on_it(world: World, console: Any) -> None:
    loan = active_loan(world, branch="B")
    c = console("officer_a")
    for path in (f"/console/loans/{loan['id']}", f"/console/loans/{loan['id']}/payment"):
        r = c.get(path)
        assert r.status_code == 404 and "loan not found" in r.text, path
    c.get("/console/dashboard")
    r = c.post(f"/console/loans/{loan['id']}/payment/preview", {"amount": "10.00", "idempotency_key": "k1"})
    assert r.status_code == 404
    found = c.get(f"/console/search?q={loan['id']}")
    assert found.status_code == 200 and f"/console/loans/{loan['id']}" not in found.text
    assert console("officer_b").get(f"/console/loans/{loan['id']}").status_code == 200


def test_officer_may_not_approve_but_sees_it_as_a_page(world: World, console: Any) -> None:
    loan = submit_loan(world)
    r = console("officer_a").get(f"/console/loans/{loan['id']}/approve")
    assert r.status_code == 403 and "<h1>Not allowed</h1>" in r.text


# --- actions: dry run, confirm, idempotency -------------------------------------------------------------------


def test_payment_preview_shows_allocation_and_journal_lines_and_posts_nothing(world: World, console: Any) -> None:
    loan = active_loan(world)
    c = console("officer_a")
    form = c.get(f"/console/loans/{loan['id']}/payment")
    key = hidden(form.text, "idempotency_key")
    r = c.post(
        f"/console/loans/{loan['id']}/payment/preview",
        {"amount": "100.00", "idempotency_key": key, "version": hidden(form.text, "version")},
    )
    assert r.status_code == 200, r.text
    assert "This will post" in r.text and 'id="journal-preview"' in r.text
    assert re.search(r"<td>\d+</td><td class=\"num\">100.00</td>", r.text) or "100.00" in r.text
    assert hidden(r.text, "idempotency_key") == key  # the confirm form carries the same key
    txs = world.get("manager", f"/api/v1/loans/{loan['id']}/transactions").json()["items"]
    assert [t["type"] for t in txs] == ["disbursement"]


def test_payment_resubmitted_posts_once(world: World, console: Any) -> None:
    loan = active_loan(world)
    c = console("officer_a")
    form = c.get(f"/console/loans/{loan['id']}/payment")
    data = {"amount": "150.00", "idempotency_key": hidden(form.text, "idempotency_key"), "version": "x"}
    first = c.post(f"/console/loans/{loan['id']}/payment", data, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("?done=payment")
    second = c.post(f"/console/loans/{loan['id']}/payment", data, follow_redirects=False)
    assert second.status_code == 303 and second.headers["location"].endswith("?done=replayed")
    assert "nothing was posted twice" in c.get(second.headers["location"]).text
    txs = world.get("manager", f"/api/v1/loans/{loan['id']}/transactions").json()["items"]
    assert [t["type"] for t in txs].count("repayment") == 1
    # the same key with another amount is a different request: refused, next to the field
    r = c.post(f"/console/loans/{loan['id']}/payment", {**data, "amount": "151.00"})
    assert r.status_code == 422 and "different request" in r.text


def test_bad_input_is_shown_next_to_the_field_never_a_500(world: World, console: Any) -> None:
    loan = active_loan(world)
    c = console("officer_a")
    form = c.get(f"/console/loans/{loan['id']}/payment")
    key = hidden(form.text, "idempotency_key")
    for amount, message in (("abc", "not a plain decimal"), ("1.001", "at most 2 decimals"), ("0", "greater than 0")):
        r = c.post(f"/console/loans/{loan['id']}/payment/preview", {"amount": amount, "idempotency_key": key})
        assert r.status_code == 422, (amount, r.text[:300])
        assert 'id="e-amount"' in r.text and message in r.text, amount
    r = c.post(
        f"/console/loans/{loan['id']}/payment/preview", {"amount": "10", "date": "2999-01-01", "idempotency_key": key}
    )
    assert r.status_code == 422 and 'id="e-date"' in r.text


def test_invalid_transition_shows_allowed_actions(world: World, console: Any) -> None:
    loan = approved_loan(world)
    c = console("manager")
    c.get("/console/dashboard")
    r = c.post(f"/console/loans/{loan['id']}/approve/preview", {})
    assert r.status_code == 409 and "cannot approve" in r.text


def test_application_to_closure_in_the_console(world: World, console: Any) -> None:
    borrower = make_borrower(world)
    product = world.get("admin", "/api/v1/products").json()["items"]
    c = console("manager")
    page = c.get(f"/console/loans/new?borrower_id={borrower['id']}")
    assert page.status_code == 200
    app_data = {"borrower_id": borrower["id"], "product_id": product[0]["id"], "principal": "1200.00", "term": "12"}
    fragment = c.get("/console/loans/new/schedule", params=app_data)
    assert "APR" in fragment.text and '<th scope="row">12</th>' in fragment.text
    r = c.post("/console/loans/new/preview", app_data)
    assert r.status_code == 200 and "This will submit" in r.text and "APR" in r.text
    r = c.post("/console/loans/new", app_data, follow_redirects=False)
    assert r.status_code == 303
    loan_url = r.headers["location"].split("?")[0]
    loan_id = loan_url.rsplit("/", 1)[1]
    for slug in ("approve", "disburse"):
        form = c.get(f"{loan_url}/{slug}")
        r = c.post(f"{loan_url}/{slug}/preview", hidden_fields(form.text))
        assert r.status_code == 200 and "This will post" in r.text, r.text[:400]
        if slug == "disburse":
            assert "Journal lines that will be posted" in r.text and "1200.00" in r.text
        r = c.post(f"{loan_url}/{slug}", hidden_fields(form.text), follow_redirects=False)
        assert r.status_code == 303, r.text[:400]
    page = c.get(loan_url)
    assert "active" in page.text and 'class="row-pending"' in page.text
    payoff = re.search(r"<dt>Payoff on [0-9-]+</dt><dd>([0-9.]+) USD</dd>", page.text)
    assert payoff, page.text
    form = c.get(f"{loan_url}/payment")
    r = c.post(
        f"{loan_url}/payment",
        {"amount": payoff.group(1), "idempotency_key": hidden(form.text, "idempotency_key")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert get_loan(world, loan_id)["status"] == "closed"
    page = c.get(r.headers["location"])
    assert "Payment posted." in page.text and "row-paid" in page.text


def test_reverse_is_for_managers_and_asks_for_a_reason(world: World, console: Any) -> None:
    loan = active_loan(world)
    officer = console("officer_a")
    form = officer.get(f"/console/loans/{loan['id']}/payment")
    officer.post(
        f"/console/loans/{loan['id']}/payment",
        {"amount": "50.00", "idempotency_key": hidden(form.text, "idempotency_key")},
    )
    tx = next(
        t
        for t in world.get("manager", f"/api/v1/loans/{loan['id']}/transactions").json()["items"]
        if t["type"] == "repayment"
    )
    assert (
        "Reverse"
        not in officer.get(f"/console/loans/{loan['id']}").text.split('id="transactions"')[1].split("</table>")[0]
    )
    assert officer.get(f"/console/loans/{loan['id']}/reverse?transaction_id={tx['id']}").status_code == 403
    manager = console("manager")
    page = manager.get(f"/console/loans/{loan['id']}")
    assert f"reverse?transaction_id={tx['id']}" in page.text
    form = manager.get(f"/console/loans/{loan['id']}/reverse?transaction_id={tx['id']}")
    data = {"transaction_id": tx["id"], "idempotency_key": hidden(form.text, "idempotency_key")}
    r = manager.post(f"/console/loans/{loan['id']}/reverse/preview", data)
    assert r.status_code == 422 and 'id="e-reason"' in r.text
    r = manager.post(f"/console/loans/{loan['id']}/reverse/preview", {**data, "reason": "bounced"})
    assert r.status_code == 200 and "This will post" in r.text
    r = manager.post(f"/console/loans/{loan['id']}/reverse", {**data, "reason": "bounced"}, follow_redirects=False)
    assert r.status_code == 303
    txs = world.get("manager", f"/api/v1/loans/{loan['id']}/transactions").json()["items"]
    assert any(t["type"] == "reversal" and t["reversal_of"] == tx["id"] for t in txs)


def test_borrower_create_and_search(world: World, console: Any) -> None:
    c = console("officer_a")
    c.get("/console/borrowers/new")
    national_id = "ID" + uuid.uuid4().hex[:10].upper()
    r = c.post(
        "/console/borrowers/new",
        {"branch_id": world.branches["A"], "first_name": "Ada", "last_name": "Lovelace", "national_id": national_id},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/console/borrowers/new",
        {"branch_id": world.branches["A"], "first_name": "Ada", "last_name": "Again", "national_id": national_id},
    )
    assert r.status_code == 422 and 'id="e-national_id"' in r.text
    r = c.post(
        "/console/borrowers/new",
        {"branch_id": world.branches["A"], "first_name": "", "last_name": "X", "email": "not-an-email"},
    )
    assert r.status_code == 422 and 'id="e-first_name"' in r.text and 'id="e-email"' in r.text
    found = c.get(f"/console/search?q={national_id}")
    assert "Lovelace" in found.text


def test_dashboard_operations_and_csv_reports() -> None:
    with fresh_world() as (world, _db):
        active_loan(world)
        c = Console(world.client)
        c.login(username(world, "manager"))
        page = c.get("/console/dashboard")
        assert page.status_code == 200 and "<svg" in page.text and "PAR 30" in page.text and "never run" in page.text
        ops = c.get("/console/operations")
        today = hidden(ops.text, "business_date")
        r = c.post("/console/operations/close-of-business", {"business_date": today})
        assert r.status_code == 200 and 'id="cob-result"' in r.text
        assert hidden(r.text, "business_date") != today
        stale = c.post("/console/operations/close-of-business", {"business_date": today})
        assert stale.status_code == 409  # never closes a day the user did not see
        assert " ms" in c.get("/console/dashboard").text
        for name, header in (("aging", "bucket,loans,principal"), ("delinquent", "loan_id"), ("collections", "date")):
            r = c.get(f"/console/reports/{name}.csv")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), name
            assert r.text.startswith(header), name
        officer = Console(world.client)
        officer.login(username(world, "officer_a"))
        assert officer.get("/console/reports/aging.csv").status_code == 403
        assert "Loans in your branch" in officer.get("/console/dashboard").text


def test_setup_pages_for_admin(console: Any) -> None:
    c = console("admin")
    assert c.get("/console/setup").status_code == 200
    code = "C" + uuid.uuid4().hex[:6]
    r = c.post("/console/setup/branch", {"code": code, "name": "Console branch"}, follow_redirects=False)
    assert r.status_code == 303
    r = c.post("/console/setup/branch", {"code": code, "name": "Again"})
    assert r.status_code == 422 and 'id="e-code"' in r.text
    r = c.post(
        "/console/setup/product",
        {
            "code": "P" + code,
            "name": "Console product",
            "currency": "USD",
            "min_principal": "100",
            "max_principal": "50",
            "min_term": "3",
            "max_term": "12",
            "annual_rate_percent": "10",
            "frequency": "monthly",
            "amortization": "equal_installments",
            "interest_method": "declining_balance",
            "day_count": "30/360",
        },
    )
    assert r.status_code == 422 and re.search(r'id="e-(min|max)_principal"', r.text), r.text
    assert console("manager").get("/console/setup").status_code == 403
