"""Authentication and authorization matrix."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import event
from sqlalchemy import text as sql

from app.database import Database
from app.identity import service as identity
from app.identity.access import Role
from tests.conftest import PASSWORD, TEST_SECRET, World, assert_problem, login, unique

ME = "/api/v1/users/me"


def _token(sub: str, secret: str = TEST_SECRET, alg: str = "HS256", **claims: object) -> str:
    now = datetime.now(UTC)
    payload = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=5), "typ": "access", **claims}
    return jwt.encode(payload, secret, algorithm=alg)


def test_sign_in_returns_bearer_token(world: World) -> None:
    r = world.get("admin", ME)
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"id", "username", "role", "branch_id", "is_active"}
    assert body["role"] == "admin"


def test_no_token_is_401(world: World) -> None:
    r = world.client.get(ME)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("case", ["expired", "other_key", "alg_none", "garbage", "no_exp", "unknown_user"])
def test_bad_tokens_are_401(world: World, case: str) -> None:
    user_id = world.users["manager"]
    now = datetime.now(UTC)
    if case == "expired":
        token = _token(user_id, exp=now - timedelta(minutes=1), iat=now - timedelta(minutes=40))
    elif case == "other_key":
        token = _token(user_id, secret="another-key-" + "k" * 60)
    elif case == "alg_none":
        token = jwt.encode({"sub": user_id, "iat": now, "exp": now + timedelta(minutes=5), "typ": "access"},
                           None, algorithm="none")
    elif case == "garbage":
        token = "not.a.jwt"
    elif case == "no_exp":
        token = jwt.encode({"sub": user_id, "iat": now, "typ": "access"}, TEST_SECRET, algorithm="HS256")
    else:
        token = _token("00000000-0000-7000-8000-000000000000")
    r = world.client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 401)


def test_a_valid_forged_claim_set_for_a_real_user_is_accepted_only_with_our_key(world: World) -> None:
    token = _token(world.users["manager"])
    assert world.client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_disabled_user_token_is_rejected(world: World, db: Database) -> None:
    name = unique("gone")
    user, _ = identity.ensure_user(db, name, PASSWORD, Role.manager)
    token = login(world.client, name)
    assert world.client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = world.patch("admin", f"/api/v1/users/{user.id}", {"is_active": False})
    assert r.status_code == 200, r.text
    assert_problem(world.client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)
    # and again, now from this worker's read of the deactivated user (PRINCIPAL_CACHE_SECONDS)
    assert_problem(world.client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)
    r = world.client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert_problem(r, 401)


def test_unknown_user_and_wrong_password_get_the_same_answer(world: World) -> None:
    a = world.client.post("/api/v1/auth/token", data={"username": unique("nobody"), "password": "whatever-123"})
    b = world.client.post("/api/v1/auth/token", data={"username": "admin" + world.users["admin"][5:],
                                                      "password": "wrong-password"})
    pa, pb = assert_problem(a, 401), assert_problem(b, 401)
    assert pa["detail"] == pb["detail"] == "incorrect username or password"


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "status"),
    [
        ("manager", "post", "/api/v1/branches", {"code": "X1", "name": "x"}, 403),
        ("officer_a", "post", "/api/v1/branches", {"code": "X2", "name": "x"}, 403),
        ("auditor", "post", "/api/v1/branches", {"code": "X3", "name": "x"}, 403),
        ("manager", "get", "/api/v1/users", None, 403),
        ("auditor", "get", "/api/v1/users", None, 403),
        ("officer_a", "post", "/api/v1/users", {"username": "zzz111", "password": PASSWORD, "role": "admin"}, 403),
    ],
)
def test_wrong_role_is_403(world: World, who: str, method: str, path: str, body: object, status: int) -> None:
    r = world.post(who, path, body) if method == "post" else world.get(who, path)
    assert_problem(r, status)


def test_officer_sees_only_own_branch(world: World) -> None:
    r = world.get("officer_a", "/api/v1/branches")
    assert r.status_code == 200
    ids = {b["id"] for b in r.json()["items"]}
    assert ids == {world.branches["A"]}
    assert world.get("officer_a", f"/api/v1/branches/{world.branches['A']}").status_code == 200
    assert_problem(world.get("officer_a", f"/api/v1/branches/{world.branches['B']}"), 404)
    assert world.get("auditor", f"/api/v1/branches/{world.branches['B']}").status_code == 200


def test_password_hash_is_argon2_and_never_returned(world: World, db: Database) -> None:
    name = unique("hashcheck")
    r = world.post("admin", "/api/v1/users", {"username": name, "password": PASSWORD, "role": "auditor"})
    assert r.status_code == 201
    assert r.headers["location"].endswith(r.json()["id"])
    texts = [r.text, world.get("admin", "/api/v1/users?limit=500").text, world.get("admin", ME).text,
             world.get("admin", f"/api/v1/users/{r.json()['id']}").text]
    for text in texts:
        assert "password" not in text and "$argon2" not in text
    from app.identity import repository

    with db.session(writer=False) as s:
        user = repository.get_user_by_username(s, name)
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")


def test_duplicate_username_is_409_with_existing_id(world: World) -> None:
    name = unique("dup")
    first = world.post("admin", "/api/v1/users", {"username": name, "password": PASSWORD, "role": "auditor"})
    again = world.post("admin", "/api/v1/users", {"username": name.upper(), "password": PASSWORD, "role": "auditor"})
    body = assert_problem(again, 409)
    assert body["field"] == "username" and body["existing_id"] == first.json()["id"]


def test_officer_needs_a_branch_and_branch_must_exist(world: World) -> None:
    r = world.post("admin", "/api/v1/users", {"username": unique("o"), "password": PASSWORD, "role": "officer"})
    assert_problem(r, 422, "branch_id")
    r = world.post("admin", "/api/v1/users", {"username": unique("o"), "password": PASSWORD, "role": "officer",
                                              "branch_id": "nope"})
    assert_problem(r, 422, "branch_id")


def test_user_validation(world: World) -> None:
    assert_problem(world.post("admin", "/api/v1/users", {"username": unique("s"), "password": "short", "role": "admin"}),
                   422, "password")
    assert_problem(world.post("admin", "/api/v1/users", {"username": unique("r"), "password": PASSWORD, "role": "root"}),
                   422, "role")


def test_pagination_walks_every_item_once(world: World) -> None:
    for _ in range(3):
        world.post("admin", "/api/v1/branches", {"code": unique("PG"), "name": "page"})
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/v1/branches?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = world.get("admin", url).json()
        seen += [b["id"] for b in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 5
    assert_problem(world.get("admin", "/api/v1/branches?limit=501"), 422, "limit")
    assert_problem(world.get("admin", "/api/v1/branches?cursor=%%%"), 422, "cursor")


def _reads_token_holder(statement: str) -> bool:
    """The bearer token's user lookup (identity.repository._TOKEN_HOLDER), not GET /users/me's read of the user."""
    return "users.credentials_version" in statement and "password_hash" not in statement


def _deactivate_behind_the_apps_back(db: Database, user_id: str) -> None:
    """As another worker (or an operator in SQL) would: this process's cache is not told."""
    with db.transaction() as session:
        session.execute(sql("UPDATE users SET is_active = :f WHERE id = :id"), {"f": False, "id": user_id})


