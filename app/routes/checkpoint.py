"""POST /api/checkpoint/detect: name the UNet architecture of a checkpoint from its safetensors header.

The page reads the header out of the user's file in the browser (the first 8 + n bytes) and sends it, so the
weights never leave the machine. The body is the header JSON itself, `{"<tensor>": {"dtype", "shape",
"data_offsets"?}, "__metadata__"?: {...}}`, or those first 8 + n bytes as they are, sent as application/json
(the middleware refuses other content types, so no other site can post here from a user's browser). Bad input
is a 4xx in the API's error shape (`field`, `reason`): 400 for a body that is not JSON, 413 past the size limit
or the model limits, 422 for a header that holds no UNet or shapes that fit none. The detection, which builds
the detected model on the meta device to compare shapes, runs in a worker process under the trace time limit.
Tensor names come back as plain JSON strings; the page renders them with textContent.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from app.deps import PoolDep, SettingsDep
from app.errors import ERROR_RESPONSES, ApiError
from app.resolve import cost_limits
from sdunet_core.checkpoint.detect import DetectionReport
from sdunet_core.control.detect import ControlDetectionReport

router = APIRouter(prefix="/api/checkpoint", tags=["checkpoint"], responses=ERROR_RESPONSES)

# An SDXL header is about 200 kB; 16 MB leaves room for odd files and bounds the JSON parse.
MAX_BODY_BYTES = 16 * 1024 * 1024

_BODY_SCHEMA = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "A safetensors header: tensor name -> {dtype, shape, data_offsets?}, and __metadata__?",
                "additionalProperties": {"type": "object"},
            }
        }
    },
}


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes the limit (by its Content-Length or while streaming)."""
    declared = request.headers.get("content-length")
    too_large = f"is larger than {MAX_BODY_BYTES} bytes; send the safetensors header, not the file"
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "body", "Content-Length is not a number")
        if int(declared) > MAX_BODY_BYTES:
            raise ApiError(413, "body", too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "body", too_large)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/detect", response_model=DetectionReport | ControlDetectionReport, openapi_extra={"requestBody": _BODY_SCHEMA}
)
async def detect(request: Request, settings: SettingsDep, pool: PoolDep) -> DetectionReport | ControlDetectionReport:
    """The UNet's prefix, key format, config, preset, and how the file fits UNetModel(config); for a ControlNet,
    T2I-Adapter or control-LoRA (a body with `kind`), its layout, family, injection points and size."""
    body = await _read_body(request)
    task = pool.submit(
        "detect", body, cost_limits(settings), time_limit_s=settings.trace_time_limit_s, what="the detection"
    )
    result = await asyncio.wrap_future(task)
    if "kind" in result:
        return ControlDetectionReport.model_validate(result)
    return DetectionReport.model_validate(result)
