"""Turn a trace request into a `TraceSpec`, refusing what is invalid or over a limit before any model is built.

Order matters: the raw config dict is bounded first (app.limits.check_raw_config), then validated as a
`UNetConfig`, then the input is checked against the settings, and last the cost of the model and the forward
(app.limits.CostLimits) is estimated from the config alone. A preset keeps the name it was asked by; a custom
config gets none (no preset is guessed from a config).
"""

from __future__ import annotations

import dataclasses

from app.errors import ApiError, quote
from app.limits import CostLimits, check_raw_config, check_raw_diffusers_config
from app.schemas.trace import TraceRequest
from app.settings import Settings
from app.tracing import TraceSpec
from sdunet_core import PRESETS, ConfigError, UNetConfig
from sdunet_core.control.controlnet import ControlNetConfig
from sdunet_core.control.presets import CONTROLNET_PRESETS
from sdunet_core.control.trace import check_scales
from sdunet_core.model.diffusers_config import config_from_diffusers
from sdunet_core.model.diffusers_config import default_sample_size as diffusers_sample_size
from sdunet_core.tracer import DEFAULT_CONTEXT_TOKENS, DEFAULT_LATENT_FACTOR, default_sample_size

# The request fields that name a model: exactly one per request.
MODEL_FIELDS = ("preset", "config", "ldm_params", "diffusers_config")


def cost_limits(settings: Settings) -> CostLimits:
    return CostLimits(settings.max_modules, settings.max_params, settings.max_activation_bytes)


def _model(req: TraceRequest) -> tuple[UNetConfig, str | None, str]:
    """(config, preset name or None, the request field that gave the model)."""
    given = [k for k in MODEL_FIELDS if getattr(req, k) is not None]
    if len(given) != 1:
        raise ApiError(422, "preset", f"give exactly one of {', '.join(MODEL_FIELDS)} (got {given or 'none'})")
    if req.preset is not None:
        if req.preset not in PRESETS:
            # ControlNet presets are listed apart (GET /api/controlnet/presets).
            raise ApiError(404, "preset", f"unknown preset {quote(req.preset)}; known: {sorted(PRESETS)}")
        return PRESETS[req.preset].config, req.preset, "preset"
    if req.diffusers_config is not None:
        check_raw_diffusers_config(req.diffusers_config)
        return config_from_diffusers(req.diffusers_config), None, "diffusers_config"
    raw = req.config if req.config is not None else req.ldm_params
    check_raw_config(raw)
    if req.config is not None:
        return UNetConfig.from_dict(req.config), None, "config"
    return UNetConfig.from_ldm(req.ldm_params or {}), None, "ldm_params"


def default_from_config(req: TraceRequest) -> tuple[int, ...] | None:
    """A diffusers config's own sample_size, the input it is traced with when the request gives no size."""
    return diffusers_sample_size(req.diffusers_config) if req.diffusers_config is not None else None


