"""A `UNetConfig` from a diffusers `UNet2DConditionModel` config (the `unet/config.json` of a diffusers model).

diffusers describes the same U per block of the down and up stages (`down_block_types`, `block_out_channels`,
`layers_per_block`, `transformer_layers_per_block`, ...); `config_from_diffusers()` says it in our field names,
for the block types the model family covers: `CrossAttnDownBlock2D` / `DownBlock2D`, `CrossAttnUpBlock2D` /
`UpBlock2D`, the middle block `UNetMidBlock2DCrossAttn`, `UNetMidBlock2D` (one ResBlock) or none. Anything else is a
`ConfigError` naming the diffusers key and saying what is not covered. Keys that change no parameter and no
number of a forward in eval mode (`sample_size`, `upcast_attention`, ...) are read and left out.

Three quirks of the diffusers constructor (`diffusers/models/unets/unet_2d_condition.py`), followed here:

- `attention_head_dim` is the number of heads, not their width (diffusers keeps the old name for the 40,000
  configs that use it; `num_attention_heads` itself is refused there). Heads per block become our `num_heads`
  when they are the same everywhere (SD 1.x: 8) or `num_head_channels` when the width per head is (SD 2.x, SDXL:
  64).
- The up stage has `layers_per_block + 1` res blocks per level, and the middle block takes the depth of the last
  down block's transformers (`transformer_layers_per_block[-1]`).
- Per-layer depth lists in `transformer_layers_per_block` need `reverse_transformer_layers_per_block` for the way
  up, listed from the lowest resolution (SSD-1B).

Our own code, written from the diffusers constructor's signature and behaviour; the tests build diffusers' model
on the meta device from the same configs and compare parameter counts and state-dict keys.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, quote
from .config import UNetConfig
from .validate import is_int

CROSS_DOWN, PLAIN_DOWN = "CrossAttnDownBlock2D", "DownBlock2D"
CROSS_UP, PLAIN_UP = "CrossAttnUpBlock2D", "UpBlock2D"
MIDDLE_BLOCKS = {"UNetMidBlock2DCrossAttn": "attention", "UNetMidBlock2D": "resblock", None: None}

# The constructor's defaults (diffusers 0.27 and later), for the keys a config.json may leave out.
DEFAULTS: dict[str, Any] = {
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": [CROSS_DOWN, CROSS_DOWN, CROSS_DOWN, PLAIN_DOWN],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": [PLAIN_UP, CROSS_UP, CROSS_UP, CROSS_UP],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "dropout": 0.0,
    "norm_num_groups": 32,
    "cross_attention_dim": 1280,
    "transformer_layers_per_block": 1,
    "reverse_transformer_layers_per_block": None,
    "attention_head_dim": 8,
    "use_linear_projection": False,
    "class_embed_type": None,
    "addition_embed_type": None,
    "addition_time_embed_dim": None,
    "num_class_embeds": None,
    "resnet_time_scale_shift": "default",
    "time_embedding_dim": None,
    "projection_class_embeddings_input_dim": None,
}
# Keys whose other values build something the family does not have: each must keep this value.
MUST_BE: dict[str, Any] = {
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_eps": 1e-5,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "num_attention_heads": None,
    "dual_cross_attention": False,
    "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional",
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "time_cond_proj_dim": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "attention_type": "default",
    "class_embeddings_concat": False,
    "cross_attention_norm": None,
}
# Keys that change no parameter and no number of an eval-mode forward here, with why they are left out.
IGNORED: dict[str, str] = {
    "sample_size": "the latent size the model was trained at: the default input (see `default_sample_size`)",
    "upcast_attention": "computes attention in float32 (numerics only; the trace counts the same operations)",
    "mid_block_only_cross_attention": "read only by UNetMidBlock2DSimpleCrossAttn",
    "addition_embed_type_num_heads": "read only by the 'text' addition embeddings",
    "_class_name": "checked: must be UNet2DConditionModel",
    "_diffusers_version": "metadata",
    "_name_or_path": "metadata",
    "_use_default_values": "metadata",
}


# Our field -> the diffusers key its value comes from, to name a validation error in the config's own terms.
OUR_FIELD_TO_KEY = {
    "model_channels": "block_out_channels",
    "channel_mult": "block_out_channels",
    "num_res_blocks": "layers_per_block",
    "norm_groups": "norm_num_groups",
    "num_heads": "attention_head_dim",
    "num_head_channels": "attention_head_dim",
    "transformer_depth": "transformer_layers_per_block",
    "transformer_depth_down": "transformer_layers_per_block",
    "transformer_depth_middle": "transformer_layers_per_block",
    "transformer_depth_up": "reverse_transformer_layers_per_block",
    "context_dim": "cross_attention_dim",
    "adm_in_channels": "projection_class_embeddings_input_dim",
    "num_classes": "num_class_embeds",
    "disable_self_attentions": "only_cross_attention",
    "use_linear_in_transformer": "use_linear_projection",
    "use_scale_shift_norm": "resnet_time_scale_shift",
    "middle_block": "mid_block_type",
}


def config_from_diffusers(raw: Any) -> UNetConfig:
    """Our `UNetConfig` for a `UNet2DConditionModel` config; a ConfigError naming the key for what is not covered."""
    if not isinstance(raw, dict):
        raise ConfigError("diffusers_config", f"must be a mapping, got {type(raw).__name__}")
    known = set(DEFAULTS) | set(MUST_BE) | set(IGNORED)
    unknown = sorted(map(str, set(raw) - known))
    if unknown:
        raise ConfigError(unknown[0], f"unknown key of a UNet2DConditionModel config: {quote(unknown)}")
    name = raw.get("_class_name", "UNet2DConditionModel")
    if name != "UNet2DConditionModel":
        raise ConfigError("_class_name", f"only UNet2DConditionModel configs are covered, got {quote(name)}")
    for key, value in MUST_BE.items():
        if key in raw and raw[key] != value:
            raise ConfigError(key, f"{quote(raw[key])} is not covered; the model family has {quote(value)}")
    d = {**DEFAULTS, **{k: v for k, v in raw.items() if k in DEFAULTS}}

    widths = _ints("block_out_channels", d["block_out_channels"], None)
    levels = len(widths)
    attended = _block_types(d, levels)
    middle = d["mid_block_type"]
    if not isinstance(middle, (str, type(None))) or middle not in MIDDLE_BLOCKS:
        raise ConfigError(
            "mid_block_type",
            f"{quote(middle)} is not covered; the family covers {quote([k for k in MIDDLE_BLOCKS if k])} or null",
        )
    middle_block = MIDDLE_BLOCKS[middle]
    mc = widths[0]
    for level, width in enumerate(widths):
        if width % mc:
            raise ConfigError(
                "block_out_channels",
                f"block {level} is {width} wide, not a multiple of the first block's {mc} (our channel_mult)",
            )
    if d["time_embedding_dim"] not in (None, 4 * mc):
        raise ConfigError(
            "time_embedding_dim", f"{quote(d['time_embedding_dim'])} is not covered; the family has 4 x {mc}"
        )
    layers = _per_block("layers_per_block", d["layers_per_block"], levels)
    spatial = any(attended) or middle_block == "attention"
    kwargs: dict[str, Any] = {
        "in_channels": d["in_channels"],
        "out_channels": d["out_channels"],
        "model_channels": mc,
        "channel_mult": tuple(w // mc for w in widths),
        "num_res_blocks": layers,
        "attention_resolutions": tuple(2**level for level in range(levels) if attended[level]) or (1,),
        "dropout": d["dropout"],
        "use_scale_shift_norm": _scale_shift(d["resnet_time_scale_shift"]),
        "norm_groups": d["norm_num_groups"],
        "middle_block": middle_block,
        "use_spatial_transformer": spatial,
    }
    if not any(attended):
        # No block has attention (a plain U): attention_resolutions must still say so to the original's rule.
        kwargs["num_attention_blocks"] = (0,) * levels
    if d["norm_num_groups"] is None:
        raise ConfigError("norm_num_groups", "null (no group norm) is not covered")
    kwargs.update(_heads(d, widths, attended, middle_block))
    if spatial:
        kwargs.update(_transformers(d, layers, attended, middle_block))
    kwargs.update(_labels(d))
    try:
        return UNetConfig(**kwargs)
    except ConfigError as exc:  # said in the diffusers key the value came from
        key = OUR_FIELD_TO_KEY.get(exc.field, exc.field)
        raise ConfigError(key, f"{exc.reason} (as our {exc.field})") from None


def default_sample_size(raw: Any) -> tuple[int, int] | None:
    """The config's `sample_size` (an int or [height, width] in latent pixels), or None when it has none."""
    value = raw.get("sample_size") if isinstance(raw, dict) else None
    if value is None:
        return None
    sizes = [value, value] if is_int(value) else value
    if not isinstance(sizes, (list, tuple)) or len(sizes) != 2 or not all(is_int(v) and v > 0 for v in sizes):
        raise ConfigError("sample_size", f"must be a positive integer or [height, width], got {quote(value)}")
    return (sizes[0], sizes[1])


