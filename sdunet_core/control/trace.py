"""trace_controlnet: the typed trace of a ControlNet's forward, and where each of its outputs lands in the UNet.

The same meta forward as `trace_unet` (hooks on every module, FLOPs and memory at dispatch, repeats replayed) on a
`ControlNetModel`, so nodes, blocks and totals mean what they mean for a UNet. The trace adds `control`: the
control image, the hint encoder and one `Injection` per output — which zero conv makes it, which UNet skip (or
the middle block) it is added to and which output block receives the sum, its shape, its zero conv's parameters
and FLOPs, and the control scale it is multiplied by (lllyasviel/ControlNet `cldm/cldm.py`: `ControlLDM` scales,
`ControlledUnetModel` adds). The scales change no FLOP count: torch counts no elementwise products.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from ..errors import ConfigError, quote
from ..model.plan import plan_blocks
from ..schema import ControlInfo, Injection, Node, Trace
from ..tracer.counting import FlopAndMemoryMode
from ..tracer.inputs import (
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_LATENT_FACTOR,
    dtype_name,
    make_inputs,
    parse_dtype,
    positive_int,
)
from ..tracer.structure import record_nodes, tensor_spec
from ..tracer.trace import _META_LOCK, _blocks, _totals, _trace_input
from .controlnet import ControlNetConfig, ControlNetModel
from .presets import ControlNetPreset, load_controlnet_preset

MAX_CONTROL_SCALE = 10.0


def check_scales(scales: list[float] | tuple[float, ...] | None, count: int) -> list[float]:
    """The control scales (all 1.0 by default); ConfigError on `control_scales` for a wrong length or value."""
    if scales is None:
        return [1.0] * count
    if not isinstance(scales, (list, tuple)) or len(scales) != count:
        got = len(scales) if isinstance(scales, (list, tuple)) else quote(scales)
        raise ConfigError("control_scales", f"needs one scale per injection: {count} values, got {got}")
    out = []
    for i, s in enumerate(scales):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise ConfigError("control_scales", f"entry {i} must be a finite number, got {quote(s)}")
        if not 0.0 <= s <= MAX_CONTROL_SCALE:
            raise ConfigError("control_scales", f"entry {i} is {s}; scales go from 0 to {MAX_CONTROL_SCALE:g}")
        out.append(float(s))
    return out


def _injections(
    model: ControlNetModel, config: ControlNetConfig, by_path: dict[str, Node], scales: list[float]
) -> list[Injection]:
    # Which UNet output block reads each skip, from the UNet's own plan; the middle block's output goes to the first.
    ups = [b for b in plan_blocks(config.unet) if b.stage == "up"]
    consumer = {b.skip_from: b.path for b in ups}
    out = []
    for i, (zero_conv, target, plan) in enumerate(model.injections()):
        node = by_path[zero_conv]
        shape = node.outputs[0].shape  # type: ignore[index]
        middle = plan.stage == "mid"
        out.append(
            Injection(
                index=i,
                source=zero_conv,
                from_block=plan.path,
                target=target,
                added_to="middle" if middle else "skip",
                consumer=ups[0].path if middle else consumer[target],
                stage=plan.stage,
                level=plan.level,
                factor=plan.factor,
                channels=plan.out_channels,
                shape=list(shape),
                params=node.params,
                flops=node.flops,
                scale=scales[i],
            )
        )
    return out


def _resolve(model: ControlNetConfig | ControlNetPreset | str) -> tuple[ControlNetPreset | None, ControlNetConfig]:
    """(the preset, if one was given or named; the ControlNet's config); ConfigError on anything else."""
    if isinstance(model, str):
        model = load_controlnet_preset(model)
    preset = model if isinstance(model, ControlNetPreset) else None
    config = preset.config if preset is not None else model
    if not isinstance(config, ControlNetConfig):
        raise ConfigError("controlnet", f"must be a ControlNetConfig, a preset or a preset name, got {quote(model)}")
    return preset, config


def _input_size(
    config: ControlNetConfig,
    preset: ControlNetPreset | None,
    sample_size: tuple[int, ...] | None,
    batch: int,
    context_tokens: int | None,
) -> tuple[tuple[int, ...], int | None]:
    """(latent size, context tokens) to trace at, checked: a preset's reference input, else 64 latent pixels."""
    cfg = config.unet
    positive_int("batch", batch)
    if context_tokens is not None:
        positive_int("context_tokens", context_tokens)
    if cfg.use_spatial_transformer:
        tokens = context_tokens or (preset.context_tokens if preset else None) or DEFAULT_CONTEXT_TOKENS
    else:
        tokens = None
    if sample_size is None:
        side = max(cfg.downsample_factor, math.ceil(64 / cfg.downsample_factor) * cfg.downsample_factor)
        sample_size = preset.sample_size if preset else (side,) * cfg.dims
    size = tuple(sample_size)
    cfg.check_sample_size(size)
    return size, tokens


def _meta_forward(
    config: ControlNetConfig,
    size: tuple[int, ...],
    batch: int,
    tokens: int | None,
    dtype: torch.dtype,
    deadline: float | None,
) -> tuple[ControlNetModel, dict[str, torch.Tensor | None], list[dict[str, Any]], FlopAndMemoryMode]:
    """(the model, its inputs with the control image as `hint`, one record per module, the FLOP and memory mode)."""
    with _META_LOCK:
        with torch.device("meta"):
            net = ControlNetModel(config)
        net = net.to(dtype=dtype).eval()
        inputs = make_inputs(config.unet, size, batch, tokens, "meta", dtype)
        hint_size = [s * config.hint_factor for s in size]
        inputs["hint"] = torch.empty((batch, config.hint_channels, *hint_size), device="meta", dtype=dtype)
        records, mode = record_nodes(net, inputs, deadline)
    return net, inputs, records, mode


def _control_info(
    net: ControlNetModel,
    config: ControlNetConfig,
    preset: ControlNetPreset | None,
    hint: torch.Tensor,
    by_path: dict[str, Node],
    scales: list[float],
) -> ControlInfo:
    return ControlInfo(
        kind="controlnet",
        base_preset=preset.base_preset if preset else None,
        hint=tensor_spec(hint),
        hint_channels=config.hint_channels,
        hint_factor=config.hint_factor,
        hint_block="input_hint_block",
        hint_added_to="input_blocks.0",
        scales=scales,
        injections=_injections(net, config, by_path, scales),
    )


def trace_controlnet(
    model: ControlNetConfig | ControlNetPreset | str,
    *,
    sample_size: tuple[int, ...] | None = None,
    batch: int = 1,
    context_tokens: int | None = None,
    dtype: str | torch.dtype | None = None,
    control_scales: list[float] | None = None,
    time_limit_s: float | None = None,
) -> Trace:
    """Trace one ControlNet forward on the meta device: a config, a `ControlNetPreset` or a preset's name.

    A preset is traced at its UNet's reference input (the control image at hint_factor times the latent size); a
    config at 64 latent pixels per side. `control_scales` gives one scale per injection (1.0 each by default).
    """
    preset, config = _resolve(model)
    size, tokens = _input_size(config, preset, sample_size, batch, context_tokens)
    torch_dtype = parse_dtype(dtype)
    latent_factor = preset.latent_factor if preset else DEFAULT_LATENT_FACTOR
    # One scale per input block and one for the middle block; checked before anything is built.
    scales = check_scales(control_scales, config.num_injections)
    deadline = time.monotonic() + time_limit_s if time_limit_s is not None else None

    net, inputs, records, mode = _meta_forward(config, size, batch, tokens, torch_dtype, deadline)
    nodes = [Node.model_validate(r) for r in records]
    by_path = {n.path: n for n in nodes}
    unet_inputs = {k: v for k, v in inputs.items() if k != "hint"}
    return Trace(
        preset=preset.name if preset else None,
        config=config.unet.to_dict(),
        ldm_params=config.to_ldm_or_none(),
        input=_trace_input(latent_factor, size, batch, tokens, unet_inputs),
        device="meta",
        dtype=dtype_name(torch_dtype),
        torch=torch.__version__,
        totals=_totals(records, mode, torch.empty((), dtype=torch_dtype).element_size()),
        timing=None,
        blocks=_blocks(net, by_path),  # type: ignore[arg-type]
        skips=[],
        nodes=nodes,
        control=_control_info(net, config, preset, inputs["hint"], by_path, scales),
    )
