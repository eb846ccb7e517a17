"""Timed profiles: POST /api/profile queues a job; GET polls it; /events streams its progress; DELETE cancels."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import torch
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from app.deps import MaybeWeightsDep, PoolDep, ProfilesDep, SettingsDep, StoreDep
from app.errors import ERROR_RESPONSES, ApiError
from app.resolve import resolve
from app.schemas.trace import ProfileRequest
from app.workers.jobs import TERMINAL
from sdunet_core.tracer.trace import available_bytes, parse_dtype, run_memory_bytes

router = APIRouter(prefix="/api/profile", tags=["profile"], responses=ERROR_RESPONSES)
KEEP_ALIVE_S = 5.0


@router.post("", status_code=202, responses={202: {"description": "queued: {id, state, position}"}})
async def submit(
    body: ProfileRequest,
    settings: SettingsDep,
    store: StoreDep,
    pool: PoolDep,
    manager: ProfilesDep,
    weights: MaybeWeightsDep,
) -> JSONResponse:
    if body.device not in settings.devices:
        raise ApiError(422, "device", f"{body.device!r} is not allowed here; allowed: {list(settings.devices)}")
    if body.device == "cuda" and not torch.cuda.is_available():
        raise ApiError(422, "device", "CUDA is not available on this server")
    if body.device == "cpu" and body.dtype == "float16":
        raise ApiError(422, "dtype", "float16 is for CUDA; use float32 or bfloat16 on the CPU")
    # The meta trace at the run's dtype gives its peak activations honestly (GroupNorm computes in float32).
    spec = await run_in_threadpool(resolve, body, settings, body.dtype)
    totals = (await store.get(spec)).totals
    dtype = parse_dtype(body.dtype)
    need = run_memory_bytes(totals["params"], totals["peak_activation_bytes"], body.device, dtype)
    if body.device == "cpu":
        # The profile runs in a process of its own, which costs what a warm worker measured before any task.
        need += pool.baseline_rss or 0
    free = available_bytes(torch.device(body.device))
    budget = min(free, settings.profile_memory_bytes) if settings.profile_memory_bytes else free
    if need > budget:
        raise ApiError(
            413,
            "preset" if body.preset else "config",
            f"a timed run needs about {need / 2**30:.1f} GiB (process, weights, activations); "
            f"the limit here is {budget / 2**30:.1f} GiB",
        )
    weights_path = None
    if body.use_weights:
        if weights is None:
            raise ApiError(422, "use_weights", "no weights file was given (start the server with --weights FILE)")
        if weights.config != spec.config:
            raise ApiError(422, "use_weights", f"the weights file {weights.path.name} holds another architecture")
        weights_path = str(weights.path)
    job = manager.submit(spec, body.device, body.dtype, body.repeats, body.warmup, weights_path)
    return JSONResponse({"id": job.id, "state": job.state, "position": manager.position(job)}, status_code=202)


@router.get("/{job_id}")
def status(job_id: str, manager: ProfilesDep) -> dict[str, Any]:
    return manager.snapshot(manager.get(job_id))


@router.delete("/{job_id}")
def cancel(job_id: str, manager: ProfilesDep) -> dict[str, Any]:
    job = manager.cancel(job_id)
    snap = manager.snapshot(job)
    snap.pop("result")
    return snap


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "progress events, then 'end'"}},
)
async def events(job_id: str, manager: ProfilesDep) -> StreamingResponse:
    job = manager.get(job_id)

    async def stream() -> AsyncIterator[str]:
        seen = 0
        while True:
            new = manager.events_since(job, seen)
            seen += len(new)
            for event in new:  # every change, in order, however late this stream reads
                data = {**event, "position": manager.position(job)}
                yield f"event: progress\ndata: {json.dumps(data)}\n\n"
                if event["state"] in TERMINAL:
                    yield f"event: end\ndata: {json.dumps({'state': job.state, 'error': job.error})}\n\n"
                    return
            if not new:
                yield ": keep-alive\n\n"
            # An idle stream waits on the event loop for the job's next change: no thread per stream.
            await manager.changed(job, seen, KEEP_ALIVE_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
