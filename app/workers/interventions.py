"""Knob runs on the server's checkpoint as jobs: one thread runs them one at a time, each step in the capture process.

A run is a "start" message (the checkpoint's model built or reused, the captions encoded, the noise made), one
"step" message per denoising step, and a "finish" that decodes both pictures and compares them
(sdunet_core.activations.interventions.child_step). Each goes to the capture child as its own message, so a run
shares the child (and its time limit per message) with captures and generations instead of holding it for
minutes, its progress advances after every step, and a cancel (DELETE) is seen between two steps.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from app.workers.job_queue import Job, JobQueue

KEEP = 16  # finished jobs kept for GET
MAX_WAITING = 2  # a run is minutes of CPU on a real checkpoint


class Cancelled(Exception):
    """The job was cancelled between two steps."""


@dataclass
class InterventionJob(Job):
    request: dict[str, Any] = field(default_factory=dict)  # the checked request and the model's keys

    def snapshot(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "error": self.error, "result": self.result,
                "progress": {"phase": self.phase, "done": self.done, "total": self.total}}  # fmt: skip


class InterventionJobs(JobQueue[InterventionJob]):
    def __init__(self, worker: Any) -> None:
        super().__init__(self._run, waiting="knob runs", kind="knob run", max_waiting=MAX_WAITING, keep=KEEP,
                         thread_name="checkpoint-knobs")  # fmt: skip
        self.worker = worker  # the app's CaptureWorker

    def submit(self, request: dict[str, Any]) -> InterventionJob:  # type: ignore[override]
        return super().submit(lambda job_id: InterventionJob(job_id, request=request))

    def _send(self, job: InterventionJob, phase: str) -> dict[str, Any]:
        if job.cancel.is_set():
            raise Cancelled
        return self.worker.submit("intervene", {**job.request, "id": job.id, "phase": phase}).result()

    def _run(self, job: InterventionJob) -> dict[str, Any]:
        job.progress("loading the checkpoint and encoding the captions", 0, 0)
        reply = self._send(job, "start")
        while reply["done"] < reply["total"]:
            job.progress("sampling: baseline and knob run", reply["done"], reply["total"])
            reply = self._send(job, "step")
        job.progress("decoding both pictures with the VAE", reply["done"], reply["total"])
        return self._send(job, "finish")


_MANAGERS: dict[int, InterventionJobs] = {}
_MANAGERS_LOCK = threading.Lock()


def jobs_for(app: Any) -> InterventionJobs:
    """The app's knob-run jobs, made on first use beside its capture worker."""
    from app.workers.captures import worker_for

    with _MANAGERS_LOCK:
        return _MANAGERS.setdefault(id(app), InterventionJobs(worker_for(app)))
