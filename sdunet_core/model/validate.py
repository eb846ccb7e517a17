"""Validation of a `UNetConfig`: every impossible combination is a `ConfigError` naming the field and the value.

Two kinds of checks, in this order:

1. Bounds that keep building the config itself cheap and every product of sizes within what torch can index
   (`LIMITS`): a config with a million res blocks or 2**62 channels is refused before the U is planned. They are
   far above any released model (SDXL: 3 levels, 2 res blocks, depth 10, 2816 label inputs) and below what would
   overflow; how much a server is willing to build is a separate, configurable question (`sdunet_core.tracer.cost`).
2. What the original constructors assert or silently rewrite, said plainly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, quote
from .plan import plan_blocks

if TYPE_CHECKING:
    from .config import UNetConfig

# Upper bounds of a config (see the module docstring). Widths include every level's model_channels * mult.
LIMITS = {
    "levels": 16,
    "width": 1 << 20,
    "res_blocks": 256,
    "transformer_depth": 256,
    "num_classes": 1 << 24,
    "attention_resolutions": 64,
}

_WIDTH_FIELDS = (
    "in_channels",
    "out_channels",
    "model_channels",
    "norm_groups",
    "adm_in_channels",
    "n_embed",
    "num_heads",
    "num_head_channels",
    "num_heads_upsample",
)
_FLAGS = (
    "conv_resample",
    "use_scale_shift_norm",
    "resblock_updown",
    "use_new_attention_order",
    "use_spatial_transformer",
    "use_linear_in_transformer",
    "disable_middle_self_attn",
)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_tuple(name: str, value: Any, kind: type) -> tuple:
    """A list or tuple of `kind` entries as a tuple; a ConfigError otherwise."""
    if not isinstance(value, (list, tuple)):
        raise ConfigError(name, f"must be a list, got {quote(value)}")
    items = tuple(value)
    for item in items:
        if kind is int and not is_int(item):
            raise ConfigError(name, f"entries must be integers, got {quote(value)}")
        if kind is bool and not isinstance(item, bool):
            raise ConfigError(name, f"entries must be true/false, got {quote(value)}")
    return items


def per_level(name: str, value: Any, levels: int, kind: type) -> tuple:
    """One entry per level: an int (or a one-entry list) is repeated, a list must have one entry per level."""
    if kind is int and is_int(value):
        return (value,) * levels
    items = as_tuple(name, value, kind)
    if len(items) == 1 and kind is int:
        return items * levels
    if len(items) != levels:
        raise ConfigError(
            name, f"needs one entry per level ({levels} levels in channel_mult), got {quote(list(items))}"
        )
    return items


def per_slot(name: str, value: Any, num_res_blocks: tuple[int, ...], extra: int) -> tuple[tuple[int, ...], ...]:
    """One list per level of one entry per res block there (num_res_blocks[level] + extra): a level's int is
    repeated over its blocks."""
    if not isinstance(value, (list, tuple)) or len(value) != len(num_res_blocks):
        raise ConfigError(
            name, f"must be a list with one entry per level ({len(num_res_blocks)} levels), got {quote(value)}"
        )
    out = []
    for level, (entry, count) in enumerate(zip(value, num_res_blocks, strict=True)):
        n = count + extra
        if is_int(entry):
            out.append((entry,) * n)
            continue
        items = as_tuple(name, entry, int)
        if len(items) != n:
            raise ConfigError(
                name, f"level {level} needs {n} entries (one per res block there), got {quote(list(items))}"
            )
        out.append(items)
    return tuple(out)


def check_levels(channel_mult: Any) -> tuple[int, ...]:
    """channel_mult first: every per-level list is measured against it."""
    levels = as_tuple("channel_mult", channel_mult, int)
    if not levels:
        raise ConfigError("channel_mult", "needs at least one level, got []")
    if len(levels) > LIMITS["levels"]:
        raise ConfigError("channel_mult", f"{len(levels)} levels is over the limit of {LIMITS['levels']}")
    return levels


def validate(cfg: UNetConfig) -> None:
    """Raise ConfigError for the first impossible setting of `cfg` (fields already normalised to tuples)."""
    _sizes(cfg)
    _middle_and_slots(cfg)
    _flags(cfg)
    _heads(cfg)
    _conditioning(cfg)
    _widths(cfg)


def _positive(cfg: UNetConfig, *names: str, required: bool = False) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is None and not required:
            continue
        if not is_int(value):
            raise ConfigError(name, f"must be an integer, got {quote(value)}")
        if value < 1:
            raise ConfigError(name, f"must be positive, got {value}")
        if value > LIMITS["width"]:
            raise ConfigError(name, f"{value} is over the limit of {LIMITS['width']}")


def _attended(cfg: UNetConfig) -> list[bool]:
    """Per level: does any block at that level get attention?"""
    return [
        2**level in cfg.attention_resolutions
        and (cfg.num_attention_blocks is None or cfg.num_attention_blocks[level] > 0)
        for level in range(cfg.num_levels)
    ]


def _sizes(cfg: UNetConfig) -> None:
    _positive(cfg, "in_channels", "out_channels", "model_channels", "norm_groups", required=True)
    _positive(cfg, "adm_in_channels", "n_embed")
    for name, limit in (("channel_mult", None), ("num_res_blocks", "res_blocks"), ("attention_resolutions", None)):
        values = getattr(cfg, name)
        if any(v < 1 for v in values):
            raise ConfigError(name, f"entries must be positive, got {quote(list(values))}")
        if limit and max(values) > LIMITS[limit]:
            raise ConfigError(name, f"{max(values)} is over the limit of {LIMITS[limit]} per level")
    if len(cfg.attention_resolutions) > LIMITS["attention_resolutions"]:
        raise ConfigError("attention_resolutions", f"more than {LIMITS['attention_resolutions']} entries")
    widest = cfg.model_channels * max(cfg.channel_mult)
    if widest > LIMITS["width"]:
        raise ConfigError(
            "channel_mult",
            f"model_channels * {max(cfg.channel_mult)} = {widest} is over the limit of {LIMITS['width']}",
        )
    # Transformer depth matters only where there is attention: the original ignores it elsewhere (SDXL-style
    # configs write 0 at the attention-free first level).
    depth_limit = LIMITS["transformer_depth"]
    for level, (depth, attended) in enumerate(zip(cfg.transformer_depth, _attended(cfg), strict=True)):
        if attended and cfg.use_spatial_transformer and depth < 1:
            raise ConfigError(
                "transformer_depth",
                f"entries must be positive at levels with attention, got {list(cfg.transformer_depth)} "
                f"(level {level} has attention)",
            )
        if depth > depth_limit:
            raise ConfigError("transformer_depth", f"{depth} is over the limit of {depth_limit}")
    _positive(cfg, "num_heads", "num_head_channels", "num_heads_upsample")
    middle = cfg.transformer_depth_middle
    if middle is not None:
        if not is_int(middle):
            raise ConfigError("transformer_depth_middle", f"must be an integer, got {quote(middle)}")
        if middle < 1:
            raise ConfigError(
                "transformer_depth_middle", f"must be positive (the middle block has attention), got {middle}"
            )
        if middle > depth_limit:
            raise ConfigError("transformer_depth_middle", f"{middle} is over the limit of {depth_limit}")
    if cfg.num_attention_blocks is not None:
        for level, (n, r) in enumerate(zip(cfg.num_attention_blocks, cfg.num_res_blocks, strict=True)):
            if n < 0 or n > r:
                raise ConfigError(
                    "num_attention_blocks", f"level {level}: {n} must be between 0 and num_res_blocks[{level}]={r}"
                )


def attended_depths(cfg: UNetConfig) -> list[tuple[str, int]]:
    """(where, depth) of every spatial transformer the config places: down and up blocks, then the middle."""
    out = []
    for level, attended in enumerate(_attended(cfg)):
        if not attended or 2**level not in cfg.attention_resolutions:
            continue
        n = cfg.num_res_blocks[level]
        for up, count in ((False, n), (True, n + 1)):
            for position in range(count):
                if cfg.num_attention_blocks is None or position < cfg.num_attention_blocks[level]:
                    where = f"level {level}, {'up' if up else 'down'} block {position}"
                    out.append((where, cfg.transformer_depth_at(level, position, up)))
    if cfg.middle_block == "attention" and cfg.transformer_depth_middle is not None:
        out.append(("the middle block", cfg.transformer_depth_middle))
    return out


def _middle_and_slots(cfg: UNetConfig) -> None:
    """The middle block's kind, and the per-block transformer depths of the relatives of the released UNets."""
    if cfg.middle_block not in ("attention", "resblock", None):
        raise ConfigError("middle_block", f"must be 'attention', 'resblock' or null, got {quote(cfg.middle_block)}")
    if cfg.middle_block != "attention" and cfg.transformer_depth_middle is not None:
        raise ConfigError(
            "transformer_depth_middle",
            f"only applies to a middle block with attention, got middle_block={quote(cfg.middle_block)}",
        )
    if cfg.middle_block != "attention" and cfg.disable_middle_self_attn:
        raise ConfigError("disable_middle_self_attn", "only applies to a middle block with attention")
    for name in ("transformer_depth_down", "transformer_depth_up"):
        if getattr(cfg, name) is not None and not cfg.use_spatial_transformer:
            raise ConfigError(name, "only applies with use_spatial_transformer")
    if not cfg.use_spatial_transformer:
        return
    limit = LIMITS["transformer_depth"]
    for name in ("transformer_depth_down", "transformer_depth_up"):
        for level in getattr(cfg, name) or ():
            for depth in level:
                if depth < 0 or depth > limit:
                    raise ConfigError(name, f"entries must be between 0 and {limit}, got {depth}")
    for where, depth in attended_depths(cfg):
        if depth < 1:
            field = "transformer_depth_up" if " up " in where else "transformer_depth_down"
            if getattr(cfg, field) is None:
                field = "transformer_depth"
            raise ConfigError(field, f"the spatial transformer at {where} must be at least 1 deep, got {depth}")


