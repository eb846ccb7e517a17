"""The first answers of a fresh server: the first sd1 trace after `serve` (empty trace cache) against the same trace
in-process, the scaling sweep (sdxl-base at 5 sizes, empty cache) against one in-process sdxl-base trace, and the
first trace after a restart that finds the disk cache.

Each server is a real `sdunet-explorer serve` on loopback (tests.harness.serve), started with a fresh cache
directory; "after serve" counts from the moment /api/health answers, which is when the server says it is ready.

Run: `python -m bench.startup_bench`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import httpx

from bench.common import machine, median_time, table
from bench.server import serve
from sdunet_core.tracer.trace import trace_unet

SIZES = "256,512,768,1024,1280"


def _timed(method: str, url: str, **kwargs: object) -> float:
    t0 = time.perf_counter()
    r = httpx.request(method, url, timeout=300, **kwargs)  # type: ignore[arg-type]
    r.raise_for_status()
    return time.perf_counter() - t0


def _fresh_server_times(runs: int) -> tuple[list[float], list[float], list[float]]:
    first, sweep, restart = [], [], []
    for _ in range(runs):
        cache = tempfile.mkdtemp(prefix="sdunet-bench-cache-")
        with serve(env={"SDUNET_CACHE_DIR": cache}) as (url, _):
            first.append(_timed("POST", f"{url}/api/trace", json={"preset": "sd1"}))
            sweep.append(_timed("GET", f"{url}/api/scaling", params={"preset": "sdxl-base", "sizes": SIZES}))
        with serve(env={"SDUNET_CACHE_DIR": cache}) as (url, _):  # the same cache directory: a restart
            restart.append(_timed("POST", f"{url}/api/trace", json={"preset": "sd1"}))
    return first, sweep, restart


def run(runs: int = 3) -> list[tuple[str, str, str]]:
    sd1 = median_time(lambda: trace_unet("sd1"), repeats=3)
    sdxl = median_time(lambda: trace_unet("sdxl-base", sample_size=(128, 128)), repeats=3)
    first, sweep, restart = (statistics.median(v) for v in _fresh_server_times(runs))
    return [
        (
            f"first sd1 trace after serve (empty cache, median of {runs}) / in-process ({sd1:.2f} s)",
            f"{first:.2f} s = {first / sd1:.2f}x",
            "<= 2x",
        ),
        (
            f"/api/scaling sdxl-base at {SIZES} px (empty cache) / one in-process 1024 px trace ({sdxl:.2f} s)",
            f"{sweep:.2f} s = {sweep / sdxl:.2f}x",
            "<= 1.5x",
        ),
        ("first sd1 trace after a restart (the disk cache)", f"{restart * 1e3:.0f} ms", "at once"),
    ]


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
