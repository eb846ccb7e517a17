"""/api/interventions: knobs on the server's checkpoint (`serve --weights FILE`), as a job with progress.

POST checks everything before anything runs (a 422 naming `model` when the server has no checkpoint; the knobs'
fields as /api/generate names them; `prompt` past CLIP's 77 tokens; `image_size` not a multiple of what the UNet
halves to; a 413 on `image_size` past 512 x 512 pixels; `steps` past 50 is a 422) and answers 202 with the job's
id; GET /api/interventions/{id} gives its state, progress (steps run) and, once done, the result; DELETE cancels
it between two steps. The twin's knobs answer at once through POST /api/generate.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.deps import MaybeWeightsDep
from app.errors import ERROR_RESPONSES, ApiError
from app.schemas.knobs import InterventionJob, InterventionRequest
from app.workers.captures import model_bytes
from app.workers.interventions import jobs_for
from sdunet_core.activations.conditioning import InputError
from sdunet_core.activations.interventions import MAX_PIXELS, check
from sdunet_core.activations.session import latent_factor
from sdunet_core.twin.knobs import KnobError

router = APIRouter(prefix="/api/interventions", tags=["knobs"], responses=ERROR_RESPONSES)


def _plan(body: InterventionRequest, weights: Any) -> dict[str, Any]:
    if weights is None:
        raise ApiError(422, "model", "the server has no checkpoint: start it with --weights FILE (the twin's knobs "
                                     "run at once through POST /api/generate)")  # fmt: skip
    config = weights.config
    height, width = body.image_size
    if height * width > MAX_PIXELS:
        raise ApiError(413, "image_size", f"{height}x{width} is over the limit of {MAX_PIXELS} pixels (512x512) "
                                          "for a knob run on the CPU")  # fmt: skip
    f = latent_factor(config)
    if height < f or width < f or height % f or width % f:
        raise ApiError(422, "image_size", f"{height}x{width}: both sides must be multiples of {f} (the VAE's factor)")
    try:
        config.check_sample_size((height // f, width // f))
    except ValueError as exc:
        raise ApiError(422, "image_size", getattr(exc, "reason", str(exc))) from None
    job = body.model_dump()
    job["image_size"] = [height, width]
    try:
        check(config, job)
    except (KnobError, InputError) as exc:
        raise ApiError(422, exc.field, exc.reason) from None
    return job | {"config": config.to_dict(), "weights_path": str(weights.path), "preset": weights.detection.preset,
                  "model_bytes": model_bytes(config, True)}  # fmt: skip


@router.post("", status_code=202, responses={202: {"description": "queued: {id, state, progress}"}})
async def submit(body: InterventionRequest, request: Request, weights: MaybeWeightsDep) -> JSONResponse:
    job = await run_in_threadpool(_plan, body, weights)
    return JSONResponse(jobs_for(request.app).submit(job).snapshot(), status_code=202)


@router.get("/{job_id}", response_model=InterventionJob)
def status(job_id: str, request: Request) -> dict[str, Any]:
    return jobs_for(request.app).get(job_id).snapshot()


@router.delete("/{job_id}", response_model=InterventionJob)
def cancel(job_id: str, request: Request) -> dict[str, Any]:
    return jobs_for(request.app).cancel(job_id).snapshot()
