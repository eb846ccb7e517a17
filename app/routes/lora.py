"""POST /api/lora/detect: what a LoRA file holds, from its safetensors header, and where it lands on the U.

The body is what /api/checkpoint/detect takes (the header JSON, or the file's first 8 + n bytes as they are), or
`{"header": {...}, "alphas": {"<name>.alpha": value}}` when the caller read the alpha scalars from the file.
The query says which model to match against (`preset`, by default the detected family's) and what to trace for the
FLOPs (`image_size`, `batch`; the preset's reference input by default). 400: a body that is no JSON or header,
413: past the size limit, 422: a header that is no LoRA (a checkpoint, a VAE, an embedding) or fits no model.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.deps import PoolDep, SettingsDep
from app.errors import ERROR_RESPONSES, ApiError
from app.routes.checkpoint import _BODY_SCHEMA, _read_body
from app.schemas.lora import LoraDetection

router = APIRouter(prefix="/api/lora", tags=["lora"], responses=ERROR_RESPONSES)


@router.post("/detect", response_model=LoraDetection, openapi_extra={"requestBody": _BODY_SCHEMA})
async def detect(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    preset: Annotated[str | None, Query(description="match against this preset (default: the detected family)")] = None,
    image_size: Annotated[
        list[int] | None, Query(description="image size in pixels for the FLOPs: H and W, or one for a square")
    ] = None,
    batch: Annotated[int, Query(ge=1, description="batch size for the FLOPs")] = 1,
    flops: Annotated[bool, Query(description="trace the model to count the FLOPs the LoRA adds")] = True,
) -> Any:
    """The LoRA's format, base family, every patched module (rank, alpha, scale, parameters, FLOPs), the text
    encoder's part, unmatched tensors, and totals per top-level block and per block-weight ID."""
    if image_size is not None and len(image_size) not in (1, 2):
        raise ApiError(422, "image_size", f"give one size (a square) or two (H, W), got {image_size}")
    if image_size is not None and len(image_size) == 1:
        image_size = image_size * 2  # a square
    if image_size is not None and any(s > settings.max_image_size for s in image_size):
        limit = settings.max_image_size
        raise ApiError(413, "image_size", f"{image_size} is over the limit of {limit} pixels per side")
    if batch > settings.max_batch:
        raise ApiError(413, "batch", f"{batch} is over the limit of {settings.max_batch}")
    body = await _read_body(request)
    # Parsing, the family's module tables and the trace: in a worker process, under the time limit.
    task = pool.submit(
        "lora", body, preset, image_size, batch, flops, time_limit_s=settings.trace_time_limit_s, what="the detection"
    )
    return await asyncio.wrap_future(task)
