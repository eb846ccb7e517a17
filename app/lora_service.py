"""A LoRA file's detection with the FLOPs it adds, as /api/lora/detect answers it: the work of a trace worker
(app.workers.tasks), since matching a family builds the candidate presets' module tables and counting FLOPs traces
one."""

from __future__ import annotations

import math
from typing import Any

from app.errors import quote
from sdunet_core import PRESETS
from sdunet_core.checkpoint.header import CheckpointError, decode_header_json, parse_safetensors_header
from sdunet_core.errors import ConfigError
from sdunet_core.lora import add_flops, detect_lora
from sdunet_core.lora.detect import MAX_TENSORS
from sdunet_core.tracer.trace import trace_unet


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
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
        if not finite:
            raise CheckpointError("alphas", f"{name}: must be a finite number, got {quote(value)}")
    return {str(k): float(v) for k, v in raw.items()}


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer past any float (10**400)
        return False


def detect_report(
    body: bytes, preset: str | None, image_size: list[int] | None, batch: int, flops: bool
) -> dict[str, Any]:
    """The detection's JSON; with `flops`, the model traced at `image_size` (its reference input by default)."""
    header, alphas = _header_and_alphas(body)
    detection = detect_lora(header, preset=preset, alphas=alphas)
    if flops and detection.preset is not None:
        factor = PRESETS[detection.preset].latent_factor
        size = image_size * 2 if image_size is not None and len(image_size) == 1 else image_size
        if size is not None and any(s % factor for s in size):
            raise ConfigError("image_size", f"{size} must be a multiple of the latent factor {factor}")
        sample = tuple(s // factor for s in size) if size is not None else None
        try:
            trace = trace_unet(detection.preset, sample_size=sample, batch=batch)
        except ConfigError as exc:
            if exc.field != "sample_size":
                raise
            # The user gave pixels: name their field, and the latent the reason speaks of.
            raise ConfigError("image_size", f"{size} is a latent of {list(sample or ())}: {exc.reason}") from None
        inputs = trace.input
        traced = {"preset": detection.preset, "image_size": inputs.image_size, "sample_size": inputs.sample_size}
        add_flops(detection, trace.nodes, {**traced, "batch": batch})
    return detection.to_dict()
