"""Borrowers end to end: create/read/update/list, branch scope, roles, uniqueness, validation."""

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from app.borrowers import repository as borrower_repo
from app.business_calendar import repository as calendar_repo
from app.core.logging import configure_logging
from app.database import Database
from tests.conftest import World, assert_problem, unique

URL = "/api/v1/borrowers"


def _new(world: World, who: str = "officer_a", branch: str = "A", **fields: Any) -> dict[str, Any]:
    body = {"branch_id": world.branches[branch], "first_name": "Ada", "last_name": unique("Lovelace"), **fields}
    r = world.post(who, URL, body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _national_id() -> str:
    return unique("NI").upper()


def _business_date(db: Database) -> date:
    with db.session(writer=False) as session:
        return calendar_repo.business_date(session)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def test_create_answers_201_with_location_and_normalised_fields(world: World) -> None:
    national_id, external_id = _national_id(), unique("crm-")
    body = {
        "branch_id": world.branches["A"], "first_name": "  Ada ", "last_name": " Lovelace  ",
        "date_of_birth": "1990-02-03", "national_id": f" {national_id[:4]}-{national_id[4:]} ".lower(),
        "email": "Ada.Lovelace@Example.COM", "phone": "+1 (555) 123-4567", "external_id": external_id,
    }
    r = world.post("officer_a", URL, body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"{URL}/{created['id']}"
    assert created["first_name"] == "Ada" and created["last_name"] == "Lovelace"
    assert created["national_id"] == national_id
    assert created["phone"] == "+15551234567"
    assert created["email"] == "Ada.Lovelace@example.com"
    assert created["external_id"] == external_id
    assert created["date_of_birth"] == "1990-02-03"
    assert created["branch_id"] == world.branches["A"]
    assert created["created_at"] and created["updated_at"]
    assert world.get("officer_a", r.headers["location"]).json() == created


def test_minimal_borrower_has_null_optional_fields(world: World) -> None:
    created = _new(world)
    for field in ("date_of_birth", "national_id", "email", "phone", "external_id"):
        assert created[field] is None


def test_patch_changes_only_the_fields_sent_and_null_clears(world: World) -> None:
    created = _new(world, email="old@example.com", phone="5551234567", external_id=unique("x-"))
    r = world.patch("officer_a", f"{URL}/{created['id']}", {"email": None, "phone": "555-765-4321",
                                                           "last_name": "Byron"})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["email"] is None and updated["phone"] == "5557654321" and updated["last_name"] == "Byron"
    assert updated["first_name"] == created["first_name"] and updated["external_id"] == created["external_id"]
    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(created["updated_at"])
    unchanged = world.patch("officer_a", f"{URL}/{created['id']}", {}).json()
    assert unchanged == updated


def test_other_branch_is_not_found_for_officers(world: World) -> None:
    created = _new(world, "officer_a", "A")
    path = f"{URL}/{created['id']}"
    assert_problem(world.get("officer_b", path), 404)
    assert_problem(world.patch("officer_b", path, {"first_name": "Eve"}), 404)
    assert_problem(world.patch("officer_b", path, {"branch_id": world.branches["B"]}), 404)
    for who in ("officer_a", "manager", "admin", "auditor"):
        assert world.get(who, path).status_code == 200, who
    # Creating in another branch: that branch is simply not found.
    r = world.post("officer_b", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B"})
    assert_problem(r, 404)


def test_list_never_shows_another_branch_to_an_officer(world: World) -> None:
    last_name = unique("Scoped")
    a = _new(world, "officer_a", "A", last_name=last_name)
    b = _new(world, "officer_b", "B", last_name=last_name)

    def ids(who: str, query: str = "") -> set[str]:
        r = world.get(who, f"{URL}?q={last_name}{query}")
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert ids("officer_a") == {a["id"]}
    assert ids("officer_b") == {b["id"]}
    assert ids("officer_b", f"&branch_id={world.branches['A']}") == set()
    assert ids("manager") == ids("auditor") == ids("admin") == {a["id"], b["id"]}
    assert ids("manager", f"&branch_id={world.branches['B']}") == {b["id"]}
    everything = world.get("officer_b", f"{URL}?limit=500").json()["items"]
    assert {item["branch_id"] for item in everything} == {world.branches["B"]}


def test_auditor_reads_but_never_writes(world: World) -> None:
    created = _new(world)
    r = world.post("auditor", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B"})
    assert_problem(r, 403)
    assert_problem(world.patch("auditor", f"{URL}/{created['id']}", {"first_name": "Eve"}), 403)


def test_unknown_borrower_and_unknown_branch_are_404(world: World) -> None:
    assert_problem(world.get("admin", f"{URL}/00000000-0000-7000-8000-000000000000"), 404)
    assert_problem(world.patch("admin", f"{URL}/nope", {"first_name": "X"}), 404)
    assert_problem(world.post("admin", URL, {"branch_id": "nope", "first_name": "A", "last_name": "B"}), 404)


def test_moving_a_borrower_between_branches_is_for_managers(world: World) -> None:
    created = _new(world, "officer_a", "A")
    path = f"{URL}/{created['id']}"
    assert_problem(world.patch("officer_a", path, {"branch_id": world.branches["B"]}), 403)
    same = world.patch("officer_a", path, {"branch_id": world.branches["A"], "first_name": "Grace"})
    assert same.status_code == 200 and same.json()["first_name"] == "Grace"
    assert_problem(world.patch("manager", path, {"branch_id": "no-such-branch"}), 404)
    moved = world.patch("manager", path, {"branch_id": world.branches["B"]})
    assert moved.status_code == 200 and moved.json()["branch_id"] == world.branches["B"]
    assert_problem(world.get("officer_a", path), 404)
    assert world.get("officer_b", path).status_code == 200


def test_duplicate_national_id_is_409_with_the_existing_id(world: World) -> None:
    national_id = _national_id()
    first = _new(world, national_id=national_id)
    for spelling in (national_id, national_id.lower(), f"{national_id[:3]} {national_id[3:]}"):
        r = world.post("officer_a", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B",
                                          "national_id": spelling})
        body = assert_problem(r, 409)
        assert body["field"] == "national_id" and body["existing_id"] == first["id"]
        assert national_id not in r.text.upper()
    # National IDs are unique across branches: a person is one borrower.
    r = world.post("officer_b", URL, {"branch_id": world.branches["B"], "first_name": "A", "last_name": "B",
                                      "national_id": national_id})
    assert assert_problem(r, 409)["field"] == "national_id"


def test_duplicate_external_id_is_409_with_the_existing_id(world: World) -> None:
    external_id = unique("ext-")
    first = _new(world, external_id=external_id)
    r = world.post("manager", URL, {"branch_id": world.branches["B"], "first_name": "A", "last_name": "B",
                                    "external_id": external_id})
    body = assert_problem(r, 409)
    assert body["field"] == "external_id" and body["existing_id"] == first["id"]


def test_patch_into_a_duplicate_is_409_and_keeping_your_own_value_is_fine(world: World) -> None:
    first = _new(world, national_id=_national_id(), external_id=unique("e-"))
    second = _new(world, national_id=_national_id(), external_id=unique("e-"))
    path = f"{URL}/{second['id']}"
    body = assert_problem(world.patch("officer_a", path, {"national_id": first["national_id"]}), 409)
    assert body["field"] == "national_id" and body["existing_id"] == first["id"]
    body = assert_problem(world.patch("officer_a", path, {"external_id": first["external_id"]}), 409)
    assert body["field"] == "external_id" and body["existing_id"] == first["id"]
    same = world.patch("officer_a", path, {"national_id": second["national_id"], "external_id": second["external_id"]})
    assert same.status_code == 200, same.text
    assert world.get("officer_a", path).json()["national_id"] == second["national_id"]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_a_unique_value_taken_by_a_concurrent_writer_is_still_409(
    world: World, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """The check-then-insert race: the pre-check sees nothing, the unique index refuses, the answer is the same."""
    taken = _new(world, external_id=unique("race-"))
    target = _new(world) if method == "patch" else None
    real = borrower_repo.find_duplicate
    calls: list[int] = []

    def blind_first_time(*args: Any) -> tuple[str, str] | None:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)

    monkeypatch.setattr(borrower_repo, "find_duplicate", blind_first_time)
    if target is None:
        r = world.post("officer_a", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B",
                                          "external_id": taken["external_id"]})
    else:
        r = world.patch("officer_a", f"{URL}/{target['id']}", {"external_id": taken["external_id"]})
    body = assert_problem(r, 409)
    assert body["field"] == "external_id" and body["existing_id"] == taken["id"]
    assert len(calls) == 2


def test_date_of_birth_is_checked_against_the_business_date(world: World, db: Database) -> None:
    today = _business_date(db)
    adult = _years_before(today, 18)
    assert _new(world, date_of_birth=adult.isoformat())["date_of_birth"] == adult.isoformat()
    cases = {
        (today + timedelta(days=1)).isoformat(): "after the business date",
        (adult + timedelta(days=1)).isoformat(): "at least 18 years",
        today.isoformat(): "at least 18 years",
        "1850-01-01": "within 130 years",
    }
    for dob, message in cases.items():
        r = world.post("officer_a", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B",
                                          "date_of_birth": dob})
        body = assert_problem(r, 422, "date_of_birth")
        assert message in body["detail"], body
    created = _new(world)
    r = world.patch("officer_a", f"{URL}/{created['id']}", {"date_of_birth": (today + timedelta(days=1)).isoformat()})
    assert_problem(r, 422, "date_of_birth")


BASE = {"first_name": "Ada", "last_name": "Lovelace"}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"first_name": "   "}, "first_name"),
        ({"last_name": "x" * 101}, "last_name"),
        ({"last_name": "Null\x00Byte"}, "last_name"),
        ({"first_name": "Line\nBreak"}, "first_name"),
        ({"first_name": None}, "first_name"),
        ({"last_name": 42}, "last_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": ""}, "email"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 555 CALL NOW"}, "phone"),
        ({"phone": "1234567890123456"}, "phone"),
        ({"phone": "++15551234567"}, "phone"),
        ({"national_id": "AB!"}, "national_id"),
        ({"national_id": "ÅÄÖ12345"}, "national_id"),
        ({"national_id": "X" * 33}, "national_id"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
        ({"date_of_birth": "1990-02-30"}, "date_of_birth"),
        ({"date_of_birth": "1990-02-03T00:00:00"}, "date_of_birth"),
        ({"date_of_birth": 631152000}, "date_of_birth"),
        ({"date_of_birth": "03/02/1990"}, "date_of_birth"),
        ({"nickname": "Ada"}, "nickname"),
    ],
)
def test_invalid_input_is_422_naming_the_field(world: World, patch: dict[str, Any], field: str) -> None:
    body = {"branch_id": world.branches["A"], **BASE, **patch}
    assert_problem(world.post("officer_a", URL, body), 422, field)


