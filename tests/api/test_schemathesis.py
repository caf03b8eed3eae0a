"""Property-based API test from our own OpenAPI document: no 5xx and no response that breaks its schema.
(Driven through Hypothesis directly: schemathesis' pytest plugin does not support pytest 9 yet.)"""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from app.main import create_app
from tests.conftest import World, make_settings

_spec = create_app(make_settings("sqlite:///:memory:")).openapi()
OPERATIONS = [(path, method) for path, item in _spec["paths"].items() for method in item if path != "/metrics"]


@pytest.fixture(scope="session")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_never_5xx_and_matches_schema(api_schema: Any, world: World, path: str, method: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                         database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers=world.h("admin"), checks=[not_a_server_error, response_schema_conformance])

    run()
