"""POST /api/lora/detect: what a LoRA file holds, from its safetensors header, and where it lands on the U.

The body is what /api/checkpoint/detect takes (the header JSON, or the file's first 8 + n bytes as they are), or
`{"header": {...}, "alphas": {"<name>.alpha": value}}` when the caller read the alpha scalars from the file.
The query says which model to match against (`preset`, by default the detected family's) and what to trace for the
FLOPs (`image_size`, `batch`; the preset's reference input by default). 400: a body that is no JSON or header,
413: past the size limit, 422: a header that is no LoRA (a checkpoint, a VAE, an embedding) or fits no model.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.errors import ERROR_RESPONSES, ApiError
from app.lora_schemas import LoraDetection
from app.routes.checkpoint import _BODY_SCHEMA, _read_body
from app.schemas import TraceRequest
from app.settings import Settings, get_settings
from app.tracing import TraceCache, resolve
from sdunet_core.header import CheckpointError, decode_header_json, parse_safetensors_header
from sdunet_core.lora import add_flops, detect_lora
from sdunet_core.lora.detect import MAX_TENSORS
from sdunet_core.schema import Trace

router = APIRouter(prefix="/api/lora", tags=["lora"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _header_and_alphas(body: bytes) -> tuple[dict[str, Any], dict[str, float]]:
    if not body.strip():
        raise CheckpointError("body", "is empty; send the safetensors header JSON")
    if body[8:9] == b"{" and not body.lstrip().startswith(b"{"):
        return parse_safetensors_header(body), {}  # the file's first bytes: length, then the JSON
    value = decode_header_json(body, field="body")
    if isinstance(value, dict) and isinstance(value.get("header"), dict) and "dtype" not in value["header"]:
        if set(value) - {"header", "alphas"}:
            raise CheckpointError("body", f"holds {sorted(set(value) - {'header', 'alphas'})} beside header, alphas")
        return value["header"], _alphas(value.get("alphas", {}))
    return value, {}


def _alphas(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict) or len(raw) > MAX_TENSORS:
        raise CheckpointError("alphas", f"must be an object of at most {MAX_TENSORS} tensor name -> number")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CheckpointError("alphas", f"{name}: must be a finite number, got {value!r}")
    return {str(k): float(v) for k, v in raw.items()}


def _detect(
    body: bytes,
    preset: str | None,
    image_size: list[int] | None,
    batch: int,
    flops: bool,
    request: Request,
    settings: Settings,
) -> dict[str, Any]:
    header, alphas = _header_and_alphas(body)
    detection = detect_lora(header, preset=preset, alphas=alphas)
    if flops:
        size = image_size * 2 if image_size is not None and len(image_size) == 1 else image_size
        spec = resolve(TraceRequest(preset=detection.preset, image_size=size, batch=batch), settings)
        cache: TraceCache = request.app.state.trace_cache
        trace = Trace.model_validate_json(cache.get(spec).body)
        add_flops(detection, trace.nodes, _traced_input(spec, trace))
    return detection.to_dict()


def _traced_input(spec: Any, trace: Trace) -> dict[str, Any]:
    return {
        "preset": spec.preset,
        "image_size": trace.input.image_size,
        "sample_size": list(spec.sample_size),
        "batch": spec.batch,
    }


@router.post("/detect", response_model=LoraDetection, openapi_extra={"requestBody": _BODY_SCHEMA})
async def detect(
    request: Request,
    settings: SettingsDep,
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
    body = await _read_body(request)
    try:
        # Parsing, a meta-device model build and the trace: all off the event loop.
        return await run_in_threadpool(_detect, body, preset, image_size, batch, flops, request, settings)
    except CheckpointError as exc:
        status = 400 if exc.field in ("body", "header_length") else 404 if exc.field == "preset" else 422
        raise ApiError(status, exc.field, exc.reason) from None