def _flags(cfg: UNetConfig) -> None:
    for name in _FLAGS:
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(name, f"must be true or false, got {quote(getattr(cfg, name))}")
    if isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)) or not 0 <= cfg.dropout < 1:
        raise ConfigError("dropout", f"must be a number in [0, 1), got {quote(cfg.dropout)}")
    if not is_int(cfg.dims) or cfg.dims not in (1, 2, 3):
        raise ConfigError("dims", f"must be 1, 2 or 3, got {quote(cfg.dims)}")
    if cfg.channel_mult[0] != 1:
        # The original's output conv reads model_channels, so the first level must be model_channels wide.
        raise ConfigError(
            "channel_mult",
            f"the first level must be 1 (the output conv reads model_channels), got {quote(list(cfg.channel_mult))}",
        )


def _heads(cfg: UNetConfig) -> None:
    """Exactly one of the two ways to say how wide the heads are."""
    if (cfg.num_heads is None) == (cfg.num_head_channels is None):
        raise ConfigError(
            "num_heads",
            f"give exactly one of num_heads and num_head_channels, got num_heads={cfg.num_heads}, "
            f"num_head_channels={cfg.num_head_channels}",
        )
    if cfg.num_heads_upsample is not None and cfg.num_heads is None:
        raise ConfigError("num_heads_upsample", "only applies with num_heads, not with num_head_channels")


