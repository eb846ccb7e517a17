"""Load: 50 concurrent clients for a bounded time against a real server on loopback, mixing cached traces, new
configs, bad requests and profile submissions. Reports requests served, latency percentiles, errors (only the
documented 429/503 with Retry-After are allowed), the server's peak RSS, and every profile job's end state.

Run: `python -m bench.load_bench [seconds]`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections import Counter

import httpx

from bench.common import machine, table
from bench.server import peak_rss_mb, serve

BAD_BODIES = [
    {"preset": "sd9"},
    {"preset": "sd1", "batch": 0},
    {"preset": "sd1", "image_size": [500, 512]},
    {"config": {"in_channels": 4}},
    {"preset": "sd1", "wings": 2},
    "not json",
]


async def _client(http: httpx.AsyncClient, rng: random.Random, stop: float, out: dict) -> None:
    while time.monotonic() < stop:
        roll = rng.random()
        if roll < 0.70:
            kind, body = "cached", {"preset": rng.choice(["sd1", "sdxl-base", "tiny"])}
        elif roll < 0.80:
            kind, body = (
                "new",
                {"preset": rng.choice(["sd1", "sd2", "tiny"]), "image_size": [rng.randrange(4, 17) * 64] * 2},
            )
        elif roll < 0.95:
            kind, body = "bad", rng.choice(BAD_BODIES)
        else:
            kind, body = "profile", {"preset": "tiny", "repeats": 1, "warmup": 0}
        path = "/api/profile" if kind == "profile" else "/api/trace"
        t0 = time.perf_counter()
        try:
            if isinstance(body, str):
                r = await http.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = await http.post(path, json=body)
        except httpx.HTTPError as exc:
            out["errors"].append(f"{kind}: {type(exc).__name__}")
            continue
        out["latency"][kind].append((time.perf_counter() - t0) * 1e3)
        out["status"][(kind, r.status_code)] += 1
        ok = {"cached": (200,), "new": (200,), "profile": (202,), "bad": (404, 413, 422)}[kind]
        if r.status_code in ok:
            if kind == "profile":
                out["jobs"].append(r.json()["id"])
        elif r.status_code in (429, 503) and "retry-after" in r.headers:
            out["throttled"] += 1
        else:
            out["errors"].append(f"{kind}: {r.status_code} {r.text[:120]}")


async def _load(url: str, clients: int, seconds: float) -> dict:
    out: dict = {
        "latency": {k: [] for k in ("cached", "new", "bad", "profile")},
        "status": Counter(),
        "errors": [],
        "jobs": [],
        "throttled": 0,
    }
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        for preset in ("sd1", "sdxl-base", "tiny"):  # the "cached" share starts cached
            (await http.post("/api/trace", json={"preset": preset})).raise_for_status()
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client(http, random.Random(i), stop, out) for i in range(clients)))
        # Every job must end: wait (bounded) until each is done, failed or cancelled.
        states: Counter = Counter()
        deadline = time.monotonic() + 120
        for job in out["jobs"]:
            while True:
                state = (await http.get(f"/api/profile/{job}")).json()["state"]
                if state in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                    states[state] += 1
                    break
                await asyncio.sleep(0.2)
        out["job_states"] = states
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else float("nan"))


def run(seconds: float = 60, clients: int = 50) -> list[tuple[str, str, str]]:
    with serve() as (url, proc):
        t0 = time.monotonic()
        out = asyncio.run(_load(url, clients, seconds))
        elapsed = time.monotonic() - t0
        rss = peak_rss_mb(proc.pid)
    served = sum(out["status"].values())
    rows = [
        (f"load: {clients} clients for {seconds:.0f} s (loopback)", f"{served} requests in {elapsed:.0f} s", "bounded")
    ]
    for kind, values in out["latency"].items():
        if values:
            rows.append(
                (
                    f"  {kind} ({len(values)} requests)",
                    f"p50 {_pct(values, 50):.0f} ms, p95 {_pct(values, 95):.0f} ms, p99 {_pct(values, 99):.0f} ms",
                    "",
                )
            )
    rows.append(("  throttled (429/503 with Retry-After)", str(out["throttled"]), "allowed"))
    rows.append(("  other errors", str(len(out["errors"])) + (f": {out['errors'][:3]}" if out["errors"] else ""), "0"))
    rows.append(("  profile jobs and their end states", f"{len(out['jobs'])}: {dict(out['job_states'])}", "none lost"))
    rows.append(("  server peak RSS", f"{rss:.0f} MB", "bounded"))
    return rows


if __name__ == "__main__":
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    print(f"Machine: {machine()}\n")
    print(table(run(secs)))
