"""The server's shutdown ends a profile that is still running before it returns. uvicorn ends its process by
re-raising SIGTERM right after the shutdown (no atexit hooks), so a process still alive then would be left behind.
tests/test_install.py checks the trace workers the same way on a real server installed from the wheel."""

from __future__ import annotations

import multiprocessing as mp
import time

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import BASE_URL


def test_shutdown_ends_a_running_profile_before_returning() -> None:
    before = set(mp.active_children())
    with TestClient(create_app(), base_url=BASE_URL) as client:
        body = {"preset": "tiny", "image_size": [512, 512], "repeats": 50, "warmup": 10}
        job = client.post("/api/profile", json=body).json()["id"]
        deadline = time.monotonic() + 60
        while (state := client.get(f"/api/profile/{job}").json())["progress"]["phase"] not in ("warmup", "run"):
            assert state["state"] in ("queued", "running") and time.monotonic() < deadline, state
            time.sleep(0.1)
        started = set(mp.active_children()) - before
        assert [p.name for p in started].count("profile") == 1, started  # the profile's process (and trace workers)
    assert [p for p in started if p.is_alive()] == []
    assert client.app.state.profiles.get(job).state == "cancelled"