def _conditioning(cfg: UNetConfig) -> None:
    if cfg.use_spatial_transformer and cfg.context_dim is None:
        raise ConfigError("context_dim", "a spatial transformer needs context_dim (the width of the context tokens)")
    if not cfg.use_spatial_transformer:
        if cfg.context_dim is not None:
            raise ConfigError("context_dim", f"{quote(cfg.context_dim)} given without use_spatial_transformer")
        if cfg.disable_self_attentions is not None or cfg.disable_middle_self_attn:
            raise ConfigError("disable_self_attentions", "only applies with use_spatial_transformer")
        if cfg.use_linear_in_transformer:
            raise ConfigError("use_linear_in_transformer", "only applies with use_spatial_transformer")
    if cfg.context_dim is not None:
        _context_widths(cfg)
    if cfg.use_spatial_transformer and cfg.dims != 2:
        raise ConfigError("dims", f"spatial transformers work on images only (dims=2), got dims={cfg.dims}")
    nc = cfg.num_classes
    if nc is not None:
        if isinstance(nc, bool) or not (is_int(nc) or nc in ("continuous", "sequential")):
            raise ConfigError(
                "num_classes", f"must be null, a number of classes, 'continuous' or 'sequential', got {quote(nc)}"
            )
        if is_int(nc) and nc < 1:
            raise ConfigError("num_classes", f"must be positive, got {nc}")
        if is_int(nc) and nc > LIMITS["num_classes"]:
            raise ConfigError("num_classes", f"{nc} is over the limit of {LIMITS['num_classes']}")
    if nc == "sequential" and cfg.adm_in_channels is None:
        raise ConfigError("adm_in_channels", "num_classes='sequential' needs adm_in_channels (the width of y)")
    if cfg.adm_in_channels is not None and nc != "sequential":
        raise ConfigError("adm_in_channels", f"only applies with num_classes='sequential', got num_classes={nc!r}")