def _ints(key: str, value: Any, length: int | None) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(is_int(v) and v > 0 for v in value):
        raise ConfigError(key, f"must be a list of positive integers, got {quote(value)}")
    if length is not None and len(value) != length:
        raise ConfigError(key, f"needs one entry per block ({length} in block_out_channels), got {quote(value)}")
    return tuple(value)


def _per_block(key: str, value: Any, levels: int) -> tuple[int, ...]:
    """An int for every block, or one positive int per block."""
    if is_int(value):
        if value < 1:
            raise ConfigError(key, f"must be positive, got {value}")
        return (value,) * levels
    return _ints(key, value, levels)


def _block_types(d: dict[str, Any], levels: int) -> list[bool]:
    """Per level (0 = full resolution): does it have cross-attention? Down and up must agree."""
    down, up = d["down_block_types"], d["up_block_types"]
    for key, types, allowed in (
        ("down_block_types", down, (CROSS_DOWN, PLAIN_DOWN)),
        ("up_block_types", up, (CROSS_UP, PLAIN_UP)),
    ):
        if not isinstance(types, (list, tuple)) or len(types) != levels:
            raise ConfigError(key, f"needs one entry per block ({levels} in block_out_channels), got {quote(types)}")
        for i, t in enumerate(types):
            if t not in allowed:
                raise ConfigError(
                    key, f"block {i} is {quote(t)}, not covered; the family covers {quote(list(allowed))}"
                )
    attended = [t == CROSS_DOWN for t in down]
    for level in range(levels):
        if (up[levels - 1 - level] == CROSS_UP) != attended[level]:
            raise ConfigError(
                "up_block_types",
                f"up block {levels - 1 - level} is {up[levels - 1 - level]} but down block {level} at the same "
                f"resolution is {down[level]}; the family puts attention at the same levels both ways",
            )
    return attended


