"""Time limits that hold wherever they fall (issue 21, item 1): a task stops itself at its deadline, never from a
signal handler, so a limit that lands inside torch's own bookkeeping is still a 413, and the worker that stopped
serves later traces exactly as a fresh process does."""

from __future__ import annotations

import json
import time

import pytest

from app.settings import get_settings
from sdunet_core.tracer.trace import trace_unet

LIMITS = 40


def _trace(client, tokens: int):  # type: ignore[no-untyped-def]
    return client.post("/api/trace", json={"preset": "sd1", "context_tokens": tokens})


def test_limits_spread_around_a_tasks_duration_are_200_or_413(client, monkeypatch) -> None:
    store = client.app.state.traces
    started = time.monotonic()
    first = _trace(client, 101)
    assert first.status_code == 200, first.text
    duration = time.monotonic() - started
    statuses = []
    for i in range(LIMITS):
        # From nothing to 1.5x the task's own duration: the deadline falls in the build, in the forward (inside
        # the counting mode's dispatch), in the serialization and after the end. Every request is a new trace.
        monkeypatch.setattr(store, "time_limit_s", duration * 1.5 * i / LIMITS)
        r = _trace(client, 102 + i)
        statuses.append(r.status_code)
        if r.status_code == 413:
            assert r.json()["reason"].startswith("the trace ran past the limit of ")
    assert set(statuses) <= {200, 413}, statuses
    assert statuses[0] == 413
    monkeypatch.setattr(store, "time_limit_s", 60.0)
    # The workers that stopped serve as a fresh process: the same totals as a trace made here.
    for tokens in (77, 102, 102 + LIMITS // 2):
        r = _trace(client, tokens)
        assert r.status_code == 200, r.text
        fresh = json.loads(trace_unet("sd1", context_tokens=tokens).to_json())
        assert r.json()["totals"] == fresh["totals"]


def test_a_fractional_time_limit_is_read(monkeypatch) -> None:
    monkeypatch.setenv("SDUNET_TRACE_TIME_LIMIT", "0.5")
    assert get_settings.__wrapped__().trace_time_limit_s == 0.5
    for bad in ("-1", "nan", "inf", "soon"):
        monkeypatch.setenv("SDUNET_TRACE_TIME_LIMIT", bad)
        with pytest.raises(SystemExit, match="SDUNET_TRACE_TIME_LIMIT must be a number of seconds"):
            get_settings.__wrapped__()
