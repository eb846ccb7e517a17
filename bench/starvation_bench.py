"""Starvation: while 100 uncached traces, 60 captures and 50 compares run and 200 idle event streams are open, do
health, presets, a static file, a cached trace and two threadpool routes still answer at once? And does a job's
event stream get every event?

A fresh server on loopback (empty cache). One profile job runs (its stream is read to the end) and a second waits
behind it with 200 idle streams open; 100 traces of distinct sizes are posted at once (two workers compute them;
the rest wait, and those that wait past the queue's limit get a documented 503). Meanwhile one client probes the
four cheap requests in turn, from a process of its own (so that the load generator's own work does not count in
the probe's latencies). Bounded: it ends when the traces have all been answered.

Run: `python -m bench.starvation_bench`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import statistics
import time
from collections import Counter
from typing import Any

import httpx

from bench.common import machine, table
from bench.server import serve

PROBES = {
    "health": ("GET", "/api/health", None),
    "presets": ("GET", "/api/presets", None),
    "static file": ("GET", "/static/js/main.js", None),
    "cached trace": ("POST", "/api/trace", {"preset": "sd1"}),
    # Plain `def` routes run in the threadpool: health alone did not see captures that held its threads.
    "threadpool route": ("GET", "/api/source", None),
    "block weights (threadpool)": ("POST", "/api/names/block-weights", {"preset": "sd1", "spec": "ALL"}),
}


CAPTURES = 60
COMPARES = 50


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


async def _events(client: httpx.AsyncClient, job: str) -> list[dict]:
    out = []
    async with client.stream("GET", f"/api/profile/{job}/events") as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def _probe(url: str, stop: Any, out: Any) -> None:
    """In its own process: the cheap requests in turn until `stop` is set; sends {name: [ms, ...]}."""
    latency: dict[str, list[float]] = {name: [] for name in PROBES}
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            for name, (method, path, body) in PROBES.items():
                t0 = time.perf_counter()
                r = client.request(method, path, json=body)
                latency[name].append((time.perf_counter() - t0) * 1e3)
                if r.status_code != 200:
                    latency[name].append(float("inf"))
            time.sleep(0.02)
    out.send(latency)


async def _run(url: str, pid: int, traces: int, streams: int) -> dict:
    limits = httpx.Limits(max_connections=traces + streams + 20, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        (await client.post("/api/trace", json={"preset": "sd1"})).raise_for_status()
        (await client.post("/api/trace", json={"preset": "sd2"})).raise_for_status()
        running = (await client.post("/api/profile", json={"preset": "tiny", "repeats": 10, "warmup": 1})).json()["id"]
        waiting = (await client.post("/api/profile", json={"preset": "tiny", "repeats": 1})).json()["id"]
        idle = [asyncio.create_task(_events(client, waiting)) for _ in range(streams)]
        followed = asyncio.create_task(_events(client, running))
        await asyncio.sleep(1.0)
        threads_idle = _threads(pid)
        ctx = mp.get_context("spawn")
        stop, (receiver, sender) = ctx.Event(), ctx.Pipe(duplex=False)
        probe = ctx.Process(target=_probe, args=(url, stop, sender))
        probe.start()
        await asyncio.sleep(2.0)  # the probe process has started and made its first requests
        t0 = time.monotonic()
        # Distinct sizes of the tiny preset (multiples of 32 px: its latent factor 8 times 2 ** (3 levels - 1)).
        bodies = [{"preset": "tiny", "image_size": [64 + 32 * i, 64 + 32 * i]} for i in range(traces)]
        # With them: captures (sd1 at 256 px, distinct seeds: one runs, two wait, the rest get a 503 at once) and
        # comparisons of two cached traces (parsed and compared off the event loop).
        captures = [
            {"preset": "sd1", "image_size": [256, 256], "points": ["@outputs"], "seed": i} for i in range(CAPTURES)
        ]
        answers, captured, compared = await asyncio.gather(
            asyncio.gather(*(client.post("/api/trace", json=b) for b in bodies)),
            asyncio.gather(*(client.post("/api/activations/capture", json=b) for b in captures)),
            asyncio.gather(*(client.get("/api/compare", params={"a": "sd1", "b": "sd2"}) for _ in range(COMPARES))),
        )
        elapsed = time.monotonic() - t0
        stop.set()
        latency = receiver.recv()
        probe.join(10)
        events = await followed
        await client.delete(f"/api/profile/{waiting}")
        await asyncio.gather(*idle)
    runs = [e["done"] for e in events if e.get("phase") == "run"]
    return {
        "latency": latency,
        "statuses": Counter(r.status_code for r in answers),
        "captures": Counter(r.status_code for r in captured),
        "compares": Counter(r.status_code for r in compared),
        "elapsed": elapsed,
        "threads": threads_idle,
        "runs": runs,
        "expected_runs": 2 * 10,
    }


def run(traces: int = 100, streams: int = 200) -> list[tuple[str, str, str]]:
    with serve() as (url, proc):
        out = asyncio.run(_run(url, proc.pid, traces, streams))
    rows = [
        (
            f"{traces} uncached traces posted at once, {streams} idle event streams open",
            f"answered in {out['elapsed']:.0f} s: {dict(sorted(out['statuses'].items()))}",
            "200, or 503 with Retry-After",
        )
    ]
    rows.append((f"  {CAPTURES} captures at once", str(dict(sorted(out["captures"].items()))), "200, or 503 at once"))
    rows.append((f"  {COMPARES} compares of cached traces", str(dict(sorted(out["compares"].items()))), "200"))
    for name, values in out["latency"].items():
        rows.append(
            (
                f"  {name} meanwhile ({len(values)} requests)",
                f"p50 {_p(values, 50):.1f} ms, p99 {_p(values, 99):.1f} ms, max {max(values):.1f} ms",
                "p99 <= 50 ms",
            )
        )
    rows.append(("  server threads with the idle streams open", str(out["threads"]), "no thread per stream"))
    got = len(out["runs"])
    complete = out["runs"] == list(range(out["runs"][0], out["runs"][0] + got)) if got else False
    rows.append(
        (
            "  progress events of the running job's stream",
            f"{got} of {out['expected_runs']} timed forwards{', in order, none skipped' if complete else ''}",
            "every one",
        )
    )
    return rows


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
