"""/api/ablation: the twin's blocks (or skips) removed one at a time over seeds and captions, as a job.

POST checks the request (captions against the vocabulary: a 422 naming `prompts[i]`) and answers 202 with the
job's id; GET /api/ablation/{id} gives its state, progress (the baseline, then one per target) and, once done, the
effect per target. Interventions on one picture go through POST /api/generate's `interventions`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.errors import ERROR_RESPONSES, ApiError
from app.routes.twin import _require_weights, check_caption
from app.schemas.knobs import AblationJob, AblationRequest
from app.workers.ablation import jobs_for

MAX_PICTURE_STEPS = 1280  # e.g. 64 pictures x 20 steps, or 8 seeds x 100 steps

router = APIRouter(prefix="/api/ablation", tags=["twin"], responses=ERROR_RESPONSES)


@router.post("", status_code=202, responses={202: {"description": "queued: {id, state, progress}"}})
def submit(body: AblationRequest, request: Request) -> JSONResponse:
    _require_weights()
    for i, prompt in enumerate(body.prompts):
        check_caption(prompt, f"prompts[{i}]")
    pictures = len(body.prompts) * len(body.seeds)
    if pictures * body.steps > MAX_PICTURE_STEPS:
        # A sweep samples every picture once per target (14 times): this keeps one under a minute or so on a CPU.
        raise ApiError(422, "seeds", f"{len(body.prompts)} captions x {len(body.seeds)} seeds x {body.steps} steps is "
                                     f"over the limit of {MAX_PICTURE_STEPS} picture-steps; give fewer")  # fmt: skip
    job = jobs_for(request.app).submit(body.model_dump())
    return JSONResponse(job.snapshot(), status_code=202)


@router.get("/{job_id}", response_model=AblationJob)
def status(job_id: str, request: Request) -> dict[str, Any]:
    return jobs_for(request.app).get(job_id).snapshot()
