"""Timed profiles: POST /api/profile queues a job; GET polls it; /events streams its progress; DELETE cancels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import torch
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.errors import ERROR_RESPONSES, ApiError
from app.jobs import TERMINAL, ProfileManager
from app.schemas import ProfileRequest
from app.settings import Settings, get_settings
from app.tracing import TraceCache, resolve
from sdunet_core.trace import available_bytes, parse_dtype, run_memory_bytes

router = APIRouter(prefix="/api/profile", tags=["profile"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_manager(request: Request) -> ProfileManager:
    return request.app.state.profiles


ManagerDep = Annotated[ProfileManager, Depends(get_manager)]


@router.post("", status_code=202, responses={202: {"description": "queued: {id, state, position}"}})
def submit(body: ProfileRequest, request: Request, settings: SettingsDep, manager: ManagerDep) -> JSONResponse:
    if body.device not in settings.devices:
        raise ApiError(422, "device", f"{body.device!r} is not allowed here; allowed: {list(settings.devices)}")
    if body.device == "cuda" and not torch.cuda.is_available():
        raise ApiError(422, "device", "CUDA is not available on this server")
    if body.device == "cpu" and body.dtype == "float16":
        raise ApiError(422, "dtype", "float16 is for CUDA; use float32 or bfloat16 on the CPU")
    spec = resolve(body, settings)
    # Check memory before any weight is made: weights + peak activations from the (cached) meta trace.
    cache: TraceCache = request.app.state.trace_cache
    totals = cache.get(spec).totals
    dtype = parse_dtype(body.dtype)
    # The cached trace is in float32; activations scale with the element size.
    peak = totals["peak_activation_bytes"] * torch.empty((), dtype=dtype).element_size() // 4
    need = run_memory_bytes(totals["params"], peak, body.device, dtype)
    free = available_bytes(torch.device(body.device))
    budget = min(free, settings.profile_memory_bytes) if settings.profile_memory_bytes else free
    if need > budget:
        raise ApiError(
            413,
            "preset" if body.preset else "config",
            f"a timed run needs about {need / 2**30:.1f} GiB (weights + activations); "
            f"the limit here is {budget / 2**30:.1f} GiB",
        )
    weights_path = None
    if body.use_weights:
        weights = request.app.state.weights
        if weights is None:
            raise ApiError(422, "use_weights", "no weights file was given (start the server with --weights FILE)")
        if weights.config != spec.config:
            raise ApiError(422, "use_weights", f"the weights file {weights.path.name} holds another architecture")
        weights_path = str(weights.path)
    job = manager.submit(spec, body.device, body.dtype, body.repeats, body.warmup, weights_path)
    return JSONResponse({"id": job.id, "state": job.state, "position": manager.position(job)}, status_code=202)


@router.get("/{job_id}")
def status(job_id: str, manager: ManagerDep) -> dict[str, Any]:
    return manager.snapshot(manager.get(job_id))


@router.delete("/{job_id}")
def cancel(job_id: str, manager: ManagerDep) -> dict[str, Any]:
    job = manager.cancel(job_id)
    snap = manager.snapshot(job)
    snap.pop("result")
    return snap


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "progress events, then 'end'"}},
)
async def events(job_id: str, manager: ManagerDep) -> StreamingResponse:
    job = manager.get(job_id)

    async def stream() -> AsyncIterator[str]:
        version = -1
        while True:
            if job.version != version:
                version = job.version
                data = {**job.progress(), "state": job.state, "position": manager.position(job)}
                yield f"event: progress\ndata: {json.dumps(data)}\n\n"
                if job.state in TERMINAL:
                    yield f"event: end\ndata: {json.dumps({'state': job.state, 'error': job.error})}\n\n"
                    return
            else:
                yield ": keep-alive\n\n"
            # Wait in a thread for the next change so the event loop stays free.
            await asyncio.to_thread(manager.wait_for_change, job, version, 5.0)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
