"""Jobs run one at a time by a thread of their own: the shape probe runs and ablation sweeps share.

A job is submitted (a 429 with Retry-After once `max_waiting` already wait), run in order by the queue's one
thread, and kept for GET until `keep` newer finished jobs push it out. Its progress and result live on the job; a
failure is reported on it, never lost with the thread. A cancel marks a waiting job cancelled at once and sets the
event a running job checks between two units of its work; whatever that job raises after the event is set ends it
as cancelled. Profiles keep their own manager (app/workers/jobs.py): they queue per device and stream events.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from app.errors import ApiError

TERMINAL = ("done", "failed", "cancelled")


@dataclass
class Job:
    id: str
    state: str = "queued"  # queued | running | done | failed | cancelled
    phase: str = "queued"  # what a running job is doing now (its own words)
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)

    def progress(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total


J = TypeVar("J", bound=Job)


class JobQueue(Generic[J]):
    """`run(job)` does a job's work and returns its result; `waiting` and `kind` word the 429 and the 404."""

    def __init__(self, run: Callable[[J], dict[str, Any]], *, waiting: str, kind: str, max_waiting: int,
                 keep: int, thread_name: str) -> None:  # fmt: skip
        self._work = run
        self.waiting_words, self.kind = waiting, kind
        self.max_waiting, self.keep = max_waiting, keep
        self._thread_name = thread_name
        self._jobs: OrderedDict[str, J] = OrderedDict()
        self._queue: queue.Queue[J | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, make: Callable[[str], J]) -> J:
        """Queue the job `make(id)` builds."""
        with self._lock:
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if waiting >= self.max_waiting:
                reason = f"{waiting} {self.waiting_words} already wait (limit {self.max_waiting})"
                raise ApiError(429, None, reason, {"Retry-After": "30"})
            job = make(uuid.uuid4().hex[:16])
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.state in TERMINAL]
            for old in finished[: max(0, len(self._jobs) - self.keep)]:
                del self._jobs[old]
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._thread_name, daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> J:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "id", f"no {self.kind} job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> J:
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                job.state = job.phase = "cancelled"
            job.cancel.set()
        return job

    def shutdown(self) -> None:
        """Cancel every job and end the thread once it is between two jobs."""
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
                if job.state == "queued":
                    job.state = job.phase = "cancelled"
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state != "queued":  # cancelled while it waited
                    continue
                job.state = job.phase = "running"
            try:
                result, state, error = self._work(job), "done", None
            except Exception as exc:  # a failure is reported on its job, never lost with the thread
                result, state = None, "cancelled" if job.cancel.is_set() else "failed"
                if state == "cancelled":
                    error = "cancelled by request"
                elif isinstance(exc, ApiError):
                    error = exc.reason
                else:
                    error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                job.result, job.state, job.phase, job.error = result, state, state, error
