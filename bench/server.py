"""The server the API, load and page benchmarks run against (tests.harness.serve), and its memory from /proc."""

from __future__ import annotations

from tests.harness import serve

__all__ = ["peak_rss_mb", "rss_mb", "serve"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
