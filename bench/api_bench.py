"""A cached sd1 trace under load: 50 concurrent connections on loopback for a bounded time, with wrk.

Run: `python -m bench.api_bench`; `run()` returns the rows for `python -m bench`. wrk is Debian's package
(`apt-get install wrk`); the Makefile's bench target installs it.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tempfile

import httpx

from bench.common import machine, table
from bench.server import serve

LUA = """
wrk.method = "POST"
wrk.body = '{"preset": "sd1"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept-Encoding"] = "gzip"
done = function(summary, latency, requests)
  io.write(string.format("P50 %d\\nP90 %d\\nP99 %d\\nMAX %d\\nREQ %d\\nERR %d\\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def run(duration_s: int = 15, connections: int = 50) -> list[tuple[str, str, str]]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return [("cached sd1 trace under load", "skipped: wrk is not installed (apt-get install wrk)", "p99 <= 20 ms")]
    with serve() as (url, _proc), tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA)
        script.flush()
        first = httpx.post(url + "/api/trace", json={"preset": "sd1"}, timeout=120)  # fills the cache
        first.raise_for_status()
        size = len(gzip.compress(first.content, 6))
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{duration_s}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url + "/api/trace",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration_s + 60,
        ).stdout
    stats = {k: int(v) for k, v in re.findall(r"^(P50|P90|P99|MAX|REQ|ERR) (\d+)$", out, re.M)}
    return [
        (
            f"cached sd1 trace, {connections} connections, {duration_s} s (wrk, loopback)",
            f"p50 {stats['P50'] / 1000:.1f} ms, p90 {stats['P90'] / 1000:.1f} ms, p99 {stats['P99'] / 1000:.1f} ms; "
            f"{stats['REQ'] / duration_s:.0f} req/s, {stats['ERR']} errors",
            "p99 <= 20 ms",
        ),
        ("sd1 trace response, gzipped", f"{size / 1000:.0f} KB", "<= 400 KB"),
    ]


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
