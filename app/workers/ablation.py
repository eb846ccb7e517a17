"""Ablation sweeps as jobs: one thread runs them one at a time, each target's pictures in the capture process.

A sweep is one baseline and then a dozen or so ablated batches; each goes to the capture child as its own
("ablate", ...) message, so the sweep shares the child (and its time limit per message) with captures and
generations instead of holding it for the whole sweep, and its progress advances after every target. The child
keeps the last sweep's baseline pictures (sdunet_core.twin.knobs.sweep.child_step).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from app.workers.job_queue import Job, JobQueue

KEEP = 32  # finished jobs kept for GET
MAX_WAITING = 4


@dataclass
class AblationJob(Job):
    request: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "progress": {"done": self.done, "total": self.total},
                "error": self.error, "result": self.result}  # fmt: skip


class AblationJobs(JobQueue[AblationJob]):
    def __init__(self, worker: Any) -> None:
        super().__init__(self._sweep, waiting="sweeps", kind="ablation", max_waiting=MAX_WAITING, keep=KEEP,
                         thread_name="ablation-sweeps")  # fmt: skip
        self.worker = worker  # the app's CaptureWorker

    def submit(self, request: dict[str, Any]) -> AblationJob:  # type: ignore[override]
        return super().submit(lambda job_id: AblationJob(job_id, request=request))

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
    from app.workers.captures import worker_for

    with _MANAGERS_LOCK:
        return _MANAGERS.setdefault(id(app), AblationJobs(worker_for(app)))
