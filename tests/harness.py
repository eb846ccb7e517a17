"""Run this app in a real uvicorn process on a free loopback port, for the tests and the benchmarks, and the
launch settings for Debian's Chromium that drives the page in both.

It lives with the tests, not in the shipped `app` package: only the tests and `bench/` (which imports it from here)
start servers this way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SDUNET_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing that reaches out to the network (it is closed here; Chromium would retry for ever).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    env: dict[str, str] | None = None,
    log: Path | None = None,
    command: Sequence[str] = (sys.executable, "-m", "app"),
    cwd: Path = ROOT,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`<command> serve` on 127.0.0.1 and a free port, run in `cwd` (by default `python -m app` in the checkout);
    yields (base URL, process) once /api/health answers, and stops the server on the way out.

    Its trace cache is a fresh directory unless SDUNET_CACHE_DIR is set (in `env` or the environment)."""
    port = free_port()
    log = log or Path(tempfile.mkstemp(prefix="sdunet-server-", suffix=".log")[1])
    # The twin's warm-up at start is off unless a test asks for it: most servers here never generate.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SDUNET_WARM_TWIN": "0", **(env or {})}
    fresh = None if env.get("SDUNET_CACHE_DIR") else tempfile.mkdtemp(prefix="sdunet-cache-")
    if fresh:
        env["SDUNET_CACHE_DIR"] = fresh
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a bound for a machine busy with other work, not a timing
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()  # its worker processes notice and end themselves (app.workers.child.guard_parent)
            proc.wait(timeout=10)
        if fresh:
            shutil.rmtree(fresh, ignore_errors=True)


@contextlib.contextmanager
def serve_static(root: Path) -> Iterator[str]:
    """A plain `python -m http.server` (not this app) serving `root` on 127.0.0.1 and a free port, as any static host
    would serve an exported site; yields its base URL once it answers, and stops it on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a bound for a busy machine, not a timing
        while True:
            try:
                httpx.get(f"{url}/", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"python -m http.server did not start in {root}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
