"""Probes: POST /api/probes queues a probe run (202), GET /api/probes/{id} polls it, DELETE cancels it;
POST /api/correspondence matches a pixel between two pictures; POST /api/correspondence/pck queues a PCK run over
generated pairs (202, polled at /api/probes/{id} like a probe run).

Every request is checked here before anything runs: unknown points or targets, a model without trained weights
(refused unless random weights are asked for) and a bad timestep are 422s naming the field; too many pictures is
a 413 on n_images.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.errors import ERROR_RESPONSES, ApiError
from app.probe_jobs import ProbeJobs
from app.probe_schemas import CorrespondenceRequest, PCKRequest, ProbeJob, ProbeRequest
from sdunet_core.activations.conditioning import InputError
from sdunet_core.probes import MAX_IMAGES, Cancelled, ProbeSpec, check, run
from sdunet_core.probes.run import DEFAULT_TIMESTEPS, model_for

router = APIRouter(prefix="/api", tags=["probes"], responses=ERROR_RESPONSES)


def get_jobs(request: Request) -> ProbeJobs:
    # Made on first use: an app that never probes starts no thread.
    state = request.app.state
    if getattr(state, "probe_jobs", None) is None:
        state.probe_jobs = ProbeJobs()
    return state.probe_jobs


JobsDep = Annotated[ProbeJobs, Depends(get_jobs)]


def _spec(body: ProbeRequest) -> ProbeSpec:
    if body.n_images > MAX_IMAGES:
        raise ApiError(413, "n_images", f"{body.n_images} pictures is over the limit of {MAX_IMAGES} per probe run")
    if body.timestep is not None and body.timesteps is not None:
        raise ApiError(422, "timesteps", "give timestep or timesteps, not both")
    timesteps = [body.timestep] if body.timestep is not None else body.timesteps
    if timesteps is None:
        timesteps = list(DEFAULT_TIMESTEPS)
    spec = ProbeSpec(list(body.points), list(body.targets), timesteps, body.n_images, body.preset, body.weights)
    try:
        check(spec)
    except InputError as exc:
        raise ApiError(422, exc.field, exc.reason) from None
    return spec


@router.post("/probes", status_code=202, responses={202: {"description": "queued: {id, state}"}})
async def submit(body: ProbeRequest, jobs: JobsDep) -> JSONResponse:
    spec = await run_in_threadpool(_spec, body)
    job = jobs.submit(partial(run, spec))
    return JSONResponse({"id": job.id, "state": job.state}, status_code=202)


@router.get("/probes/{job_id}", response_model=ProbeJob)
def status(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return jobs.snapshot(jobs.get(job_id))


@router.delete("/probes/{job_id}", response_model=ProbeJob)
def cancel(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return jobs.snapshot(jobs.cancel(job_id))


def _require_weights() -> None:
    try:
        check(ProbeSpec(points=["unet-in"], n_images=256))
    except InputError as exc:
        raise ApiError(422, exc.field, exc.reason) from None


@router.post("/correspondence")
def correspondence(body: CorrespondenceRequest) -> dict[str, Any]:
    from sdunet_core.probes.correspondence import match
    from sdunet_core.twin.sampling import one_thread

    _require_weights()
    try:
        with one_thread():
            return match(model_for("shipped"), body.point, body.t, body.source_seed, body.target_seed, body.x, body.y)
    except InputError as exc:
        raise ApiError(422, exc.field, exc.reason) from None


@router.post("/correspondence/pck", status_code=202, responses={202: {"description": "queued: {id, state}"}})
async def correspondence_pck(body: PCKRequest, jobs: JobsDep) -> JSONResponse:
    from sdunet_core.probes.correspondence import check_pck

    await run_in_threadpool(_require_weights)
    try:
        await run_in_threadpool(check_pck, list(body.points), body.t, body.n_pairs)
    except InputError as exc:
        raise ApiError(422, exc.field, exc.reason) from None
    job = jobs.submit(partial(_pck, list(body.points), body.t, body.n_pairs))
    return JSONResponse({"id": job.id, "state": job.state}, status_code=202)


def _pck(points: list[str], t: int, n_pairs: int, progress, cancelled) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from sdunet_core.probes.correspondence import PCK_ALPHA, pck
    from sdunet_core.twin.sampling import one_thread

    def step(phase: str, done: int, total: int) -> None:
        if cancelled():
            raise Cancelled
        progress(phase, done, total)

    with one_thread():
        rows = pck(model_for("shipped"), points, t, n_pairs, progress=step)
    return {"alpha": PCK_ALPHA, "keypoints": "object centres of one-object scenes", "rows": [asdict(r) for r in rows]}
