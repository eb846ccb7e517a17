"""POST /api/checkpoint/detect: name the UNet architecture of a checkpoint from its safetensors header.

The page reads the header out of the user's file in the browser (the first 8 + n bytes) and sends it, so the
weights never leave the machine. The body is the header JSON itself, `{"<tensor>": {"dtype", "shape",
"data_offsets"?}, "__metadata__"?: {...}}`, or those first 8 + n bytes as they are. Bad input is a 4xx in the
API's error shape (`field`, `reason`): 400 for a body that is not JSON, 413 past the size limit, 422 for a
header that holds no UNet or shapes that fit none. Tensor names come back as plain JSON strings; the page
renders them with textContent.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from app.errors import ERROR_RESPONSES, ApiError
from sdunet_core.checkpoint import CheckpointError, DetectionReport, detect_unet
from sdunet_core.header import decode_header_json, parse_safetensors_header

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
            raise ApiError(400, "body", f"Content-Length {declared!r} is not a number")
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


def _detect(body: bytes) -> DetectionReport:
    if not body.strip():
        raise CheckpointError("body", "is empty; send the safetensors header JSON")
    if body[8:9] == b"{" and not body.lstrip().startswith(b"{"):
        header = parse_safetensors_header(body)  # the file's first bytes: length, then the JSON
    else:
        header = decode_header_json(body, field="body")
    return detect_unet(header).report()


@router.post("/detect", response_model=DetectionReport, openapi_extra={"requestBody": _BODY_SCHEMA})
async def detect(request: Request) -> DetectionReport:
    """The UNet's prefix, key format, config, preset, and how the file fits UNetModel(config)."""
    body = await _read_body(request)
    try:
        # Plain CPU work (a meta-device model build): off the event loop.
        return await run_in_threadpool(_detect, body)
    except CheckpointError as exc:
        status = 400 if exc.field in ("body", "header_length") else 422
        raise ApiError(status, exc.field, exc.reason) from None
