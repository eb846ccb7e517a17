"""The real server process (uvicorn on 127.0.0.1, as `sdunet-explorer serve` runs it):
no child process outlives it, however it ends (SIGTERM, SIGINT, SIGKILL with work in flight); connections that
send their headers or body too slowly are closed; a restart answers from the disk cache; an event stream gets
every event of its job while many idle streams are open, and idle streams hold no thread.

Each server here runs one trace worker (the lightest server that still has every kind of child) and its own
cache directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.harness import serve


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (the trace workers, profile processes, the resource tracker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def _wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    return left


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def _env(cache_dir: Path, **extra: str) -> dict[str, str]:
    return {"SDUNET_TRACE_WORKERS": "1", "SDUNET_CACHE_DIR": str(cache_dir), **extra}


def _start_profile(url: str, repeats: int = 50) -> str:
    r = httpx.post(f"{url}/api/profile", json={"preset": "tiny", "repeats": repeats, "warmup": 5}, timeout=60)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    deadline = time.monotonic() + 60
    while httpx.get(f"{url}/api/profile/{job}", timeout=10).json()["state"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return job


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_no_child_survives_a_shutdown(tmp_path: Path, how: signal.Signals) -> None:
    with serve(env=_env(tmp_path), log=tmp_path / "server.log") as (url, proc):
        _start_profile(url)  # a profile process running, beside the trace worker and the resource tracker
        kids = _descendants(proc.pid)
        assert len(kids) >= 3, kids
        proc.send_signal(how)
        proc.wait(timeout=20)  # the server itself ends promptly, open work or not
        assert _wait_gone(kids) == []


def _start_capture(url: str) -> None:
    """An activation capture (tiny, seeded weights): it leaves the capture process running, holding its model."""
    body = {"preset": "tiny", "prompt": "a cat", "points": ["unet-out"]}
    r = httpx.post(f"{url}/api/activations/capture", json=body, timeout=120)
    assert r.status_code == 200, r.text


def test_no_child_survives_the_server_being_killed(tmp_path: Path) -> None:
    with serve(env=_env(tmp_path), log=tmp_path / "server.log") as (url, proc):
        _start_capture(url)
        _start_profile(url)
        kids = _descendants(proc.pid)
        assert len(kids) >= 4, kids  # trace worker, resource tracker, capture process, profile process
        proc.kill()  # no shutdown code runs: the children must notice on their own
        proc.wait(timeout=10)
        assert _wait_gone(kids) == []


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it was still open after `seconds`."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError:
        return None
    return data


def test_slow_and_idle_connections_are_closed_and_a_restart_answers_from_disk(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = _env(cache, SDUNET_HEADER_TIMEOUT="1", SDUNET_BODY_TIMEOUT="1")
    with serve(env=env, log=tmp_path / "a.log") as (url, _proc):
        port = _port(url)
        with socket.create_connection(("127.0.0.1", port)) as idle:  # connects and never says a word
            assert _closed_within(idle, 5) == b""
        with socket.create_connection(("127.0.0.1", port)) as slow:  # headers that never end
            slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            assert _closed_within(slow, 5) == b""
        with socket.create_connection(("127.0.0.1", port)) as slow_body:  # a body that stops coming
            slow_body.sendall(
                b"POST /api/trace HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"preset"'
            )
            answer = _closed_within(slow_body, 5)
            assert answer is not None and answer.startswith(b"HTTP/1.1 408 ")
        first = httpx.post(f"{url}/api/trace", json={"preset": "sd1"}, timeout=60)
        assert first.status_code == 200
    # Restarted with a time limit of 0 s, any trace computed would be refused: this one comes from the disk.
    with serve(env={**env, "SDUNET_TRACE_TIME_LIMIT": "0"}, log=tmp_path / "b.log") as (url, _proc):
        again = httpx.post(f"{url}/api/trace", json={"preset": "sd1"}, timeout=60)
        assert again.status_code == 200 and again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert httpx.post(f"{url}/api/trace", json={"preset": "sd2"}, timeout=60).status_code == 413


async def _stream_events(client: httpx.AsyncClient, job: str) -> list[tuple[str, dict]]:
    events, kind = [], None
    async with client.stream("GET", f"/api/profile/{job}/events") as r:
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


async def _idle_streams(url: str, pid: int, count: int) -> tuple[int, int, list[tuple[str, dict]]]:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        running = (await client.post("/api/profile", json={"preset": "tiny", "repeats": 6, "warmup": 1})).json()["id"]
        waiting = (await client.post("/api/profile", json={"preset": "tiny", "repeats": 1})).json()["id"]
        before = _threads(pid)
        # Streams of the queued job: open and idle while the first job runs.
        idle = [asyncio.create_task(_stream_events(client, waiting)) for _ in range(count)]
        await asyncio.sleep(1.0)
        during = _threads(pid)
        events = await _stream_events(client, running)
        await client.delete(f"/api/profile/{waiting}")
        await asyncio.gather(*idle)
    return before, during, events


def test_idle_event_streams_hold_no_thread_and_a_stream_gets_every_event(tmp_path: Path) -> None:
    # A thread of its own for the client: the browser tests' Playwright keeps an event loop running in this one.
    with serve(env=_env(tmp_path), log=tmp_path / "server.log") as (url, proc), ThreadPoolExecutor(1) as pool:
        before, during, events = pool.submit(asyncio.run, _idle_streams(url, proc.pid, 100)).result()
    assert during - before < 10, (before, during)  # not one thread per idle stream
    assert events[-1] == ("end", {"state": "done", "error": None})
    runs = [data["done"] for kind, data in events if kind == "progress" and data["phase"] == "run"]
    assert runs == list(range(2, 2 + 12))  # every timed forward, in order (after one warmup): none skipped
