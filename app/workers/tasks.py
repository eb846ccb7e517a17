"""The work that runs in the trace workers (app.workers.child.worker_main): everything that builds a model.

Each task takes and returns plain data (it crosses a pipe). A request the task must refuse raises `Refusal`
with the status, field and reason the API answers; `ConfigError` and `CheckpointError` become refusals here.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import Any

import torch

from app.limits import CostLimits, check_raw_config
from sdunet_core import UNetConfig, UNetModel
from sdunet_core.checkpoint.detect import CheckpointError, detect_unet
from sdunet_core.checkpoint.diffusers_keys import keymap_for, unsupported_reason
from sdunet_core.checkpoint.header import decode_header_json, parse_safetensors_header
from sdunet_core.model.config import ConfigError
from sdunet_core.tracer.trace import trace_totals, trace_unet


class Refusal(Exception):
    """A request refused from inside a worker: the API answers status, field, reason."""

    def __init__(self, status: int, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


def warm() -> None:
    """What the first real task would otherwise pay: torch's lazy initialisation and the tracer's code paths."""
    trace_unet("tiny")


def trace(
    preset: str | None,
    config: dict[str, Any],
    sample_size: tuple[int, ...],
    batch: int,
    context_tokens: int | None,
    dtype: str,
    control: dict[str, Any] | None = None,
    control_scales: list[float] | None = None,
) -> tuple[bytes, bytes, str, dict[str, Any], dict[str, Any]]:
    """A meta trace, serialized: (JSON, gzipped JSON, ETag, totals, input). A preset is traced by its name, so
    that the trace is labelled with the name the user asked for (sd2-v, not sd2, which has the same network).
    With `control` (a ControlNet preset's config), the ControlNet is traced, with its injections."""
    try:
        inputs = {"sample_size": sample_size, "batch": batch, "context_tokens": context_tokens, "dtype": dtype}
        if control is not None:
            from sdunet_core.control.controlnet import ControlNetConfig
            from sdunet_core.control.trace import trace_controlnet

            model = preset if preset is not None else ControlNetConfig.from_dict(control)
            result = trace_controlnet(model, control_scales=control_scales, **inputs)
        else:
            target = preset if preset is not None else UNetConfig.from_dict(config)
            result = trace_unet(target, **inputs)
    except ConfigError as exc:
        raise Refusal(422, exc.field, exc.reason) from None
    body = result.to_json()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    totals, inputs = result.totals.model_dump(mode="json"), result.input.model_dump(mode="json")
    return body, gzip.compress(body, 6), etag, totals, inputs


def totals(
    preset: str | None,
    config: dict[str, Any],
    sample_sizes: list[tuple[int, ...]],
    batch: int,
    context_tokens: int | None,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Whole-model figures at several sizes (a scaling sweep): [(input, totals)], one meta model for all."""
    try:
        target = preset if preset is not None else UNetConfig.from_dict(config)
        out = trace_totals(target, sample_sizes, batch=batch, context_tokens=context_tokens)
    except ConfigError as exc:
        raise Refusal(422, exc.field, exc.reason) from None
    return [(inp.model_dump(mode="json"), tot.model_dump(mode="json")) for inp, tot in out]


def detect(body: bytes, limits: CostLimits) -> dict[str, Any]:
    """POST /api/checkpoint/detect's answer for a header (JSON, or a file's first 8 + n bytes)."""

    def bounded(config: UNetConfig) -> None:
        # Before the detection builds UNetModel(config) to compare shapes: the same bounds as a config request.
        from app.errors import ApiError
        from sdunet_core.tracer.trace import default_sample_size

        try:
            check_raw_config(config.to_dict())
            limits.check_config(config, default_sample_size(config), model_field="shapes")
        except ApiError as exc:
            raise Refusal(exc.status, exc.field, f"the architecture read from the shapes: {exc.reason}") from None

    try:
        if not body.strip():
            raise CheckpointError("body", "is empty; send the safetensors header JSON")
        if body[8:9] == b"{" and not body.lstrip().startswith(b"{"):
            header = parse_safetensors_header(body)  # the file's first bytes: length, then the JSON
        else:
            header = decode_header_json(body, field="body")
        from sdunet_core.control.detect import detect_control

        control = detect_control(header)  # a ControlNet, T2I-Adapter or control-LoRA; else the file's UNet
        if control is not None:
            return control.model_dump(mode="json")
        return detect_unet(header, check=bounded).to_dict()
    except CheckpointError as exc:
        raise Refusal(400 if exc.field in ("body", "header_length") else 422, exc.field, exc.reason) from None
    except ConfigError as exc:
        raise Refusal(422, exc.field, exc.reason) from None


def lora(body: bytes, preset: str | None, image_size: list[int] | None, batch: int, flops: bool) -> dict[str, Any]:
    """POST /api/lora/detect's answer (app.lora_service)."""
    from app.lora_service import detect_report

    try:
        return detect_report(body, preset, image_size, batch, flops)
    except CheckpointError as exc:
        status = 400 if exc.field in ("body", "header_length") else 404 if exc.field == "preset" else 422
        raise Refusal(status, exc.field, exc.reason) from None
    except ConfigError as exc:
        raise Refusal(422, exc.field, exc.reason) from None


def names(config: dict[str, Any]) -> dict[str, Any]:
    """POST /api/names's table: every block and module in every naming scheme (builds the model on meta)."""
    from sdunet_core.names import names_table

    return names_table(UNetConfig.from_dict(config))


def catalog(config: dict[str, Any], sample_size: tuple[int, ...], tokens: int) -> tuple:
    """The activation points of a model at a latent size and context length, with their shapes (a meta forward)."""
    from sdunet_core.activations.catalog import catalog as points

    return points(UNetConfig.from_dict(config), tuple(sample_size), tokens)


def diffusers_names(config: dict[str, Any], control: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our module path -> the diffusers module path, for modules that hold weights (of the ControlNet with
    `control`)."""
    cfg = UNetConfig.from_dict(config)
    reason = unsupported_reason(cfg)
    if control is not None:
        from sdunet_core.control.controlnet import ControlNetConfig, ControlNetModel
        from sdunet_core.control.keys import controlnet_keymap

        control_config = ControlNetConfig.from_dict(control)
        keymap = None if reason else controlnet_keymap(control_config)
        build: Any = lambda: ControlNetModel(control_config)  # noqa: E731
    else:
        keymap = None if reason else keymap_for(cfg)
        build = lambda: UNetModel(cfg)  # noqa: E731
    if keymap is None:
        return {"supported": False, "reason": reason or "diffusers has no layout for this model", "names": {}}
    with torch.device("meta"):
        modules = [(p, m) for p, m in build().named_modules() if p]
    names = {p: keymap.to_diffusers(p) if any(True for _ in m.parameters()) else None for p, m in modules}
    return {"supported": True, "reason": None, "names": names}


TASKS = {
    "trace": trace,
    "totals": totals,
    "detect": detect,
    "lora": lora,
    "names": names,
    "catalog": catalog,
    "diffusers_names": diffusers_names,
}
