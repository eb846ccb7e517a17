"""Ablation sweeps as jobs: one thread runs them one at a time, each target's pictures in the capture process.

A sweep is one baseline and then a dozen or so ablated batches; each goes to the capture child as its own
("ablate", ...) message, so the sweep shares the child (and its time limit per message) with captures and
generations instead of holding it for the whole sweep, and its progress advances after every target. The child
keeps the last sweep's baseline pictures (sdunet_core.twin.knobs.sweep.child_step).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from app.errors import ApiError

KEEP = 32  # finished jobs kept for GET
MAX_WAITING = 4


@dataclass
class AblationJob:
    id: str
    request: dict[str, Any]
    state: str = "queued"
    done: int = 0
    total: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None
    created: float = field(default_factory=time.time)

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "progress": {"done": self.done, "total": self.total},
                "error": self.error, "result": self.result}  # fmt: skip


class AblationJobs:
    def __init__(self, worker: Any) -> None:
        self.worker = worker  # the app's CaptureWorker
        self._jobs: OrderedDict[str, AblationJob] = OrderedDict()
        self._queue: queue.Queue[AblationJob] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count()

    def submit(self, request: dict[str, Any]) -> AblationJob:
        with self._lock:
            waiting = sum(j.state == "queued" for j in self._jobs.values())
            if waiting >= MAX_WAITING:
                raise ApiError(429, None, f"{waiting} sweeps already wait (limit {MAX_WAITING})", {"Retry-After": "30"})
            job = AblationJob(uuid.uuid4().hex[:16], request)
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
            for old in finished[: max(0, len(self._jobs) - KEEP)]:
                del self._jobs[old.id]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ablation-sweeps", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> AblationJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "id", f"no ablation job {job_id!r}")
        return job

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            job.state = "running"
            try:
                job.result = self._sweep(job)
                job.state = "done"
            except ApiError as exc:
                job.error, job.state = exc.reason, "failed"
            except Exception as exc:  # reported in the job, never lost
                job.error, job.state = str(exc) or type(exc).__name__, "failed"

    def _sweep(self, job: AblationJob) -> dict[str, Any]:
        ask = job.request
        targets = self.worker.submit("ablate", {**ask, "target": None}).result()
        job.total = 1 + len(targets)
        job.done = 1
        rows = []
        for target in targets:
            rows.append(self.worker.submit("ablate", {**ask, "target": target}).result())
            job.done += 1
        pictures = len(ask["prompts"]) * len(ask["seeds"])
        ranking = [r["target"] for r in sorted(rows, key=lambda r: -r["ssim_drop"])]
        return {"what": ask["what"], "pictures": pictures, "steps": ask["steps"], "effects": rows, "ranking": ranking}


_MANAGERS: dict[int, AblationJobs] = {}
_MANAGERS_LOCK = threading.Lock()


def jobs_for(app: Any) -> AblationJobs:
    """The app's sweep jobs, made on first use beside its capture worker."""
    from app.activations import worker_for

    with _MANAGERS_LOCK:
        return _MANAGERS.setdefault(id(app), AblationJobs(worker_for(app)))