def test_missing_required_fields_are_422(world: World) -> None:
    for field in ("branch_id", "first_name", "last_name"):
        body = {"branch_id": world.branches["A"], **BASE}
        del body[field]
        assert_problem(world.post("officer_a", URL, body), 422, field)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"first_name": None}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"branch_id": None}, "branch_id"),
        ({"last_name": ""}, "last_name"),
        ({"email": "nope"}, "email"),
        ({"phone": "abc"}, "phone"),
        ({"id": "x"}, "id"),
    ],
)
def test_invalid_patch_is_422_naming_the_field(world: World, patch: dict[str, Any], field: str) -> None:
    created = _new(world)
    assert_problem(world.patch("officer_a", f"{URL}/{created['id']}", patch), 422, field)


def test_search_by_name_national_id_and_external_id(world: World) -> None:
    last_name = unique("Hopper")
    national_id, external_id = _national_id(), unique("Ext-")
    grace = _new(world, first_name="Grace", last_name=last_name, national_id=national_id, external_id=external_id)
    other = _new(world, first_name="Alan", last_name=unique("Turing"))

    def found(q: str) -> set[str]:
        r = world.client.get(URL, params={"q": q}, headers=world.h("officer_a"))
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    for q in (last_name, last_name.upper(), last_name[:-2].lower(), f"grace {last_name.lower()}",
              f"{last_name}  Grace", national_id, national_id.lower(), f"{national_id[:3]}-{national_id[3:]}",
              external_id, external_id.lower()):
        assert grace["id"] in found(q), q
        assert other["id"] not in found(q), q
    assert found("%") == set() and found("_") == set()
    assert grace["id"] not in found(last_name[2:])


