"""Health, metrics and the problem+json shape of every kind of error."""

from typing import Any

from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import World, assert_problem, make_settings


def test_health_ok(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}


def test_health_503_when_database_down() -> None:
    app = create_app(make_settings("postgresql+psycopg://postgres@127.0.0.1:1/nowhere"))
    with TestClient(app) as c:
        r = c.get("/health")
    assert r.status_code == 503
    assert r.json()["database"] == "unavailable"


def test_metrics_label_by_route_template(world: World) -> None:
    world.get("admin", f"/api/v1/branches/{world.branches['A']}")
    world.get("admin", f"/api/v1/branches/{world.branches['B']}")
    text = world.client.get("/metrics").text
    assert 'route="/api/v1/branches/{branch_id}"' in text
    assert world.branches["A"] not in text
    assert "http_request_duration_seconds_bucket" in text


def test_unknown_route_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/definitely-not-here"), 404)
    assert "request_id" in body


def test_method_not_allowed_405_problem(client: TestClient) -> None:
    assert_problem(client.delete("/health"), 405)


def test_malformed_json_is_422_problem(world: World) -> None:
    r = world.client.post("/api/v1/branches", content=b"{not json", headers=world.h("admin", **{"Content-Type": "application/json"}))
    assert_problem(r, 422)


def test_unknown_field_is_rejected(world: World) -> None:
    assert_problem(world.post("admin", "/api/v1/branches", {"code": "C1", "name": "n", "colour": "red"}), 422, "colour")


def test_unhandled_error_is_500_problem_without_internals(settings: Any) -> None:
    app = create_app(settings)
    boom = APIRouter()

    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    app.include_router(boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom", headers={"X-Request-ID": "trace-me-123"})
    body = assert_problem(r, 500)
    assert "secret" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert body["request_id"] == "trace-me-123"
    assert r.headers["x-request-id"] == "trace-me-123"


def test_openapi_money_schema_is_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/auth/token" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_nul_byte_in_url_is_400_not_500(world: World) -> None:
    assert_problem(world.get("admin", "/api/v1/branches/a%00b"), 400)
    assert_problem(world.get("admin", "/api/v1/users/a%00b"), 400)
    assert_problem(world.get("admin", "/api/v1/loans?status=a%00"), 400)


def test_broken_json_names_the_body(world: World) -> None:
    r = world.client.post("/api/v1/branches", content=b"{", headers=world.h("admin", **{"Content-Type": "application/json"}))
    assert_problem(r, 422, "body")