def _sample(req: TraceRequest, config: UNetConfig, preset: str | None, settings: Settings) -> tuple[int, ...]:
    factor = PRESETS[preset].latent_factor if preset else DEFAULT_LATENT_FACTOR
    if req.image_size is not None and req.sample_size is not None:
        raise ApiError(422, "image_size", "give image_size or sample_size, not both")
    if req.image_size is not None:
        size = req.image_size
        if len(size) != config.dims:
            raise ApiError(422, "image_size", f"needs {config.dims} sizes, got {size}")
        if any(s > settings.max_image_size for s in size):
            raise ApiError(413, "image_size", f"{size} is over the limit of {settings.max_image_size} pixels per side")
        if any(s % factor for s in size):
            raise ApiError(422, "image_size", f"{size} must be a multiple of the latent factor {factor}")
        sample = tuple(s // factor for s in size)
    elif req.sample_size is not None or default_from_config(req) is not None:
        field = "sample_size" if req.sample_size is not None else "diffusers_config"
        sample = tuple(req.sample_size) if req.sample_size is not None else default_from_config(req)
        if any(s * factor > settings.max_image_size for s in sample):
            raise ApiError(
                413,
                field,
                f"{list(sample)} is over the limit of {settings.max_image_size // factor} latent pixels per side",
            )
    else:
        if config.downsample_factor * factor > settings.max_image_size:
            # The smallest input the U takes is 2 ** (levels - 1) latent pixels per side.
            raise ApiError(
                413,
                "channel_mult",
                f"{config.num_levels} levels need inputs of at least {config.downsample_factor * factor} pixels "
                f"per side, over the limit of {settings.max_image_size}",
            )
        sample = default_sample_size(config, preset)
    try:
        config.check_sample_size(sample)
    except ConfigError as exc:
        field = "image_size" if req.image_size is not None else "sample_size"
        raise ApiError(422, field, exc.reason) from None
    return sample


def _resolve_control(req: TraceRequest, settings: Settings, dtype: str) -> TraceSpec:
    """A ControlNet preset: resolved as the UNet it steers (its input, its limits), then named and given the
    ControlNet and the control scales."""
    control = CONTROLNET_PRESETS[req.preset]  # type: ignore[index]
    base = resolve(req.model_copy(update={"preset": control.base_preset, "control_scales": None}), settings, dtype)
    try:
        scales = check_scales(req.control_scales, control.config.num_injections)
    except ConfigError as exc:
        raise ApiError(422, exc.field, exc.reason) from None
    return dataclasses.replace(
        base, config=control.config.unet, preset=req.preset, control=control.config, control_scales=tuple(scales)
    )


def _resolve_custom_control(req: TraceRequest, settings: Settings, dtype: str) -> TraceSpec:
    """A ControlNet on the UNet the request names: resolved as that UNet, then given the ControlNet. The trace is
    nobody's preset (its `control.base_preset` is null)."""
    if req.preset in CONTROLNET_PRESETS:
        raise ApiError(422, "controlnet", f"{req.preset} is a ControlNet already; name a UNet preset or config")
    base = resolve(req.model_copy(update={"controlnet": None, "control_scales": None}), settings, dtype)
    assert req.controlnet is not None
    try:
        config = ControlNetConfig(base.config, req.controlnet.hint_channels, tuple(req.controlnet.hint_block_channels))
        scales = check_scales(req.control_scales, config.num_injections)
    except ConfigError as exc:
        field = exc.field if exc.field == "control_scales" else f"controlnet.{exc.field}"
        raise ApiError(422, field, exc.reason) from None
    return dataclasses.replace(base, preset=None, control=config, control_scales=tuple(scales))


def resolve(req: TraceRequest, settings: Settings, dtype: str = "float32", *, control: bool = False) -> TraceSpec:
    """The request's TraceSpec, or ApiError / ConfigError naming the field. ControlNet presets only with `control`
    (the routes that trace them: /api/trace and /api/summary)."""
    if req.controlnet is not None:
        if not control:
            raise ApiError(422, "controlnet", "only /api/trace and /api/summary trace ControlNets")
        return _resolve_custom_control(req, settings, dtype)
    if req.preset in CONTROLNET_PRESETS:
        if not control:
            raise ApiError(
                422, "preset", f"{req.preset} is a ControlNet: only /api/trace and /api/summary take ControlNet presets"
            )
        return _resolve_control(req, settings, dtype)
    if req.control_scales is not None:
        raise ApiError(422, "control_scales", f"applies to ControlNet presets only: {sorted(CONTROLNET_PRESETS)}")
    config, preset, model_field = _model(req)
    sample = _sample(req, config, preset, settings)
    if req.batch > settings.max_batch:
        raise ApiError(413, "batch", f"{req.batch} is over the limit of {settings.max_batch}")
    tokens = req.context_tokens
    if tokens is not None and tokens > settings.max_context_tokens:
        raise ApiError(413, "context_tokens", f"{tokens} is over the limit of {settings.max_context_tokens}")
    if not config.use_spatial_transformer:
        tokens = None
    elif tokens is None:
        tokens = PRESETS[preset].context_tokens if preset else DEFAULT_CONTEXT_TOKENS
    given = [f for f in ("image_size", "sample_size") if getattr(req, f) is not None]
    size_field = given[0] if given else "batch" if req.batch > 1 else None
    cost_limits(settings).check_config(
        config, sample, req.batch, tokens, model_field=model_field, size_field=size_field
    )
    return TraceSpec(config, preset, tuple(sample), req.batch, tokens, dtype)
