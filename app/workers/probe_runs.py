"""Probe runs (and PCK runs) as jobs: one worker thread runs them one at a time in this process, a few more wait.

A run is CPU work of seconds to minutes on the twin (no child process: the twin is small, and it runs on one torch
thread). Progress is counted in pictures forwarded and probes fitted (or pairs matched); a cancel is seen between
two of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.workers.job_queue import TERMINAL, Job, JobQueue

__all__ = ["TERMINAL", "ProbeJobState", "ProbeJobs", "Work"]

# (progress(phase, done, total), cancelled()) -> the JSON result
Work = Callable[[Callable[[str, int, int], None], Callable[[], bool]], dict[str, Any]]


@dataclass
class ProbeJobState(Job):
    work: Work = field(default=lambda progress, cancelled: {})  # type: ignore[assignment]


def _run(job: ProbeJobState) -> dict[str, Any]:
    return job.work(job.progress, job.cancel.is_set)


class ProbeJobs(JobQueue[ProbeJobState]):
    def __init__(self, max_queue: int = 4, keep: int = 16) -> None:
        super().__init__(_run, waiting="probe runs", kind="probe", max_waiting=max_queue, keep=keep,
                         thread_name="probes")  # fmt: skip

    def submit(self, work: Work) -> ProbeJobState:  # type: ignore[override]
        return super().submit(lambda job_id: ProbeJobState(job_id, work=work))

    def snapshot(self, job: ProbeJobState) -> dict[str, Any]:
        return {
            "id": job.id,
            "state": job.state,
            "progress": {"phase": job.phase, "done": job.done, "total": job.total},
            "error": job.error,
            "result": job.result,
        }
