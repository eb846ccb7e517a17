"""The server's shutdown ends a profile that is still running before it returns. uvicorn ends its process by
re-raising SIGTERM right after the shutdown (no atexit hooks), so a process still alive then would be left behind.
tests/test_install.py checks the trace workers the same way on a real server installed from the wheel."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import get_settings


@pytest.fixture
def no_trace_workers(monkeypatch: pytest.MonkeyPatch):
    # Without the pool (whose shutdown takes a moment) nothing else gives the profile's thread time to end it.
    monkeypatch.setenv("SDUNET_TRACE_WORKERS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("no_trace_workers")
def test_shutdown_ends_a_running_profile_before_returning() -> None:
    before = set(mp.active_children())
    with TestClient(create_app()) as client:
        body = {"preset": "tiny", "image_size": [512, 512], "repeats": 50, "warmup": 10}
        job = client.post("/api/profile", json=body).json()["id"]
        deadline = time.monotonic() + 60
        while (state := client.get(f"/api/profile/{job}").json())["progress"]["phase"] not in ("warmup", "run"):
            assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
            time.sleep(0.1)
        started = set(mp.active_children()) - before
        assert len(started) == 1, started  # the profile's process
    assert [p for p in started if p.is_alive()] == []
    assert client.app.state.profiles.get(job).state == "cancelled"
