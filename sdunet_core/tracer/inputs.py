"""What a trace is of, and with which input: the model (a config, a Preset or a preset's name), the latent size,
the dtype, and the forward arguments x, timesteps, context and y.

A Preset keeps its name and its reference input: sd2 and sd2-v are one network, but sd2-v is traced at its
768-pixel reference and labelled sd2-v. A bare config is nobody's preset; it is traced at 64 latent pixels per
side (rounded to what its downsampling divides) unless told otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError, quote
from ..model.config import UNetConfig
from ..presets import Preset, load_preset

DEFAULT_LATENT_FACTOR = 8  # the SD autoencoder's: 8 image pixels per latent pixel
DEFAULT_CONTEXT_TOKENS = 77  # CLIP's text length
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Model:
    """A config, with the preset it was asked for by name (None for a custom config)."""

    config: UNetConfig
    preset: Preset | None = None

    @property
    def name(self) -> str | None:
        return self.preset.name if self.preset else None

    @property
    def latent_factor(self) -> int:
        return self.preset.latent_factor if self.preset else DEFAULT_LATENT_FACTOR


def as_model(model: UNetConfig | Preset | str) -> Model:
    if isinstance(model, str):
        preset = load_preset(model)
        return Model(preset.config, preset)
    if isinstance(model, Preset):
        return Model(model.config, model)
    if isinstance(model, UNetConfig):
        return Model(model)
    raise ConfigError("config", f"must be a UNetConfig, a Preset or a preset name, got {quote(model)}")


def default_sample_size(model: Model | UNetConfig, preset: str | None = None) -> tuple[int, ...]:
    """The preset's reference latent size, else 64 per side (rounded up to what the downsampling divides)."""
    if isinstance(model, UNetConfig):
        model = Model(model, load_preset(preset) if preset else None)
    config = model.config
    if model.preset is not None and config.dims == 2:
        return model.preset.sample_size
    f = config.downsample_factor
    side = max(f, math.ceil(64 / f) * f)
    return (4, side, side) if config.dims == 3 else (side,) * config.dims


def default_context_tokens(model: Model) -> int | None:
    if not model.config.use_spatial_transformer:
        return None
    return (model.preset.context_tokens if model.preset else None) or DEFAULT_CONTEXT_TOKENS


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    key = _DTYPE_ALIASES.get(dtype, dtype)
    if key not in _DTYPES:
        raise ConfigError("dtype", f"must be one of {sorted(_DTYPES)}, got {quote(dtype)}")
    return _DTYPES[key]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def positive_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, f"must be a positive integer, got {quote(value)}")
    return value


def make_inputs(
    config: UNetConfig,
    sample_size: tuple[int, ...],
    batch: int,
    context_tokens: int | None,
    device: torch.device | str,
    dtype: torch.dtype,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor | None]:
    """The model's forward arguments for one traced call: x, timesteps, context, y."""

    def randn(*shape: int) -> torch.Tensor:
        if str(device) == "meta":
            return torch.empty(shape, device=device, dtype=dtype)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)

    x = randn(batch, config.in_channels, *sample_size)
    timesteps = torch.full((batch,), 500.0, device=device)
    tokens = context_tokens or DEFAULT_CONTEXT_TOKENS
    context = randn(batch, tokens, config.context_width) if config.use_spatial_transformer else None  # type: ignore[arg-type]
    y: torch.Tensor | None = None
    if config.num_classes == "sequential":
        y = randn(batch, config.adm_in_channels)  # type: ignore[arg-type]
    elif config.num_classes == "continuous":
        y = randn(batch, 1)
    elif config.num_classes is not None:
        y = torch.zeros(batch, dtype=torch.long, device=device)
    return {"x": x, "timesteps": timesteps, "context": context, "y": y}
