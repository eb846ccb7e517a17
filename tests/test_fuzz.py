"""Schemathesis against the app's own OpenAPI schema: no 5xx, and every response conforms to its schema.

Bounded: 15 examples per operation (the API has grown to about 40 operations; the suite keeps to its time).
Timed profiles are switched off for the fuzzed app (every device is refused) so
that a generated valid body cannot queue real work; their success path is tested in test_api.py. Probe and PCK runs
are refused the same way (a queue of none); theirs is tested in test_probes.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
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
from app.routes.probes import get_jobs
from app.settings import get_settings
from app.workers.probe_runs import ProbeJobs
from tests.conftest import BASE_URL


@pytest.fixture(scope="module")
def fuzzed_app() -> Iterator[FastAPI]:
    """The app, built when its tests run (not when pytest collects this module), its workers warm before the first
    call (which has a 10 s read timeout), stopped when this module's tests end."""
    app = create_app()
    app.dependency_overrides[current_settings] = lambda: dataclasses.replace(get_settings(), devices=())
    # Probe and PCK runs likewise: a queue that takes nothing (429), so a valid body queues no real work.
    app.dependency_overrides[get_jobs] = lambda: ProbeJobs(max_queue=0)
    app.state.workers.start().result(timeout=120)
    yield app
    app.state.workers.shutdown()
    app.state.traces.shutdown()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: FastAPI) -> schemathesis.BaseSchema:
    async def without_lifespan(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        """The app, its lifespan answered here: schemathesis runs a lifespan per call, which would start and stop the
        worker processes every time (`fuzzed_app` starts them once)."""
        if scope["type"] != "lifespan":
            await fuzzed_app(scope, receive, send)
            return
        while True:
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return

    return schemathesis.openapi.from_asgi("/openapi.json", without_lifespan, headers={"host": "localhost"})


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis' lazy schema reads `request.node._nodeid`, which pytest 9 no longer has (`nodeid` is the public
    # name); without it the test fails before the first call. What it writes back is for its report only.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# Loaded from the fixture when the test runs: collecting this module builds no app and starts no worker.
schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_conforms(case) -> None:
    # What is asked of every route: no 5xx, and every response (status, content type, headers, body) as documented. The
    # "positive data" checks are left out: the schema cannot say every rule (a preset name, a divisible size), so a
    # schema-valid request may rightly get a documented 4xx.
    case.call_and_validate(checks=CHECKS, base_url=BASE_URL)


def test_openapi_keeps_pages_out_and_documents_errors(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/" not in spec["paths"] and "/vendor/plotly.min.js" not in spec["paths"]
    trace = spec["paths"]["/api/trace"]["post"]["responses"]
    assert trace["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
