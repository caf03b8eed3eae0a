"""Test fixtures. `TEST_DATABASE=sqlite|postgresql` picks the leg (make test runs both). The PostgreSQL leg
uses the server on 127.0.0.1:5432 with a throwaway database per run; it skips only when the server is
unreachable outside CI (under CI=true that is a failure)."""

import os

# Importing app.main builds the module-level app from the environment: give it a real key, so the loud
# development-secret warning (issue 17 item 6) is not printed by every test process.
os.environ.setdefault("SECRET_KEY", "test-import-secret-" + "i" * 64)

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.database import Database, init_db
from app.identity import service as identity
from app.identity.access import Role
from app.main import create_app

LEG = os.environ.get("TEST_DATABASE", "sqlite")
PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_SECRET = "test-secret-" + "s" * 64
PASSWORD = "Test-password-123"
ROOT_DIR = Path(__file__).resolve().parent.parent


def pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def create_pg_database(prefix: str = "loans_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def require_postgres() -> None:
    if not pg_reachable():
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true but {PG_ADMIN_DSN} is unreachable")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN}; PostgreSQL leg skipped (outside CI)")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if LEG == "postgresql":
        require_postgres()
        name = create_pg_database()
        try:
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        path: Path = tmp_path_factory.mktemp("db") / "loans.db"
        yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    init_db(database_url)
    return database_url


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": TEST_SECRET,
        "env": "development",
        "rate_limit_per_minute": 1_000_000,
        "user_rate_limit_per_minute": 1_000_000,
        "login_failures_per_minute": 1_000,
        "log_level": "WARNING",
        "log_format": "console",
        "redis_url": None,
        "database_read_url": None,
        "sentry_dsn": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return make_settings(migrated_url)


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    """A small lender for a test: two branches and a signed-in user per role (officer in each branch)."""

    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def post(self, who: str, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self.h(who, **kw.pop("headers", {})), **kw)

    def patch(self, who: str, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(path, json=json, headers=self.h(who, **kw.pop("headers", {})), **kw)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.fixture(scope="session")
def world(client: TestClient, db: Database) -> World:
    return build_world(client, db)


def build_world(client: TestClient, db: Database) -> World:
    w = World(client)
    admin_name = unique("admin")
    identity.ensure_user(db, admin_name, PASSWORD, Role.admin)
    w.tokens["admin"] = login(client, admin_name)
    w.users["admin"] = admin_name
    for code in ("A", "B"):
        r = client.post("/api/v1/branches", json={"code": unique(f"BR{code}"), "name": f"Branch {code}"},
                        headers=w.h("admin"))
        assert r.status_code == 201, r.text
        w.branches[code] = r.json()["id"]
    for name, role, branch in (("manager", "manager", "A"), ("officer_a", "officer", "A"),
                               ("officer_b", "officer", "B"), ("auditor", "auditor", "A")):
        username = unique(name.replace("_", ""))
        r = client.post("/api/v1/users", json={"username": username, "password": PASSWORD, "role": role,
                                               "branch_id": w.branches[branch]}, headers=w.h("admin"))
        assert r.status_code == 201, r.text
        w.users[name] = r.json()["id"]
        w.tokens[name] = login(client, username)
    return w


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert any(f == field or f.startswith(field + ".") or f.endswith("." + field) for f in fields), body
    return body


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, migrated database of the current leg, dropped afterwards (for tests that move the business
    date or count every row)."""
    if LEG == "postgresql":
        require_postgres()
        name = create_pg_database("loans_fresh")
        try:
            init_db(pg_url(name))
            yield pg_url(name)
        finally:
            drop_pg_database(name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/fresh.db"
            init_db(url)
            yield url


@contextmanager
def fresh_world(**settings_overrides: Any) -> Iterator[tuple[World, Database]]:
    """A lender on its own fresh database: app, client, users per role, two branches."""
    with fresh_database() as url:
        database = Database(url)
        try:
            with TestClient(create_app(make_settings(url, **settings_overrides))) as c:
                yield build_world(c, database), database
        finally:
            database.dispose()
