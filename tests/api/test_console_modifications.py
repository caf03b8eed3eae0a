# ruff: noqa: F811  (the `console` fixture is imported from test_console)
"""The console's modification pages (issue 13): a loan's request form with its preview beside today's schedule,
and the managers' queue with approve/reject — the same services and maker-checker rules as the API."""

import re
from typing import Any

from tests.api.helpers_lending import LOANS, active_loan
from tests.api.test_console import console  # noqa: F401  (the signed-in browser fixture)
from tests.conftest import World


def test_request_with_preview_then_a_manager_approves_from_the_queue(world: World, console: Any) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    officer = console("officer_a")
    page = officer.get(f"/console/loans/{loan['id']}")
    assert 'id="modify-link"' in page.text
    form = officer.get(f"/console/loans/{loan['id']}/modifications/new")
    assert form.status_code == 200 and 'id="schedule-now"' in form.text and 'id="schedule-after"' not in form.text
    body = {"type": "reschedule", "new_term": "18"}
    preview = officer.post(f"/console/loans/{loan['id']}/modifications/new", {**body, "intent": "preview"})
    assert preview.status_code == 200, preview.text[:2000]
    # the preview stands beside today's schedule: 12 installments now, 18 after; nothing stored yet
    assert 'id="schedule-now"' in preview.text and 'id="schedule-after"' in preview.text
    assert preview.text.count("<tr class=\"row-") == 12 + 18
    assert world.get("manager", f"{LOANS}/{loan['id']}/modifications").json()["items"] == []
    bad = officer.post(f"/console/loans/{loan['id']}/modifications/new", {"type": "rate_change", "intent": "preview"})
    assert bad.status_code == 422 and "the new nominal annual rate" in bad.text
    stored = officer.post(f"/console/loans/{loan['id']}/modifications/new", {**body, "intent": "request"})
    assert stored.status_code == 200  # redirected back to the form, which lists the request
    assert 'id="modification-requests"' in stored.text and "pending" in stored.text
    # officers have no queue; the manager's queue shows the request and approves it
    assert officer.get("/console/modifications").status_code == 403
    manager = console("manager")
    queue = manager.get("/console/modifications")
    mods = world.get("manager", f"{LOANS}/{loan['id']}/modifications").json()["items"]
    assert len(mods) == 1 and f'id="m-{mods[0]["id"]}"' in queue.text
    done = manager.post(f"/console/loans/{loan['id']}/modifications/{mods[0]['id']}/decide", {"decision": "approve"})
    assert done.status_code == 200 and f'id="m-{mods[0]["id"]}"' not in done.text
    assert len(world.get("manager", f"{LOANS}/{loan['id']}/schedule").json()["installments"]) == 18
    assert world.get("manager", f"{LOANS}/{loan['id']}").json()["term"] == 18
    # a second decision is refused and shown on the queue page, not as a server error
    again = manager.post(f"/console/loans/{loan['id']}/modifications/{mods[0]['id']}/decide", {"decision": "reject",
                                                                                                  "reason": "late"})
    assert again.status_code == 409


def test_the_requester_cannot_approve_their_own_request_in_the_console(world: World, console: Any) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    manager = console("manager")
    manager.get(f"/console/loans/{loan['id']}/modifications/new")
    r = manager.post(f"/console/loans/{loan['id']}/modifications/new",
                     {"type": "payment_holiday", "installments": "1", "interest": "capitalize", "intent": "request"})
    assert r.status_code == 200
    mid = world.get("manager", f"{LOANS}/{loan['id']}/modifications").json()["items"][0]["id"]
    manager.get("/console/modifications")
    refused = manager.post(f"/console/loans/{loan['id']}/modifications/{mid}/decide", {"decision": "approve"})
    assert refused.status_code == 403 and "requester" in refused.text
    assert world.get("manager", f"{LOANS}/{loan['id']}/modifications").json()["items"][0]["status"] == "pending"


def test_undo_disbursal_from_the_console_with_its_dry_run(world: World, console: Any) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    manager = console("manager")
    page = manager.get(f"/console/loans/{loan['id']}")
    assert f'href="/console/loans/{loan["id"]}/undo-disbursal"' in page.text
    form = manager.get(f"/console/loans/{loan['id']}/undo-disbursal")
    assert form.status_code == 200
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert version
    preview = manager.post(f"/console/loans/{loan['id']}/undo-disbursal/preview", {"version": version.group(1)})
    assert preview.status_code == 200, preview.text[:1000]
    assert world.get("manager", f"{LOANS}/{loan['id']}").json()["status"] == "active"  # the dry run wrote nothing
    done = manager.post(f"/console/loans/{loan['id']}/undo-disbursal", {"version": version.group(1)})
    assert done.status_code == 200 and "Disbursal undone" in done.text
    assert world.get("manager", f"{LOANS}/{loan['id']}").json()["status"] == "approved"
    officer = console("officer_a")
    assert '/undo-approval"' not in officer.get(f"/console/loans/{loan['id']}").text