def _scale_shift(value: Any) -> bool:
    if value not in ("default", "scale_shift"):
        raise ConfigError("resnet_time_scale_shift", f"{quote(value)} is not covered; 'default' or 'scale_shift'")
    return value == "scale_shift"


def _heads(d: dict[str, Any], widths: tuple[int, ...], attended: list[bool], middle: str | None) -> dict[str, int]:
    """diffusers' attention_head_dim is a head count per block; ours is one count, or one width per head."""
    levels = len(widths)
    heads = _per_block("attention_head_dim", d["attention_head_dim"], levels)
    where = [level for level in range(levels) if attended[level]]
    pairs = [(widths[level], heads[level]) for level in where]
    if middle == "attention":
        pairs.append((widths[-1], heads[-1]))  # diffusers' middle block takes the last block's heads
    if not pairs:
        return {"num_heads": heads[0]}  # no attention anywhere: the setting is unused
    for width, h in pairs:
        if width % h:
            raise ConfigError("attention_head_dim", f"{h} heads do not divide the width {width}")
    if len({h for _, h in pairs}) == 1:
        return {"num_heads": pairs[0][1]}
    per_head = {width // h for width, h in pairs}
    if len(per_head) == 1:
        return {"num_head_channels": per_head.pop()}
    raise ConfigError(
        "attention_head_dim",
        f"{quote(list(heads))} heads over widths {list(widths)} are neither one head count nor one width per head "
        f"at every attention; not covered",
    )


def _depths(key: str, value: Any, counts: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per block: an int for all its layers or one int per layer, as diffusers takes them."""
    entries = [value] * len(counts) if is_int(value) else value
    if not isinstance(entries, (list, tuple)) or len(entries) != len(counts):
        raise ConfigError(key, f"needs an int or one entry per block ({len(counts)}), got {quote(value)}")
    out = []
    for i, (entry, n) in enumerate(zip(entries, counts, strict=True)):
        if is_int(entry):
            out.append((entry,) * n)
            continue
        if not isinstance(entry, (list, tuple)) or not all(is_int(v) for v in entry) or len(entry) < n:
            raise ConfigError(key, f"block {i} needs an int or {n} ints (one per layer), got {quote(entry)}")
        out.append(tuple(entry[:n]))  # diffusers reads the first num_layers entries
    if any(v < 0 for row in out for v in row):
        raise ConfigError(key, f"depths must not be negative, got {quote(value)}")
    return out


def _transformers(d: dict[str, Any], layers: tuple[int, ...], attended: list[bool], middle: str | None) -> dict:
    levels = len(layers)
    given = d["transformer_layers_per_block"]
    down = _depths("transformer_layers_per_block", given, layers)
    reverse = d["reverse_transformer_layers_per_block"]
    nested = not is_int(given) and any(isinstance(e, (list, tuple)) for e in given)
    if reverse is None:
        if nested:
            raise ConfigError(
                "reverse_transformer_layers_per_block",
                "is needed when transformer_layers_per_block gives depths per layer (diffusers asks for it too)",
            )
        up = [(row[0],) * (n + 1) for row, n in zip(down, layers, strict=True)]
    else:
        up_counts = tuple(n + 1 for n in reversed(layers))
        up = list(reversed(_depths("reverse_transformer_layers_per_block", reverse, up_counts)))
    up_key = "reverse_transformer_layers_per_block" if reverse is not None else "transformer_layers_per_block"
    for level in range(levels):
        for key, rows in (("transformer_layers_per_block", down), (up_key, up)):
            if attended[level] and min(rows[level]) < 1:
                raise ConfigError(
                    key, f"a cross-attention block at level {level} with 0 transformer layers is not covered"
                )
    # One depth per level, the level's first down block's (where a level has no attention diffusers' value is kept:
    # it is unused); per-block lists only where a level's blocks differ from it.
    depth = tuple(row[0] for row in down)
    out: dict[str, Any] = {"transformer_depth": depth}
    for name, rows in (("transformer_depth_down", down), ("transformer_depth_up", up)):
        if any(attended[level] and set(rows[level]) != {depth[level]} for level in range(levels)):
            out[name] = tuple(rows)
    if middle == "attention":
        last = given if is_int(given) else given[-1]
        out["transformer_depth_middle"] = last if is_int(last) else last[0]
    context = d["cross_attention_dim"]
    if isinstance(context, (list, tuple)):
        if len(context) != levels:
            raise ConfigError(
                "cross_attention_dim", f"has {len(context)} entries; give one number, or one per block ({levels})"
            )
        if len(set(map(str, context))) != 1:
            raise ConfigError(
                "cross_attention_dim", f"a different context width per block {quote(context)} is not covered"
            )
        context = context[0]
    out["context_dim"] = context
    out["use_linear_in_transformer"] = d["use_linear_projection"]
    only = d["only_cross_attention"]
    flags = [only] * levels if isinstance(only, bool) else only
    if not isinstance(flags, (list, tuple)) or len(flags) != levels or not all(isinstance(f, bool) for f in flags):
        raise ConfigError("only_cross_attention", f"must be true/false or one per block, got {quote(only)}")
    if any(flags):
        out["disable_self_attentions"] = tuple(flags)
    return out


def _labels(d: dict[str, Any]) -> dict[str, Any]:
    """Class labels (an Embedding) or a vector input (an MLP): SD 2 unCLIP's "projection", SDXL's "text_time"."""
    class_type, addition, n = d["class_embed_type"], d["addition_embed_type"], d["num_class_embeds"]
    width = d["projection_class_embeddings_input_dim"]
    out: dict[str, Any] = {}
    if class_type is None and n is not None:
        out = {"num_classes": n}
    elif class_type == "projection":
        if width is None:
            raise ConfigError("projection_class_embeddings_input_dim", "class_embed_type 'projection' needs it")
        out = {"num_classes": "sequential", "adm_in_channels": width}
    elif class_type is not None:
        raise ConfigError("class_embed_type", f"{quote(class_type)} is not covered; null or 'projection'")
    if addition == "text_time":
        if out:
            raise ConfigError("addition_embed_type", "together with a class embedding is not covered")
        if d["addition_time_embed_dim"] is None:
            raise ConfigError("addition_time_embed_dim", "addition_embed_type 'text_time' needs it")
        if width is None:
            raise ConfigError("projection_class_embeddings_input_dim", "addition_embed_type 'text_time' needs it")
        # The size embeddings (addition_time_embed_dim each) are made outside the UNet in the original code
        # (sgm's conditioner): y arrives as the whole vector of this width.
        out = {"num_classes": "sequential", "adm_in_channels": width}
    elif addition is not None:
        raise ConfigError("addition_embed_type", f"{quote(addition)} is not covered; null or 'text_time'")
    return out
