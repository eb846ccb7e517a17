"""Shared fixtures: a FastAPI TestClient, a real uvicorn server on a free loopback port, and Playwright pointed
at Debian's Chromium (Playwright cannot download its own browser here)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CHROMIUM, CHROMIUM_ARGS, serve

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
# The API's address in TestClient requests: a name the server's Host allow-list serves.
BASE_URL = "http://localhost"

# Traces cached on disk go to a directory of this test run, never to the user's cache (set before any app reads
# its settings; the servers the tests start inherit it).
_CACHE = tempfile.mkdtemp(prefix="sdunet-test-cache-")
os.environ["SDUNET_CACHE_DIR"] = _CACHE
# The twin's warm-up at start is off for the apps and servers of the tests (most never generate); the one test of
# the warm-up turns it on.
os.environ["SDUNET_WARM_TWIN"] = "0"
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def client():
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(), base_url=BASE_URL) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn process serving the app on 127.0.0.1."""
    with serve(log=tmp_path_factory.mktemp("server") / "uvicorn.log") as (url, _proc):
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    # The 220 ms ease of a refit (static/js/refit-motion.js) would move cards under tests that measure right after
    # a render: they browse as a reader who asks for reduced motion. The ease has its own test with motion on.
    return {**browser_context_args, "reduced_motion": "reduce"}


@pytest.fixture
def console_errors(page) -> list[str]:
    """Collects console errors and uncaught page errors; a browser test asserts it stays empty."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
