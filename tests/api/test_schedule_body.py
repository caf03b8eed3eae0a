"""The schedule endpoint serialises plain data for speed; its body must still be exactly ScheduleOut."""

from app.loans.schemas import InstallmentOut, ScheduleOut
from tests.api.helpers_lending import active_loan, pay
from tests.conftest import World


def test_the_schedule_body_is_exactly_the_documented_schedule(world: World) -> None:
    loan = active_loan(world, principal="1200.00", term=12)
    assert pay(world, loan["id"], "150.00").status_code == 201
    r = world.get("manager", f"/api/v1/loans/{loan['id']}/schedule")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    parsed = ScheduleOut.model_validate(body)
    assert parsed.model_dump(mode="json") == body  # no field missing, none extra, same formats
    assert set(body["installments"][0]) == set(InstallmentOut.model_fields)
    first, second = parsed.installments[:2]
    assert (first.status, first.outstanding, first.paid.interest) == ("paid", "0.00", first.interest)
    assert second.status == "pending" and second.total == second.outstanding
    assert {i.status for i in parsed.installments} <= {"paid", "pending", "partially_paid", "overdue"}
