"""The server's worker processes: a pool of warm trace workers and one process per timed profile.

Everything that builds a model runs in a child process, so that the server's own process only serves requests:
a meta trace holds the GIL for up to a second, and building a large model takes longer still. Processes are
started with "spawn" (fork is unsafe in a threaded server) and guard themselves against outliving the server
(app.workers.child.guard_parent).

`WorkerPool` is written here rather than taken from concurrent.futures or loky because a request's time limit
must cover the whole task, the model's build included: a worker that overruns is killed and replaced alone,
while the other workers and the tasks waiting for them carry on (a ProcessPoolExecutor breaks as a whole when
one of its processes dies, and neither library lets a caller kill one task's process). One manager thread
watches every worker's pipe and sentinel with `multiprocessing.connection.wait`; callers get a
`concurrent.futures.Future`, which an async handler awaits without holding a thread.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from app.errors import ApiError, shutting_down
from app.workers.child import guard_parent, worker_main

log = logging.getLogger(__name__)
_SPAWN = mp.get_context("spawn")
MAX_FAILED_STARTS = 5


@dataclass
class _Task:
    id: int
    name: str
    args: tuple
    time_limit_s: float | None
    what: str  # "the trace", "the detection": how errors name the work
    future: Future = field(default_factory=Future)
    queued: float = field(default_factory=time.monotonic)


class _Worker:
    def __init__(self) -> None:
        self.conn, child = _SPAWN.Pipe(duplex=True)
        self.process = _SPAWN.Process(target=worker_main, args=(child, os.getpid()), daemon=True, name="trace-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.task: _Task | None = None
        self.deadline: float | None = None
        self.retiring = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def stop(self, grace_s: float = 2.0) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(grace_s)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(grace_s)
        self.conn.close()


class WorkerPool:
    """`size` warm processes running one task each; tasks wait in a bounded queue for at most `wait_s`."""

    def __init__(
        self,
        size: int,
        *,
        max_pending: int = 256,
        wait_s: float = 30.0,
        grace_s: float = 5.0,
        recycle_rss_bytes: int = 2 << 30,
    ) -> None:
        self.size = max(1, size)
        self.max_pending = max_pending
        self.wait_s = wait_s
        self.grace_s = grace_s  # past a task's own limit, before the worker is killed from here
        self.recycle_rss_bytes = recycle_rss_bytes
        self.baseline_rss: int | None = None  # a warm worker's memory before any task: what a process costs
        self._workers: list[_Worker] = []
        self._pending: collections.deque[_Task] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._ready: Future[None] = Future()
        self._failed_starts = 0  # workers in a row that died before they were warm
        self._broken: ApiError | None = None

    # ---- the callers' side ------------------------------------------------------------------------
    def start(self) -> Future[None]:
        """Start the workers (once); the future is done when all of them are warm."""
        with self._lock:
            if self._thread is None and not self._stopping:
                # Workers are started from the manager thread only: PR_SET_PDEATHSIG ties them to it.
                self._thread = threading.Thread(target=self._manage, name="worker-pool", daemon=True)
                self._thread.start()
        return self._ready

    def submit(self, name: str, *args: Any, time_limit_s: float | None, what: str = "the task") -> Future:
        self.start()
        with self._lock:
            if self._stopping:
                raise shutting_down()
            if self._broken is not None:
                raise self._broken
            if len(self._pending) >= self.max_pending:
                raise ApiError(503, None, f"{len(self._pending)} tasks already wait; try again shortly", _RETRY)
            task = _Task(next(self._ids), name, args, time_limit_s, what)
            self._pending.append(task)
        self._wake()
        return task.future

    def shutdown(self) -> None:
        """Fail what waits, stop every worker and the manager thread (idempotent)."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wake()
        if thread is None:
            self._close()
        elif thread is not threading.current_thread():
            thread.join(10)

    def pids(self) -> list[int]:
        return [w.process.pid for w in list(self._workers) if w.process.pid is not None]

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # closed after shutdown
            os.write(self._wake_w, b"x")

    # ---- the manager thread --------------------------------------------------------------------------
    def _manage(self) -> None:
        try:
            self._workers = [_Worker() for _ in range(self.size)]
            while not self._stopping:
                self._dispatch()
                ready = wait(self._waitables(), timeout=self._timeout())
                if self._wake_r in ready:
                    os.read(self._wake_r, 4096)
                for worker in list(self._workers):
                    if worker.conn in ready or worker.process.sentinel in ready:
                        self._receive(worker)
                self._expire()
        except Exception:  # never leave callers waiting on a dead manager
            log.exception("the worker pool's manager failed")
        finally:
            self._close()

    def _waitables(self) -> list[Any]:
        out: list[Any] = [self._wake_r]
        for w in self._workers:
            out += [w.conn, w.process.sentinel]
        return out

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [w.deadline for w in self._workers if w.deadline is not None]
        with self._lock:
            if self._pending:
                deadlines.append(self._pending[0].queued + self.wait_s)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not worker.ready or worker.task is not None or worker.retiring:
                continue
            with self._lock:
                task = self._pending.popleft() if self._pending else None
            if task is None:
                return
            if not task.future.set_running_or_notify_cancel():
                continue
            worker.task = task
            limit = task.time_limit_s
            worker.deadline = time.monotonic() + limit + self.grace_s if limit is not None else None
            try:
                worker.conn.send(("task", task.id, task.name, task.args, limit))
            except (OSError, ValueError):
                self._replace(worker, ApiError(503, None, "a worker process stopped; try again", _RETRY))

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv() if worker.conn.poll() else None
            ended = message is None and not worker.process.is_alive()
        except (EOFError, OSError):
            message, ended = None, True
        if ended:
            worker.process.join(1.0)
            code = worker.process.exitcode
            if not worker.ready:
                self._failed_starts += 1
                if self._failed_starts >= MAX_FAILED_STARTS:  # it will not start: say so once, do not spin
                    log.error("trace workers die at start-up (exit code %s); giving up on them", code)
                    self._broken = ApiError(503, None, "the trace workers cannot start; see the server's log")
                    self._workers.remove(worker)
                    worker.stop()
                    self._fail_pending(self._broken)
                    if not self._ready.done():
                        self._ready.set_exception(RuntimeError("trace workers cannot start"))
                    return
            log.warning("trace worker %s ended (exit code %s); starting another", worker.process.pid, code)
            self._replace(worker, ApiError(503, None, "a worker process stopped; try again", _RETRY))
            return
        if message is None:
            return
        if message[0] == "ready":
            worker.ready = True
            self._failed_starts = 0
            self.baseline_rss = message[1]
            if all(w.ready for w in self._workers) and not self._ready.done():
                self._ready.set_result(None)
            return
        kind, payload, _task_id, rss, reusable = message
        task, worker.task, worker.deadline = worker.task, None, None
        if task is not None:
            _settle(task, kind, payload)
        if not reusable:
            log.warning("trace worker %s stopped a task in a state it cannot vouch for; replacing it", worker.pid)
            self._replace(worker, None)
        elif rss > self.recycle_rss_bytes:
            # Python keeps the memory a large model took: hand the worker's work to a fresh process.
            log.info("trace worker %s holds %d MB; replacing it", worker.process.pid, rss >> 20)
            self._replace(worker, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.deadline is not None and now > worker.deadline and worker.task is not None:
                task = worker.task
                log.warning("%s overran its limit in worker %s; killing it", task.what, worker.process.pid)
                self._replace(worker, _timeout_error(task))
        with self._lock:
            while self._pending and now - self._pending[0].queued > self.wait_s:
                task = self._pending.popleft()
                _fail(task, ApiError(503, None, "too many tasks are being computed; try again", _RETRY))

    def _fail_pending(self, error: ApiError) -> None:
        with self._lock:
            pending, self._pending = list(self._pending), collections.deque()
        for task in pending:
            _fail(task, error)

    def _replace(self, worker: _Worker, error: ApiError | None) -> None:
        if worker.task is not None and error is not None:
            _fail(worker.task, error)
        worker.task = None
        worker.stop()
        index = self._workers.index(worker)
        self._workers[index] = _Worker()

    def _close(self) -> None:
        with self._lock:
            self._stopping = True
            pending, self._pending = list(self._pending), collections.deque()
        for task in pending:
            _fail(task, shutting_down())
        for worker in self._workers:
            if worker.task is not None:
                _fail(worker.task, shutting_down())
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(1.0)
            worker.stop()
        if not self._ready.done():
            self._ready.set_exception(RuntimeError("the worker pool stopped before its workers were ready"))
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


_RETRY = {"Retry-After": "2"}


def _fail(task: _Task, error: ApiError) -> None:
    # A waiting task's future may have been cancelled by its caller (its request ended): nothing to tell then.
    with contextlib.suppress(InvalidStateError):
        task.future.set_exception(error)


def _timeout_error(task: _Task) -> ApiError:
    limit = task.time_limit_s or 0
    return ApiError(413, None, f"{task.what} ran past the limit of {limit:g} s; try a smaller model or input")


def _settle(task: _Task, kind: str, payload: Any) -> None:
    if task.future.done():
        return
    if kind == "done":
        task.future.set_result(payload)
    elif kind == "refused":
        task.future.set_exception(ApiError(*payload))
    elif kind == "timeout":
        task.future.set_exception(_timeout_error(task))
    else:
        log.error("%s failed in a worker: %s", task.what, payload)
        task.future.set_exception(RuntimeError(payload))


# ---- timed profiles ----------------------------------------------------------------------------------------
def _profile_main(conn: Any, kwargs: dict[str, Any], parent_pid: int) -> None:
    """The child: run the timed trace, sending ("progress", phase, done, total) and then one final message."""
    guard_parent(parent_pid)
    try:
        from sdunet_core.tracer.trace import trace_unet

        target = kwargs.pop("preset") or _config(kwargs["config"])
        kwargs.pop("config")
        weights_path = kwargs.pop("weights_path", None)
        if weights_path:
            from sdunet_core.checkpoint.weights import WeightsFile

            kwargs["state_dict"] = WeightsFile(weights_path).state_dict()
        trace = trace_unet(
            target, **kwargs, progress=lambda phase, done, total: conn.send(("progress", phase, done, total))
        )
        conn.send(("done", trace.to_dict()))
    except Exception as exc:  # sent to the parent, which ends the job failed with this reason
        conn.send(("failed", str(exc)[:500] if str(exc) else type(exc).__name__))
    finally:
        conn.close()


def _config(data: dict[str, Any]) -> Any:
    from sdunet_core import UNetConfig

    return UNetConfig.from_dict(data)


class ProfileProcess:
    """A timed profile in its own process: cancelling or timing out a job terminates it, which also returns all
    of its memory."""

    def __init__(self, **kwargs: Any) -> None:
        self._conn, child = _SPAWN.Pipe(duplex=False)
        self._process = _SPAWN.Process(
            target=_profile_main, args=(child, kwargs, os.getpid()), daemon=True, name="profile"
        )
        self._process.start()
        child.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def receive(self, timeout: float) -> tuple | None:
        """The next message, None if none came in time; ("failed", ...) if the process died without a word."""
        if self._conn.poll(timeout):
            try:
                return self._conn.recv()
            except EOFError:
                pass
        elif self._process.is_alive():
            return None
        self._process.join(1)
        return ("failed", f"the profiling process ended unexpectedly (exit code {self._process.exitcode})")

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._conn.close()
