"""Property-based API test from our own OpenAPI document with all of schemathesis' response checks (server
errors, status codes, content types, headers, response schemas, negative-data rejection, positive-data
acceptance, ignored auth, ...), for schema-valid and schema-violating inputs, on both database legs.
(Driven through Hypothesis directly: schemathesis' pytest plugin does not support pytest 9 yet.)

Bounded: a fixed number of derandomised examples per operation and mode keeps the run to a couple of minutes.

One configured expectation: schema-valid data may also be refused with 422, because business rules the JSON
Schema cannot express (product limits, password policy, ids that must exist, dates relative to the business
date) are checked by the services and answered as problem+json naming the field."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from app.main import create_app
from tests.conftest import World, make_settings

_spec = create_app(make_settings("sqlite:///:memory:")).openapi()
OPERATIONS = [(path, method) for path, item in _spec["paths"].items() for method in item if path != "/metrics"]
# Per operation: schema-valid inputs, then schema-violating ones (fewer: most are refused at the same edge).
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6}
CONFIG = {
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]},
    }
}


@pytest.fixture(scope="session")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_passes_every_schemathesis_check(
    api_schema: Any, world: World, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(max_examples=EXAMPLES[mode], deadline=None, suppress_health_check=list(HealthCheck),
                         derandomize=True, database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers=world.h("admin"))

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Nothing in this operation's schema can be violated (no parameters, or free-form strings only).
