"""The console in a real browser: the lifecycle from application to payment, double-click safety, reversal by a
manager, branch scope, CSRF, close of business, keyboard and 360 px. Screenshots land in artifacts/ (the dashboard
one becomes docs/console-dashboard.png, the README's picture, with UPDATE_README_SCREENSHOT=1). The tests share one lender and run in file order."""

import os
import re
import shutil
from datetime import date, timedelta
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, ROOT, Lender, screenshot

pytestmark = pytest.mark.browser

state: dict[str, Any] = {}


def _confirm(page: Any, button: str) -> None:
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("This will post").wait_for()
    page.get_by_role("button", name=re.compile(f"^Confirm: {button}")).click()
    page.wait_for_url(re.compile(r"/console/loans/[^/]+\?done="))


def _repayments(lender: Lender, loan_id: str) -> list[dict[str, Any]]:
    items = lender.api("GET", f"/api/v1/loans/{loan_id}/transactions")["items"]
    return [t for t in items if t["type"] == "repayment"]


def test_officer_takes_an_application_to_disbursement_and_a_payment(sign_in: Any, lender: Lender) -> None:
    officer = sign_in("officer_a")
    officer.get_by_role("link", name="New borrower").click()
    officer.get_by_label("Branch").select_option(lender.branches["A"])
    officer.get_by_label("First name").fill("Grace")
    officer.get_by_label("Last name").fill("Hopper")
    officer.get_by_label("National ID").fill("GH-1906-12-09")
    officer.get_by_role("button", name="Create borrower").click()
    officer.get_by_text("Borrower created.").wait_for()
    officer.get_by_role("link", name="New application").click()
    officer.get_by_label("Product").select_option(lender.product_id)
    officer.get_by_label("Principal").fill("2400.00")
    officer.get_by_label("Term (installments)").fill("12")
    # the live preview (console.js) prices the schedule and APR while the form is filled in
    officer.locator("#schedule-preview table").wait_for()
    assert officer.locator("#schedule-preview tbody tr").count() == 12
    officer.get_by_role("button", name="Preview application").click()
    officer.get_by_text("This will submit").wait_for()
    officer.get_by_role("button", name="Confirm: submit application").click()
    officer.get_by_text("Application submitted.").wait_for()
    loan_url = officer.url.split("?")[0]
    state["loan_url"] = loan_url
    state["loan_id"] = loan_url.rsplit("/", 1)[1]
    assert officer.get_by_role("link", name="Approve").count() == 0  # a manager's action

    manager = sign_in("manager")
    manager.goto(loan_url)
    manager.get_by_role("link", name="Approve").click()
    _confirm(manager, "Approve")
    manager.get_by_text("Loan approved.").wait_for()

    officer.goto(loan_url)
    officer.get_by_role("link", name="Disburse").click()
    officer.get_by_role("button", name="Preview").click()
    officer.get_by_text("This will post").wait_for()
    assert "2400.00" in officer.locator("#journal-preview").inner_text()
    officer.get_by_role("button", name="Confirm: Disburse").click()
    officer.get_by_text("Loan disbursed.").wait_for()
    assert officer.locator("#schedule tbody tr.row-pending").count() == 12

    next_due = officer.locator("#next-due").inner_text().split(": ")[1]
    schedule_before = officer.locator("#schedule").inner_text()
    officer.get_by_role("link", name="Record a payment").click()
    officer.get_by_label("Amount").fill(next_due)
    officer.get_by_role("button", name="Preview").click()
    officer.get_by_text("This will post").wait_for()
    assert officer.locator("#allocation").is_visible()
    officer.get_by_role("button", name="Confirm: Post payment").click()
    officer.get_by_text("Payment posted.").wait_for()
    assert officer.locator("#transactions").get_by_text("repayment").count() == 1
    # paid on the disbursement day, nothing has accrued: it all prepays principal, and the schedule is re-projected
    assert officer.locator("#schedule").inner_text() != schedule_before
    assert officer.locator("#schedule tbody tr.row-paid, #schedule tbody tr.row-partially_paid").count() >= 1 or (
        officer.locator("#schedule tbody tr").count() < 12
    )
    screenshot(officer, "console-loan.png")


def test_double_click_on_pay_posts_one_payment(sign_in: Any, lender: Lender) -> None:
    loan_url, loan_id = state["loan_url"], state["loan_id"]
    before = len(_repayments(lender, loan_id))
    officer = sign_in("officer_a")
    officer.goto(f"{loan_url}/payment")
    officer.get_by_label("Amount").fill("25.00")
    officer.get_by_role("button", name="Preview").click()
    officer.get_by_text("This will post").wait_for()
    form = {
        name: officer.locator(f'form[data-once] input[name="{name}"]').get_attribute("value")
        for name in ("csrf_token", "idempotency_key", "amount", "version")
    }
    officer.get_by_role("button", name="Confirm: Post payment").dblclick()
    officer.wait_for_url(re.compile(r"\?done="))
    # and a plain resubmission of the same confirmation (no script involved): it replays
    for _ in range(2):
        r = officer.request.post(f"{loan_url}/payment", form=form, max_redirects=0)
        assert r.status == 303 and r.headers["location"].endswith("done=replayed"), r.status
    assert len(_repayments(lender, loan_id)) == before + 1