def _context_widths(cfg: UNetConfig) -> None:
    dims = cfg.context_dim if isinstance(cfg.context_dim, tuple) else (cfg.context_dim,)
    if not dims or any(not is_int(d) or d < 1 for d in dims):
        raise ConfigError("context_dim", f"must be a positive integer or a list of them, got {quote(cfg.context_dim)}")
    if max(dims) > LIMITS["width"]:
        raise ConfigError("context_dim", f"{max(dims)} is over the limit of {LIMITS['width']}")
    if isinstance(cfg.context_dim, tuple) and len(set(cfg.context_dim)) > 1:
        # One width per transformer block: every SpatialTransformer must be exactly that deep (sgm would fall
        # back to the first width with a warning; we refuse instead of silently changing the model).
        depths = {depth for _, depth in attended_depths(cfg)}
        if depths != {len(cfg.context_dim)}:
            raise ConfigError(
                "context_dim",
                f"{quote(list(cfg.context_dim))} gives one width per transformer block, but the depths are "
                f"{sorted(depths)}",
            )


def _widths(cfg: UNetConfig) -> None:
    """Every GroupNorm's channels divide by the groups, every attention's width by its heads."""
    g = cfg.norm_groups
    for block in plan_blocks(cfg):
        for name, width in (("in", block.in_channels), ("out", block.out_channels)):
            if block.category == "input_conv" or (block.stage == "out" and name == "out"):
                continue
            if width % g:
                raise ConfigError(
                    "norm_groups",
                    f"{block.path} normalizes {width} channels, not divisible by norm_groups={g} "
                    f"(model_channels={cfg.model_channels}, channel_mult={list(cfg.channel_mult)})",
                )
        for attn in block.attention:
            field_name = "num_head_channels" if cfg.num_head_channels is not None else "num_heads"
            if cfg.num_head_channels is not None and attn.channels % cfg.num_head_channels:
                raise ConfigError(
                    field_name, f"{cfg.num_head_channels} does not divide the width {attn.channels} of {block.path}"
                )
            if cfg.num_head_channels is None and attn.channels % attn.heads:
                name = "num_heads_upsample" if block.stage == "up" and cfg.num_heads_upsample else field_name
                raise ConfigError(name, f"{attn.heads} heads do not divide the width {attn.channels} of {block.path}")
