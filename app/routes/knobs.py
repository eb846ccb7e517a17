"""/api/ablation: the twin's blocks (or skips) removed one at a time over seeds and captions, as a job.

POST checks the request (captions against the vocabulary: a 422 naming `prompts[i]`) and answers 202 with the
job's id; GET /api/ablation/{id} gives its state, progress (the baseline, then one per target) and, once done, the
effect per target. Interventions on one picture go through POST /api/generate's `interventions`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.errors import ERROR_RESPONSES
from app.knobs_schemas import AblationJob, AblationRequest
from app.routes.twin import _require_weights, check_caption
from app.workers.ablation import jobs_for

router = APIRouter(prefix="/api/ablation", tags=["twin"], responses=ERROR_RESPONSES)


@router.post("", status_code=202, responses={202: {"description": "queued: {id, state, progress}"}})
def submit(body: AblationRequest, request: Request) -> JSONResponse:
    _require_weights()
    for i, prompt in enumerate(body.prompts):
        check_caption(prompt, f"prompts[{i}]")
    job = jobs_for(request.app).submit(body.model_dump())
    return JSONResponse(job.snapshot(), status_code=202)


@router.get("/{job_id}", response_model=AblationJob)
def status(job_id: str, request: Request) -> dict[str, Any]:
    return jobs_for(request.app).get(job_id).snapshot()