def test_manager_reverses_the_payment_with_a_reason(sign_in: Any, lender: Lender) -> None:
    loan_url, loan_id = state["loan_url"], state["loan_id"]
    officer = sign_in("officer_a")
    officer.goto(loan_url)
    assert officer.locator("#transactions").get_by_role("link", name=re.compile("Reverse")).count() == 0
    manager = sign_in("manager")
    manager.goto(loan_url)
    manager.locator("#transactions").get_by_role("link", name=re.compile("Reverse")).first.click()
    manager.get_by_role("button", name="Preview").click()
    assert manager.locator("#e-reason").is_visible() or manager.locator("#f-reason").evaluate(
        "el => !el.validity.valid"
    )
    manager.locator("#f-reason").fill("cheque bounced")
    _confirm(manager, "Reverse")
    manager.get_by_text("Transaction reversed.").wait_for()
    reversed_rows = [t for t in lender.api("GET", f"/api/v1/loans/{loan_id}/transactions")["items"] if t["reversed"]]
    assert len(reversed_rows) == 1
    assert manager.locator("#transactions tr.reversed").count() == 1


def test_an_officer_cannot_see_another_branchs_loan(sign_in: Any) -> None:
    other = sign_in("officer_b")
    response = other.goto(state["loan_url"])
    assert response.status == 404
    assert other.get_by_role("heading", name="Not found").is_visible()
    other.goto(f"/console/search?q={state['loan_id']}")
    assert other.get_by_role("link", name=re.compile(state["loan_id"][:8])).count() == 0


def test_a_form_post_without_the_csrf_token_is_refused(sign_in: Any, lender: Lender) -> None:
    manager = sign_in("manager")
    manager.goto(state["loan_url"])
    count = len(lender.api("GET", f"/api/v1/loans/{state['loan_id']}/transactions")["items"])
    # a same-origin form without the token: the cookie goes along, the token is what refuses it
    with manager.expect_navigation():
        manager.evaluate(
            """(url) => { const f = document.createElement('form'); f.method = 'post'; f.action = url;
                 const i = document.createElement('input'); i.name = 'reason'; i.value = 'forged'; f.append(i);
                 document.body.append(f); f.submit(); }""",
            f"{state['loan_url']}/write-off",
        )
    assert manager.get_by_role("heading", name="Form refused").is_visible()
    assert len(lender.api("GET", f"/api/v1/loans/{state['loan_id']}/transactions")["items"]) == count


def test_keyboard_and_small_screens(sign_in: Any) -> None:
    page = sign_in("officer_a", width=360)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.goto(state["loan_url"])
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the loan page scrolls sideways at 360 px by {overflow}px"
    for field in page.locator("main input:not([type=hidden]), main select, main textarea").all():
        assert field.evaluate("el => el.labels && el.labels.length > 0"), field.evaluate("el => el.outerHTML")
    screenshot(page, "console-loan-360.png")
    # Issue 17 item 15: the borrower page (long names, e-mail, its loans table) must not scroll sideways at 390 px.
    page = sign_in("officer_a", width=390)
    page.goto(state["loan_url"])
    page.locator("main a[href^='/console/borrowers/']").first.click()
    page.wait_for_url(re.compile(r"/console/borrowers/"))
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the borrower page scrolls sideways at 390 px by {overflow}px"


def test_manager_closes_the_day_and_the_dashboard_shows_the_book(sign_in: Any, lender: Lender) -> None:
    # A small book so the charts have something to draw: a few more loans, two and a half months of business days.
    borrower = lender.api(
        "POST", "/api/v1/borrowers", json={"branch_id": lender.branches["B"], "first_name": "Alan", "last_name": "Kay"}
    )
    for principal in ("1500.00", "3000.00", "800.00", "5000.00"):
        loan = lender.api(
            "POST",
            "/api/v1/loans",
            json={"borrower_id": borrower["id"], "product_id": lender.product_id, "principal": principal, "term": 12},
        )
        lender.api("POST", f"/api/v1/loans/{loan['id']}/approve", json={})
        lender.api("POST", f"/api/v1/loans/{loan['id']}/disburse", json={}, headers={"Idempotency-Key": loan["id"]})
        state.setdefault("book", []).append(loan["id"])
    today = date.fromisoformat(lender.api("GET", "/api/v1/operations/business-date")["business_date"])
    for step, loan_id in zip((10, 25, 40, 55), state["book"], strict=True):
        lender.api("POST", "/api/v1/operations/close-of-business", json={"business_date": str(today + timedelta(step))})
        lender.api(
            "POST",
            f"/api/v1/loans/{loan_id}/payments",
            json={"amount": "120.00"},
            headers={"Idempotency-Key": f"{loan_id}-{step}"},
        )
    lender.api("POST", "/api/v1/operations/close-of-business", json={"business_date": str(today + timedelta(75))})

    manager = sign_in("manager")
    manager.get_by_role("link", name="Operations", exact=True).click()
    business_date = manager.locator("#business-date").inner_text()
    manager.get_by_role("button", name=f"Close business day {business_date}").click()
    manager.locator("#cob-result").wait_for()
    assert business_date in manager.locator("#cob-result").inner_text()
    assert manager.locator("#business-date").inner_text() != business_date
    with manager.expect_download() as download:
        manager.get_by_role("link", name="Aging buckets (CSV)").click()
    assert download.value.path().read_text().startswith("bucket,loans,principal")
    with manager.expect_download() as download:
        manager.get_by_role("link", name="Delinquent loans (CSV)").click()
    assert download.value.path().read_text().startswith("loan_id,")

    manager.get_by_role("link", name="Dashboard", exact=True).click()
    assert manager.locator("svg.chart").count() == 2
    assert manager.get_by_text("PAR 30", exact=True).first.is_visible()
    assert "ms" in manager.get_by_text("Last close of business").locator("..").inner_text()
    shot = screenshot(manager, "console-dashboard.png")
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":  # refresh the README's picture on purpose only
        shutil.copyfile(shot, ROOT / "docs" / "console-dashboard.png")
    assert (ARTIFACTS / "console-loan.png").exists()
