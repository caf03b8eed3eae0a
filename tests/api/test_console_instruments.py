"""The console's servicing-instrument forms (charge, waiver, goodwill credit, chargeback) on both legs: the same
form -> dry run ("This will post ...") -> confirm flow as payments; waivers, credits and chargebacks only for
managers; a resubmitted confirmation posts once."""

from typing import Any

from tests.api import test_console
from tests.api.helpers_lending import active_loan, pay
from tests.api.test_console import hidden
from tests.conftest import World

console = test_console.console  # the signed-in browser-like client fixture


def _types(world: World, loan_id: str) -> list[str]:
    return [t["type"] for t in world.get("manager", f"/api/v1/loans/{loan_id}/transactions").json()["items"]]


def _confirm(c: Any, loan_id: str, slug: str, fields: dict[str, str]) -> Any:
    form = c.get(f"/console/loans/{loan_id}/{slug}")
    assert form.status_code == 200, form.text[:300]
    data = {**fields, "idempotency_key": hidden(form.text, "idempotency_key"), "version": hidden(form.text, "version")}
    preview = c.post(f"/console/loans/{loan_id}/{slug}/preview", data)
    assert preview.status_code == 200 and "This will post" in preview.text, preview.text[:2000]
    done = c.post(f"/console/loans/{loan_id}/{slug}", data, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith(f"?done={slug}"), done.text[:500]
    again = c.post(f"/console/loans/{loan_id}/{slug}", data, follow_redirects=False)
    assert again.headers["location"].endswith("?done=replayed")  # a resubmitted confirmation posts once
    return preview


def test_an_officer_charges_a_fee_but_sees_no_waiver_credit_or_chargeback(world: World, console: Any) -> None:
    loan = active_loan(world)
    officer = console("officer_a")
    page = officer.get(f"/console/loans/{loan['id']}").text
    assert f"/console/loans/{loan['id']}/charge\"" in page
    for slug in ("waiver", "credit", "chargeback"):
        assert f"/console/loans/{loan['id']}/{slug}\"" not in page
        assert officer.get(f"/console/loans/{loan['id']}/{slug}").status_code == 403
    preview = _confirm(officer, loan["id"], "charge", {"name": "Statement copy", "amount": "12.50"})
    assert "1210" in preview.text and "4100" in preview.text  # the journal lines of the dry run
    assert _types(world, loan["id"]).count("charge") == 1
    # bad input is shown beside the field, never a server error
    form = officer.get(f"/console/loans/{loan['id']}/charge")
    r = officer.post(f"/console/loans/{loan['id']}/charge/preview",
                     {"name": "x", "amount": "abc", "idempotency_key": hidden(form.text, "idempotency_key")})
    assert r.status_code == 422 and 'id="e-amount"' in r.text


def test_a_manager_waives_credits_and_charges_back(world: World, console: Any) -> None:
    loan = active_loan(world)
    manager = console("manager")
    _confirm(manager, loan["id"], "charge", {"name": "Courier", "amount": "10.00"})
    preview = _confirm(manager, loan["id"], "waiver", {"bucket": "fees", "amount": "4.00", "reason": "disputed"})
    assert "1210" in preview.text
    _confirm(manager, loan["id"], "credit", {"amount": "6.00", "reason": "apology"})
    paid = pay(world, loan["id"], "50.00").json()
    page = manager.get(f"/console/loans/{loan['id']}").text
    assert f"chargeback?transaction_id={paid['transaction_id']}" in page
    _confirm(manager, loan["id"], "chargeback", {"transaction_id": paid["transaction_id"], "amount": "50.00",
                                                 "reason": "card dispute"})
    assert {"charge", "waiver", "goodwill_credit", "chargeback"} <= set(_types(world, loan["id"]))
    # over-waiving is refused beside the amount
    form = manager.get(f"/console/loans/{loan['id']}/waiver")
    r = manager.post(f"/console/loans/{loan['id']}/waiver/preview",
                     {"bucket": "fees", "amount": "100.00", "reason": "x",
                      "idempotency_key": hidden(form.text, "idempotency_key")})
    assert r.status_code == 422 and 'id="e-amount"' in r.text