def test_a_worker_reuses_a_token_holder_for_principal_cache_seconds_only(world: World, db: Database) -> None:
    """Each worker reads a token's user at most once per PRINCIPAL_CACHE_SECONDS (default 1 s): a change another
    worker makes is seen once that read is older; one this worker makes (PATCH /users) is seen at once (above)."""
    name = unique("cached")
    user, _ = identity.ensure_user(db, name, PASSWORD, Role.manager)
    headers = {"Authorization": f"Bearer {login(world.client, name)}"}
    settings = world.client.app.state.settings  # type: ignore[attr-defined]
    assert settings.principal_cache_seconds == 1.0
    assert world.client.get(ME, headers=headers).status_code == 200
    _deactivate_behind_the_apps_back(db, user.id)
    original = settings.principal_cache_seconds
    try:
        settings.principal_cache_seconds = 3600.0
        assert world.client.get(ME, headers=headers).status_code == 200  # the read of a moment ago
        settings.principal_cache_seconds = 0.0  # that read is now older than the setting
        assert_problem(world.client.get(ME, headers=headers), 401)
    finally:
        settings.principal_cache_seconds = original


def test_with_principal_cache_seconds_0_every_request_reads_the_user(db: Database) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.conftest import make_settings

    settings = make_settings(db.engine.url.render_as_string(hide_password=False), principal_cache_seconds=0)
    with TestClient(create_app(settings)) as client:
        name = unique("uncached")
        user, _ = identity.ensure_user(db, name, PASSWORD, Role.manager)
        headers = {"Authorization": f"Bearer {login(client, name)}"}
        statements: list[str] = []
        listener = lambda *args: statements.append(str(args[2]))  # noqa: E731 - (conn, cursor, statement, ...)
        event.listen(client.app.state.db.engine, "before_cursor_execute", listener)  # type: ignore[attr-defined]
        try:
            assert client.get(ME, headers=headers).status_code == 200
            assert client.get(ME, headers=headers).status_code == 200
        finally:
            event.remove(client.app.state.db.engine, "before_cursor_execute", listener)  # type: ignore[attr-defined]
        assert sum(_reads_token_holder(s) for s in statements) == 2
        _deactivate_behind_the_apps_back(db, user.id)
        assert_problem(client.get(ME, headers=headers), 401)


def test_a_cached_token_holder_costs_no_statement(world: World) -> None:
    headers = world.h("manager")
    assert world.client.get(ME, headers=headers).status_code == 200
    statements: list[str] = []
    listener = lambda *args: statements.append(str(args[2]))  # noqa: E731
    engine = world.client.app.state.db.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert world.client.get(ME, headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert not any(_reads_token_holder(s) for s in statements), statements
