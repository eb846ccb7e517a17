"""Probes: GET /api/probes/models says what can be probed here (the twin; the server's checkpoint where it has
one), POST /api/probes queues a probe run (202), GET /api/probes/{id} polls it, DELETE cancels it;
POST /api/correspondence matches a pixel between two pictures; POST /api/correspondence/pck queues a PCK run over
generated pairs (202, polled at /api/probes/{id} like a probe run).

Every request is checked here before anything runs: unknown points or targets, a model without trained weights
(refused unless random weights are asked for), `model: "checkpoint"` on a server started without one, and a bad
timestep are 422s naming the field; too many pictures (fewer for a checkpoint) is a 413 on n_images.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.errors import ERROR_RESPONSES, ApiError
from app.schemas.probes import CorrespondenceRequest, PCKRequest, ProbeJob, ProbeModel, ProbeRequest
from app.workers.probe_runs import ProbeJobs
from sdunet_core.activations.conditioning import InputError
from sdunet_core.probes import MAX_IMAGES, Cancelled, ProbeSpec, check, run
from sdunet_core.probes.checkpoint import MAX_IMAGES as CHECKPOINT_MAX_IMAGES
from sdunet_core.probes.run import DEFAULT_TIMESTEPS, model_for

router = APIRouter(prefix="/api", tags=["probes"], responses=ERROR_RESPONSES)


def get_jobs(request: Request) -> ProbeJobs:
    # Made on first use: an app that never probes starts no thread.
    state = request.app.state
    if getattr(state, "probe_jobs", None) is None:
        state.probe_jobs = ProbeJobs()
    return state.probe_jobs


JobsDep = Annotated[ProbeJobs, Depends(get_jobs)]


def _spec(body: ProbeRequest, request: Request) -> ProbeSpec:
    limit = CHECKPOINT_MAX_IMAGES if body.model == "checkpoint" else MAX_IMAGES
    if body.n_images > limit:
        raise ApiError(413, "n_images", f"{body.n_images} pictures is over the limit of {limit} per probe run on the "
                       f"{body.model}")  # fmt: skip
    if body.timestep is not None and body.timesteps is not None:
        raise ApiError(422, "timesteps", "give timestep or timesteps, not both")
    timesteps = [body.timestep] if body.timestep is not None else body.timesteps
    if timesteps is None:
        timesteps = list(DEFAULT_TIMESTEPS)
    weights = getattr(request.app.state, "weights", None)  # the server's checkpoint, if it was started with one
    checkpoint = str(weights.path) if weights is not None else None
    spec = ProbeSpec(list(body.points), list(body.targets), timesteps, body.n_images, body.preset, body.weights,
                     body.model, checkpoint)  # fmt: skip
    try:
        check(spec)
    except InputError as exc:
        raise ApiError(422, exc.field, exc.reason) from None
    return spec


@router.post("/probes", status_code=202, responses={202: {"description": "queued: {id, state}"}})
async def submit(body: ProbeRequest, request: Request, jobs: JobsDep) -> JSONResponse:
    spec = await run_in_threadpool(_spec, body, request)
    job = jobs.submit(partial(run, spec))
    return JSONResponse({"id": job.id, "state": job.state}, status_code=202)


@router.get("/probes/models", response_model=list[ProbeModel])
def models(request: Request) -> list[dict[str, Any]]:
    """What this server can probe: the twin always; its checkpoint where it was started with one (with the reason
    when that file cannot be probed: no VAE or no text encoder)."""
    from sdunet_core.probes import checkpoint as ckpt

    out: list[dict[str, Any]] = [{"model": "twin", "file": None, "max_images": MAX_IMAGES, "image_size": 32,
                                  "usable": True, "reason": None}]  # fmt: skip
    weights = getattr(request.app.state, "weights", None)
    if weights is not None:
        try:
            ckpt.check_file(weights.path)
            reason = None
        except InputError as exc:
            reason = exc.reason
        out.append({"model": "checkpoint", "file": weights.path.name, "max_images": CHECKPOINT_MAX_IMAGES,
                    "image_size": ckpt.IMAGE_SIZE, "usable": reason is None, "reason": reason})  # fmt: skip
    return out


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
