"""Timed profiles as jobs: one worker thread per device runs them one at a time, the rest wait in a bounded queue.
Each profile runs in a child process (app.workers.pool.ProfileProcess): cancelling or timing out kills it, and the
time limit covers the model's build.

Every job ends done, failed (with the reason) or cancelled: nothing is dropped. Every change of a job is kept
in its `events` (a few dozen per job: one per timed forward), so an event stream delivers each of them, however
late it reads; a stream awaits the next one on its own event loop (`changed`), so an idle stream holds no
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from app.errors import ApiError
from app.tracing import TraceSpec
from app.workers.pool import ProfileProcess

TERMINAL = ("done", "failed", "cancelled")


@dataclass
class Job:
    id: str
    spec: TraceSpec
    device: str
    dtype: str
    repeats: int
    warmup: int
    seq: int
    weights_path: str | None = None
    state: str = "queued"
    phase: str = "queued"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # progress and state after each change
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    # Event streams waiting for the next event: (their loop, a future that loop awaits).
    waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)

    def progress(self) -> dict[str, Any]:
        return {"phase": self.phase, "done": self.done, "total": self.total}


class ProfileManager:
    def __init__(self, max_queue: int, time_limit_s: float, keep: int = 64) -> None:
        self.max_queue = max_queue
        self.time_limit_s = time_limit_s
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._seq = itertools.count()

    # ---- submission and queries ------------------------------------------------------------------------
    def submit(
        self, spec: TraceSpec, device: str, dtype: str, repeats: int, warmup: int, weights_path: str | None = None
    ) -> Job:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.device == device and j.state == "queued")
            if waiting >= self.max_queue:
                raise ApiError(
                    429,
                    "device",
                    f"{waiting} profiles already wait for {device} (limit {self.max_queue})",
                    {"Retry-After": "10"},
                )
            job = Job(uuid.uuid4().hex[:16], spec, device, dtype, repeats, warmup, next(self._seq), weights_path)
            _notify(job)
            self._jobs[job.id] = job
            self._evict()
            q = self._queues.get(device)
            if q is None:
                q = self._queues[device] = queue.Queue()
                worker = threading.Thread(target=self._run, args=(q,), name=f"profile-{device}", daemon=True)
                self._workers[device] = worker
                worker.start()
        q.put(job)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "id", f"no profile job {job_id!r}")
        return job

    def position(self, job: Job) -> int | None:
        """0 while running, n for the n-th job waiting on its device, None once finished."""
        with self._lock:
            if job.state == "running":
                return 0
            if job.state != "queued":
                return None
            return 1 + sum(
                1 for j in self._jobs.values() if j.device == job.device and j.state == "queued" and j.seq < job.seq
            )

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                self._finish(job, "cancelled", None)
            elif job.state == "running":
                job.cancel_requested.set()
        return job

    async def changed(self, job: Job, seen: int, timeout: float) -> None:
        """Return once the job has more than `seen` events, or after `timeout` seconds; holds no thread."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if len(job.events) > seen:
                return
            job.waiters.append((loop, waiter))
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock, contextlib.suppress(ValueError):
                job.waiters.remove((loop, waiter))

    def events_since(self, job: Job, seen: int) -> list[dict[str, Any]]:
        with self._lock:
            return job.events[seen:]

    def snapshot(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "state": job.state,
            "progress": job.progress(),
            "position": self.position(job),
            "device": job.device,
            "dtype": job.dtype,
            "error": job.error,
            "result": job.result,
        }

    def shutdown(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            for job in self._jobs.values():
                if job.state == "queued":
                    self._finish(job, "cancelled", "the server is shutting down")
                elif job.state == "running":
                    job.cancel_requested.set()
            for q in self._queues.values():
                q.put(None)
            workers = list(self._workers.values())
        # Each thread ends its running profile's process within moments of the cancel. Wait for that: uvicorn ends
        # the server by re-raising SIGTERM right after the shutdown, which would leave such a process running.
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    # ---- the worker --------------------------------------------------------------------------------------
    def _update(self, job: Job, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(job, k, v)
            job.version += 1
            _notify(job)

    def _finish(self, job: Job, state: str, error: str | None, result: dict[str, Any] | None = None) -> None:
        # Called with the lock held.
        job.state, job.error, job.result, job.finished = state, error, result, time.time()
        job.phase = state
        job.version += 1
        _notify(job)

    def _evict(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in TERMINAL]
        for job in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]

    def _run(self, q: queue.Queue[Job | None]) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            with self._lock:
                if job.state != "queued":
                    continue  # cancelled while waiting
                job.state, job.started = "running", time.time()
                job.version += 1
                _notify(job)
            self._execute(job)

    def _execute(self, job: Job) -> None:
        deadline = time.monotonic() + self.time_limit_s
        spec = job.spec
        kwargs = {
            "preset": spec.preset,
            "config": spec.config.to_dict(),
            "sample_size": spec.sample_size,
            "batch": spec.batch,
            "context_tokens": spec.context_tokens,
            "device": job.device,
            "dtype": job.dtype,
            "repeats": job.repeats,
            "warmup": job.warmup,
            "weights_path": job.weights_path,
        }
        outcome = self._execute_in_child(job, kwargs, deadline)
        with self._lock:
            self._finish(job, *outcome)

    def _execute_in_child(
        self, job: Job, kwargs: dict[str, Any], deadline: float
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        child = ProfileProcess(**kwargs)
        try:
            while True:
                if job.cancel_requested.is_set():
                    return ("cancelled", "cancelled by request", None)
                if time.monotonic() > deadline:
                    return ("failed", f"over the time limit of {self.time_limit_s:.0f} s per profile", None)
                message = child.receive(timeout=0.1)
                if message is None:
                    continue
                if message[0] == "progress":
                    _, phase, done, total = message
                    self._update(job, phase=phase, done=done, total=total)
                elif message[0] == "done":
                    return ("done", None, message[1])
                else:
                    return ("failed", message[1], None)
        finally:
            child.close()  # a cancelled or late job's process is terminated here


def _notify(job: Job) -> None:
    """Record the job's new state and wake the event streams waiting on it (called with the manager's lock held)."""
    job.events.append({**job.progress(), "state": job.state})
    for loop, waiter in job.waiters:
        with contextlib.suppress(RuntimeError):  # that loop has closed
            loop.call_soon_threadsafe(_wake, waiter)
    job.waiters.clear()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
