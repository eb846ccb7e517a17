"""The capture service's bounds (issue 21, items 2, 3 and 6): captures wait for the capture process without
holding a thread and are refused at once past a small queue; the idle process gives its model back; the memory
check counts the model the process holds as available; an export's bytes are counted for every image."""

from __future__ import annotations

import threading
import time

import pytest

import app.workers.captures as service
from app.errors import ApiError
from sdunet_core import PRESETS


def test_captures_past_the_queue_are_refused_at_once() -> None:
    release = threading.Event()
    worker = service.CaptureWorker(max_waiting=1, run=lambda op, job: release.wait(30) and op)
    try:
        running, waiting = worker.submit("capture", {}), worker.submit("capture", {})
        threads = threading.active_count()
        started = time.monotonic()
        with pytest.raises(ApiError) as refused:
            worker.submit("capture", {})
        assert time.monotonic() - started < 0.1
        assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "5"}
        assert threading.active_count() == threads  # nobody waits in a thread of their own
        release.set()
        assert running.result(5) == waiting.result(5) == "capture"
        assert worker.submit("export", {}).result(5) == "export"  # room again once they are done
    finally:
        release.set()
        worker.close()


def test_the_idle_capture_process_gives_its_model_back(monkeypatch) -> None:
    monkeypatch.setenv("SDUNET_CAPTURE_IDLE_S", "1")
    stopped = threading.Event()
    worker = service.CaptureWorker(run=lambda op, job: op)
    monkeypatch.setattr(worker, "stop", stopped.set)
    try:
        assert worker.submit("capture", {}).result(5) == "capture"
        assert not stopped.is_set()
        assert stopped.wait(5)
    finally:
        worker._jobs.put(None)


def test_the_model_the_process_holds_counts_as_available(monkeypatch) -> None:
    gib = 2**30
    monkeypatch.setattr(service, "available_bytes", lambda device: int(7.4 * gib))
    with pytest.raises(ApiError) as refused:
        service.check_budget(12 * gib, "points")
    assert refused.value.status == 413 and refused.value.field == "points"
    service.check_budget(12 * gib, "points", held_bytes=10 * gib)  # SDXL held: dropped before the next is built


def test_an_exports_bytes_are_counted_for_every_image() -> None:
    from sdunet_core.activations.catalog import catalog

    config = PRESETS["tiny"].config
    points = catalog(config, (16, 16), 77)
    kept = [p for p in points if p.block_output]
    one = service.estimate_bytes(config, points, [], kept, False, False, images=1)
    sixteen = service.estimate_bytes(config, points, [], kept, False, False, images=16)
    assert sixteen - one >= 1.2 * (2 * 16 - 1) * service.export_bytes(kept, 1) - 1
    assert service.export_bytes(kept, 16) == 16 * service.export_bytes(kept, 1)


def test_an_export_too_large_for_the_memory_limit_names_export(client, monkeypatch) -> None:
    monkeypatch.setenv("SDUNET_CAPTURE_MEMORY_MB", "1")
    body = {"preset": "tiny", "sample_size": [16, 16], "export": ["@outputs"]}
    r = client.post("/api/activations/export", json=body)
    assert r.status_code == 413 and r.json()["field"] == "export"


def test_an_app_that_shuts_down_ends_its_own_capture_worker_only(monkeypatch) -> None:
    # The tests run several apps in one process: one app's shutdown once closed every app's worker, and the
    # session's next capture waited for ever on a queue nobody read.
    monkeypatch.setattr(service, "_WORKERS", {})

    class App:  # only its identity matters
        pass

    first, second = App(), App()
    for app in (first, second):
        service._WORKERS[id(app)] = service.CaptureWorker(run=lambda op, job: op)
    kept = service.worker_for(second)
    assert kept.submit("capture", {}).result(5) == "capture"
    closed = service.worker_for(first)
    service.close_worker(first)
    assert kept.submit("generate", {}).result(5) == "generate"
    with pytest.raises(ApiError) as refused:
        closed.submit("capture", {})
    assert refused.value.status == 503 and "shutting down" in refused.value.reason
    assert id(first) not in service._WORKERS  # a later app with the same id gets a new worker
    service.close_worker(second)
