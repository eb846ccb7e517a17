"""Schemathesis against the app's own OpenAPI schema: no 5xx, and every response conforms to its schema.

Bounded: 25 examples per operation. Timed profiles are switched off for the fuzzed app (every device is refused) so
that a generated valid body cannot queue real work; their success path is tested in test_api.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.deps import current_settings
from app.main import create_app
from app.settings import get_settings
from tests.conftest import BASE_URL

app = create_app()
app.dependency_overrides[current_settings] = lambda: dataclasses.replace(get_settings(), devices=())


async def _without_lifespan(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The app, its lifespan answered here: schemathesis runs a lifespan per call, which would start and stop the
    worker processes every time. They start before this module's tests instead and stop when they end."""
    if scope["type"] != "lifespan":
        await app(scope, receive, send)
        return
    while True:
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        if message["type"] == "lifespan.shutdown":
            return


@pytest.fixture(scope="module", autouse=True)
def _workers() -> Iterator[None]:
    app.state.workers.start().result(timeout=120)  # warm before the first call, which has a 10 s read timeout
    yield
    app.state.workers.shutdown()
    app.state.traces.shutdown()


schema = schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan, headers={"host": "localhost"})
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_conforms(case) -> None:
    # What the issue asks: no 5xx, and every response (status, content type, headers, body) as documented. The
    # "positive data" checks are left out: the schema cannot say every rule (a preset name, a divisible size), so a
    # schema-valid request may rightly get a documented 4xx.
    case.call_and_validate(checks=CHECKS, base_url=BASE_URL)


def test_openapi_keeps_pages_out_and_documents_errors(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/" not in spec["paths"] and "/vendor/plotly.min.js" not in spec["paths"]
    trace = spec["paths"]["/api/trace"]["post"]["responses"]
    assert trace["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