def test_list_pages_walk_every_match_once(world: World) -> None:
    last_name = unique("Paged")
    created = {_new(world, last_name=last_name)["id"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": last_name, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(URL, params=params, headers=world.h("officer_a")).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(created)
    assert_problem(world.get("officer_a", f"{URL}?limit=0"), 422, "limit")
    assert_problem(world.get("officer_a", f"{URL}?cursor=bogus"), 422, "cursor")


def test_national_ids_are_never_logged(world: World, capfd: pytest.CaptureFixture[str]) -> None:
    national_id = _national_id()
    configure_logging("DEBUG", "json")
    try:
        created = _new(world, national_id=national_id)
        world.post("officer_a", URL, {"branch_id": world.branches["A"], "first_name": "A", "last_name": "B",
                                      "national_id": national_id})
        world.patch("officer_a", f"{URL}/{created['id']}", {"national_id": national_id + "9"})
        world.get("officer_a", f"{URL}?q={national_id}")
        out, err = capfd.readouterr()
    finally:
        configure_logging("WARNING", "console")
    logged = out + err
    assert "borrower_created" in logged and created["id"] in logged
    assert national_id not in logged.upper()
    for line in err.splitlines():
        if line.startswith("{"):
            json.loads(line)


def test_nul_bytes_never_reach_the_database(world: World) -> None:
    """PostgreSQL refuses NUL in text: a NUL anywhere in the URL is a bad request, in a body field bad input."""
    assert_problem(world.get("admin", f"{URL}/a%00b"), 400)
    assert_problem(world.patch("admin", f"{URL}/a%00b", {"first_name": "X"}), 400)
    assert_problem(world.client.get(URL, params={"q": "a\x00"}, headers=world.h("admin")), 400)
    assert_problem(world.client.get(URL, params={"branch_id": "\x00"}, headers=world.h("admin")), 400)
    r = world.post("admin", URL, {"branch_id": "a\x00", "first_name": "A", "last_name": "B"})
    assert_problem(r, 422, "branch_id")
