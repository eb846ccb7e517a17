"""Bounds on the work a request may ask for, checked before any model is built.

Two layers:

- `check_raw_config`: a cheap look at the request's config dict (our field names or the original yaml's, which
  are the same names) before `UNetConfig` validates it. Validation walks the whole U, so a config with a million
  res blocks must be refused before it is even validated. Every width, count and list length gets a hard bound
  far above any released model; a value past it is a 422 naming the field.
- `CostLimits.check_config`: the settings' limits on modules, parameters and activation bytes, applied to
  `sdunet_core.tracer.cost.estimate_cost` of the resolved config and input; past one, a 413 naming the field and the
  limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import ApiError, quote
from sdunet_core import UNetConfig
from sdunet_core.model.validate import LIMITS
from sdunet_core.tracer.cost import Cost, estimate_cost

# Hard bounds of the API (released models: 5 levels, 3 res blocks per level, depth 10, widths up to 2,816): the
# config's own bounds, checked here on the raw dict because validation itself walks the whole U.
MAX_WIDTH = LIMITS["width"]  # every channel, width, head and class count
MAX_LEVELS = LIMITS["levels"]
MAX_RES_BLOCKS = LIMITS["res_blocks"]  # per level
MAX_DEPTH = LIMITS["transformer_depth"]  # transformer blocks per SpatialTransformer
MAX_LIST = 256  # entries of any list (attention_resolutions, per-block context widths): the raw dict's own bound

_WIDTHS = (
    "in_channels",
    "out_channels",
    "model_channels",
    "num_classes",
    "adm_in_channels",
    "n_embed",
    "num_heads",
    "num_head_channels",
    "num_heads_upsample",
    "norm_groups",
    "context_dim",
    "channel_mult",
)
_PER_LEVEL = (
    "channel_mult",
    "num_res_blocks",
    "transformer_depth",
    "num_attention_blocks",
    "disable_self_attentions",
    "transformer_depth_down",
    "transformer_depth_up",
)
_COUNTS = {
    "num_res_blocks": MAX_RES_BLOCKS,
    "transformer_depth": MAX_DEPTH,
    "transformer_depth_middle": MAX_DEPTH,
    # Downsampling rates: past the deepest level's (2 ** 15) an entry names no level at all.
    "attention_resolutions": 2 ** (MAX_LEVELS - 1),
}


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_raw_config(data: Any) -> None:
    """Refuse (422) lists that are too long and integers that are too large, before any validation runs."""
    if not isinstance(data, dict):
        return  # the config's own validation says what is wrong with it
    for name, value in data.items():
        if not isinstance(name, str):
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            bound = MAX_LEVELS if name in _PER_LEVEL else MAX_LIST
            if len(value) > bound:
                what = "levels" if name in _PER_LEVEL else "entries"
                raise ApiError(422, name, f"has {len(value)} entries; at most {bound} {what}")
        limit = MAX_WIDTH if name in _WIDTHS else _COUNTS.get(name)
        if limit is None:
            continue
        for item in items:
            if _int(item) and item > limit:
                raise ApiError(422, name, f"{quote(item)} is over the limit of {limit}")


# diffusers keys with a bound of their own (per block: layers and transformer layers); every other integer is a width.
_DIFFUSERS_COUNTS = {
    "layers_per_block": MAX_RES_BLOCKS,
    "transformer_layers_per_block": MAX_DEPTH,
    "reverse_transformer_layers_per_block": MAX_DEPTH,
}


def check_raw_diffusers_config(data: Any) -> None:
    """The same bounds for a diffusers config: per-block lists (nested ones too) and every integer in them."""
    if not isinstance(data, dict):
        return  # the converter says what is wrong with it

    def walk(name: str, value: Any, depth: int) -> None:
        if isinstance(value, list):
            bound = MAX_LEVELS if depth == 0 else MAX_RES_BLOCKS + 1
            if len(value) > bound:
                raise ApiError(422, name, f"has {len(value)} entries; at most {bound}")
            if depth > 1:
                raise ApiError(422, name, "lists nested deeper than per block and per layer")
            for item in value:
                walk(name, item, depth + 1)
        elif _int(value):
            limit = _DIFFUSERS_COUNTS.get(name, MAX_WIDTH)
            if value > limit:
                raise ApiError(422, name, f"{quote(value)} is over the limit of {limit}")

    for name, value in data.items():
        if isinstance(name, str):
            walk(name, value, 0)


@dataclass(frozen=True)
class CostLimits:
    """The settings' limits on one model and one forward (picklable: workers apply them too)."""

    max_modules: int
    max_params: int
    max_activation_bytes: int

    def check(self, cost: Cost, model_field: str | None, size_field: str | None) -> None:
        """413 naming the field at fault and the limit (and the setting that raises it)."""
        if cost.modules > self.max_modules:
            raise ApiError(
                413,
                model_field,
                f"the model has {cost.modules:,} modules, over the limit of {self.max_modules:,} (SDUNET_MAX_MODULES)",
            )
        if cost.params > self.max_params:
            raise ApiError(
                413,
                model_field,
                f"the model has {cost.params:,} parameters, over the limit of {self.max_params:,} (SDUNET_MAX_PARAMS)",
            )
        if cost.activation_bytes > self.max_activation_bytes:
            raise ApiError(
                413,
                size_field or model_field,
                f"one forward makes {cost.activation_bytes / 2**30:,.0f} GiB of activations, over the limit of "
                f"{self.max_activation_bytes / 2**30:,.0f} GiB (SDUNET_MAX_ACTIVATION_GB)",
            )

    def check_config(
        self,
        config: UNetConfig,
        sample_size: tuple[int, ...],
        batch: int = 1,
        context_tokens: int | None = None,
        *,
        model_field: str | None = "config",
        size_field: str | None = None,
    ) -> Cost:
        cost = estimate_cost(config, sample_size, batch=batch, context_tokens=context_tokens)
        self.check(cost, model_field, size_field)
        return cost
