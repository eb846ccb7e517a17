"""/api/twin and /api/generate: the trained small model, and its denoising loop opened step by step.

GET /api/twin says what the twin is (its words by role, example captions, the training record) without loading
it. POST /api/generate checks the caption against the vocabulary here (a 422 on `prompt` naming the word) and its
`interventions` (a 422 naming e.g. `interventions[1].blocks`; sdunet_core.twin.knobs), then runs the loop in the
capture child process, like every forward with weights: bounded in time, killed past it.
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request

from app.errors import ERROR_RESPONSES, ApiError
from app.schemas.twin import GenerateRequest, GenerateResponse, TwinInfo
from app.workers.captures import worker_for
from sdunet_core import PRESETS
from sdunet_core.twin import PRESET, SAMPLERS, weights_shipped, world
from sdunet_core.twin.knobs import KnobError, parse_knobs
from sdunet_core.twin.model import RECORD
from sdunet_core.twin.text import MAX_TOKENS, WordTokenizer

router = APIRouter(prefix="/api", tags=["twin"], responses=ERROR_RESPONSES)


@lru_cache(maxsize=1)
def _record() -> dict[str, Any]:
    return json.loads(RECORD.read_text()) if weights_shipped() else {}


def _require_weights() -> None:
    if not weights_shipped():
        raise ApiError(503, None, "the twin's weights are not installed with this package", {"Retry-After": "3600"})


@router.get("/twin", response_model=TwinInfo)
def twin_info(request: Request) -> dict[str, Any]:
    _require_weights()
    preset = PRESETS[PRESET]
    return {
        "preset": PRESET,
        "image_size": list(preset.sample_size),
        "context_tokens": MAX_TOKENS,
        "vocabulary": {role: list(words) for role, words in world.VOCABULARY.items()},
        "examples": {
            "one_object": [c for c in world.EXAMPLES if " of " not in c and "above" not in c],
            "two_objects": [c for c in world.EXAMPLES if " of " in c or "above" in c],
        },
        "samplers": list(SAMPLERS),
        "defaults": GenerateRequest().model_dump(by_alias=True),
        "training": _record(),
        "loaded": worker_for(request.app).twin_loaded,
    }


def check_caption(text: str, field: str) -> None:
    try:
        WordTokenizer().check(text)
    except ValueError as exc:  # an UnknownWord names the word and the vocabulary
        raise ApiError(422, field, str(exc)) from None


@router.post("/generate", response_model=GenerateResponse)
async def generate(body: GenerateRequest, request: Request) -> dict[str, Any]:
    _require_weights()
    check_caption(body.prompt, "prompt")
    check_caption(body.negative, "negative")
    if body.interventions:
        try:
            parse_knobs(body.interventions, prompt=body.prompt, steps=body.steps, config=PRESETS[PRESET].config)
        except KnobError as exc:
            raise ApiError(422, exc.field, exc.reason) from None
    job = body.model_dump(by_alias=True)
    # Awaited, not waited for in a thread: a generation queued behind a capture holds no threadpool thread.
    return await asyncio.wrap_future(worker_for(request.app).submit("generate", job))
