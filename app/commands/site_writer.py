"""The static site's answers: asked of the app once each, kept by content, written at the end, and timed (issue 27).

`AnswerWriter` is what app/commands/site_export.py asks through. Several threads ask at once (the presets over the trace
workers, the twin's generations in the twin's own process), so the writer is thread-safe, and because the order
in which answers arrive then varies from run to run, the files are written only at the end: two requests whose
answers are the same bytes share one file, named after the smaller of their names, so an export writes the same
files whatever the order. `Timings` keeps the seconds of each phase (wall clock) and of each kind of request (the
sum of their durations, which overlap where phases run side by side), for the command's closing summary.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timings:
    """Seconds by phase (wall clock, in the order the phases began) and by request path (summed, with counts)."""

    phases: dict[str, float] = field(default_factory=dict)
    requests: dict[str, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    def request(self, path: str, seconds: float) -> None:
        with self._lock:
            n, s = self.requests.get(path, (0, 0.0))
            self.requests[path] = (n + 1, s + seconds)

    def lines(self) -> list[str]:
        """The summary: phases first, then the kinds of request that took a tenth of a second or more."""
        out = [f"  {name:<44} {s:7.1f} s" for name, s in self.phases.items()]
        kinds = sorted(self.requests.items(), key=lambda kv: -kv[1][1])
        out += [f"    {path:<30} {n:4d} × {s / n:6.2f} s = {s:6.1f} s" for path, (n, s) in kinds if s >= 0.1]
        return out


class AnswerWriter:
    """ask(method, path, query, body) → the parsed answer (None for text, or for a request asked already)."""

    def __init__(self, client: Any, timings: Timings) -> None:
        self.client = client
        self.timings = timings
        self._lock = threading.Lock()
        self._asked: set[str] = set()
        self._names_by_content: dict[bytes, list[str]] = {}

    def ask(self, name: str, method: str, path: str, query: list[tuple[str, str]], body: Any, text: bool) -> Any:
        with self._lock:
            if name in self._asked:
                return None
            self._asked.add(name)
        t0 = time.perf_counter()
        r = self.client.request(method, path, params=query or None, json=body)
        self.timings.request(path, time.perf_counter() - t0)
        if r.status_code != 200:
            with self._lock:
                self._asked.discard(name)
            raise RuntimeError(f"{method} {path} {dict(query)} {body}: {r.status_code} {r.text[:300]}")
        with self._lock:
            self._names_by_content.setdefault(r.content, []).append(name)
        return None if text else r.json()

    def write(self, data: Path) -> dict[str, str]:
        """Write each distinct answer once; returns request file name → the file that holds its answer."""
        index: dict[str, str] = {}
        for content, names in self._names_by_content.items():
            # The page asks some answers under two keys (a preset's trace with and without its reference size).
            file = min(names)
            (data / file).write_bytes(content)
            index.update(dict.fromkeys(names, file))
        return index
