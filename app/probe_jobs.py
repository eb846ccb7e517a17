"""Probe runs (and PCK runs) as jobs: one worker thread runs them one at a time in this process, a few more wait.

A run is CPU work of seconds to minutes on the twin (no child process: the twin is small, and it runs on one torch
thread). Progress is counted in pictures forwarded and probes fitted (or pairs matched); a cancel is seen between
two of them.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import ApiError
from sdunet_core.probes import Cancelled

# (progress(phase, done, total), cancelled()) -> the JSON result
Work = Callable[[Callable[[str, int, int], None], Callable[[], bool]], dict[str, Any]]

TERMINAL = ("done", "failed", "cancelled")


@dataclass
class ProbeJobState:
    id: str
    work: Work
    state: str = "queued"
    phase: str = "queued"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)


class ProbeJobs:
    def __init__(self, max_queue: int = 4, keep: int = 16) -> None:
        self.max_queue = max_queue
        self.keep = keep
        self._jobs: OrderedDict[str, ProbeJobState] = OrderedDict()
        self._queue: queue.Queue[ProbeJobState | None] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, work: Work) -> ProbeJobState:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.state == "queued")
            if waiting >= self.max_queue:
                raise ApiError(429, None, f"{waiting} probe runs already wait (limit {self.max_queue})",
                               {"Retry-After": "30"})  # fmt: skip
            job = ProbeJobState(uuid.uuid4().hex[:16], work)
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.state in TERMINAL]
            for old in finished[: max(0, len(self._jobs) - self.keep)]:
                del self._jobs[old]
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="probes", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> ProbeJobState:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "id", f"no probe job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> ProbeJobState:
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                job.state = job.phase = "cancelled"
            job.cancel.set()
        return job

    def snapshot(self, job: ProbeJobState) -> dict[str, Any]:
        return {
            "id": job.id,
            "state": job.state,
            "progress": {"phase": job.phase, "done": job.done, "total": job.total},
            "error": job.error,
            "result": job.result,
        }

    def shutdown(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
                if job.state == "queued":
                    job.state = job.phase = "cancelled"
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state != "queued":
                    continue
                job.state = job.phase = "running"

            def progress(phase: str, done: int, total: int, job: ProbeJobState = job) -> None:
                job.phase, job.done, job.total = phase, done, total

            try:
                result = job.work(progress, job.cancel.is_set)
                state, error = "done", None
            except Cancelled:
                result, state, error = None, "cancelled", "cancelled by request"
            except Exception as exc:  # a failed run is reported on its job, never lost with the thread
                result, state, error = None, "failed", f"{type(exc).__name__}: {exc}"
            with self._lock:
                job.result, job.state, job.phase, job.error = result, state, state, error
