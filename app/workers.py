"""Work that runs in child processes, so that the server's own process only serves requests.

A meta trace is pure Python at dispatch and holds the GIL for up to a second; a timed profile holds it in every
module hook. In a thread of the server they would stall every other request; in a child process they use the other
core and leave the event loop alone. Processes are started with "spawn" (fork is unsafe in a threaded server).

- `TracePool`: a small pool of long-lived processes that compute serialized traces.
- `ProfileProcess`: one process per timed profile, streaming progress over a pipe; cancelling or timing out a
  job terminates its process, which also returns all of its memory.
"""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing as mp
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

_SPAWN = mp.get_context("spawn")


def _warm() -> bool:
    import sdunet_core.trace  # noqa: F401  (imports torch: the slow part of a worker's start)

    return True


def compute_trace(
    preset: str | None,
    config: dict[str, Any],
    sample: tuple[int, ...],
    batch: int,
    tokens: int | None,
    time_limit_s: float | None,
) -> tuple[bytes, bytes, str, dict[str, Any]]:
    """Trace on meta and serialize: (JSON, gzipped JSON, ETag, totals). A preset is traced under its own name."""
    from sdunet_core import UNetConfig
    from sdunet_core.trace import trace_unet

    model = preset if preset is not None else UNetConfig.from_dict(config)
    trace = trace_unet(model, sample_size=sample, batch=batch, context_tokens=tokens, time_limit_s=time_limit_s)
    body = trace.to_json()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return body, gzip.compress(body, 6), etag, trace.totals.model_dump()


class TracePool:
    """Long-lived trace processes, started on first use and started again after a shutdown or a crash."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None or getattr(self._executor, "_broken", False):
                self._executor = ProcessPoolExecutor(max_workers=self.workers, mp_context=_SPAWN)
            return self._executor

    def warm(self) -> Future[bool]:
        return self._get().submit(_warm)

    def submit(self, *args: Any) -> Future[tuple[bytes, bytes, str, dict[str, Any]]]:
        return self._get().submit(compute_trace, *args)

    def shutdown(self, grace_s: float = 2.0) -> None:
        """Stop the workers before returning: idle ones leave at once, one still tracing is terminated after
        `grace_s`. Not left to the pool's exit hook: uvicorn ends the server by re-raising SIGTERM after its
        shutdown, which skips atexit, and the workers (which hold their own queue's write end) would live on."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        # The pool names its processes only privately before Python 3.14 (terminate_workers).
        processes = list((executor._processes or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace_s
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5)


def _profile_main(conn: Any, kwargs: dict[str, Any]) -> None:
    """The child: run the timed trace, sending ("progress", phase, done, total) and then one final message."""
    try:
        from sdunet_core import UNetConfig
        from sdunet_core.trace import trace_unet

        preset = kwargs.pop("preset", None)
        kwargs["config"] = preset if preset is not None else UNetConfig.from_dict(kwargs["config"])
        weights_path = kwargs.pop("weights_path", None)
        if weights_path:
            from sdunet_core.weights import WeightsFile

            kwargs["state_dict"] = WeightsFile(weights_path).state_dict()
        trace = trace_unet(**kwargs, progress=lambda phase, done, total: conn.send(("progress", phase, done, total)))
        conn.send(("done", trace.to_json()))
    except Exception as exc:  # sent to the parent, which ends the job failed with this reason
        conn.send(("failed", str(exc) if str(exc) else type(exc).__name__))
    finally:
        conn.close()


class ProfileProcess:
    """A timed profile in its own process."""

    def __init__(self, **kwargs: Any) -> None:
        self._conn, child = _SPAWN.Pipe(duplex=False)
        self._process = _SPAWN.Process(target=_profile_main, args=(child, kwargs), daemon=True)
        self._process.start()
        child.close()

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

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()

    def close(self) -> None:
        self.kill()
        self._conn.close()
