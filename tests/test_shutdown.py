"""The server's shutdown ends a profile that is still running before it returns. uvicorn ends its process by
re-raising SIGTERM right after the shutdown (no atexit hooks), so a process still alive then would be left behind.
tests/test_install.py checks the trace workers the same way on a real server installed from the wheel.

On SIGTERM, a real server answers every request still running 200 (done within the grace period) or 503 with
Retry-After, ends its event streams, logs no traceback and leaves no child process (app.shutdown)."""

from __future__ import annotations

import json
import multiprocessing as mp
import signal
import socket
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from app.shutdown import UVICORN_MARGIN_S
from tests.conftest import BASE_URL
from tests.harness import serve
from tests.test_server_process import _descendants, _wait_gone


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


# ---- SIGTERM on a real server with requests in flight ---------------------------------------------------------
GRACE_S = 1.0


def _send(port: int, method: str, path: str, body: dict | None = None) -> socket.socket:
    """One request on its own connection, sent in full before this returns (raw: a reset must show as such)."""
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head.encode() + b"\r\n" + data)
    return sock


def _answer(sock: socket.socket) -> bytes:
    sock.settimeout(120)
    out = b""
    with sock:
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_sigterm_answers_every_running_request_200_or_503_and_leaves_nothing(tmp_path: Path) -> None:
    env = {"SDUNET_TRACE_WORKERS": "1", "SDUNET_CACHE_DIR": str(tmp_path), "SDUNET_SHUTDOWN_GRACE": str(GRACE_S)}
    log = tmp_path / "server.log"
    with serve(env=env, log=log) as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        body = {"preset": "tiny", "image_size": [512, 512], "repeats": 50, "warmup": 10}
        job = httpx.post(f"{url}/api/profile", json=body, timeout=60).json()["id"]
        stream = _send(port, "GET", f"/api/profile/{job}/events")
        # Eight distinct SDXL traces on one worker: more than the grace period can finish, so some are still
        # queued or running when it ends (they are the 503s), beside two captures and a quick route.
        sizes = [[512 + 64 * k] * 2 for k in range(8)]
        socks = [_send(port, "POST", "/api/trace", {"preset": "sdxl-base", "image_size": s}) for s in sizes]
        capture = {"preset": "tiny", "prompt": "a cat", "points": ["unet-out"]}
        socks += [_send(port, "POST", "/api/activations/capture", {**capture, "seed": k}) for k in (1, 2)]
        # Answered after the server accepted every connection above (it accepts in order): all are in flight.
        assert httpx.get(f"{url}/api/health", timeout=60).status_code == 200
        kids = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        answers = [_answer(s) for s in socks]
        events = _answer(stream)
        proc.wait(timeout=GRACE_S + UVICORN_MARGIN_S + 30)  # the margin: a loaded machine's process ends
    statuses = [int(a.split(b" ", 2)[1]) if a.startswith(b"HTTP/1.1 ") else a for a in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert 503 in statuses, statuses  # the test reached the end of the grace period with work left
    assert all(b"\r\nretry-after: 5\r\n" in a.lower() for a in answers if a.startswith(b"HTTP/1.1 503 "))
    assert events.startswith(b"HTTP/1.1 200 ") and b"event: end" in events, events[-300:]
    end = json.loads(events.rsplit(b"event: end", 1)[1].split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert end["state"] in ("done", "cancelled"), end  # done within the grace, or cancelled by the shutdown
    text = log.read_text()
    for bad in ("Traceback", "InvalidStateError", "ERROR"):
        assert bad not in text, text
    assert _wait_gone(kids) == []
