"""Reconstruct a `UNetConfig` from the shapes of a state dict with the original key names.

Most of the architecture is written in the shapes: widths, levels, res blocks per level, where attention sits,
transformer depths, context widths, linear or conv projections, the class input, scale-shift norm. Some of it
is not, and is chosen here and reported as a note:

- heads: q, k, v are one [heads * head_width, width] matrix, so the split into heads is invisible. We take the
  heads setting of the closest preset (same projection kind, context width, widths, ...), so an SD 1.x
  fine-tune gets num_heads=8 and an SD 2.x / SDXL one num_head_channels=64; failing that 64-wide heads, then 8
  heads, then 1 head, whichever divides every attention width.
- transformer depth at levels without attention: the depth shared by all attended levels if they agree
  (SDXL refiner: 4 everywhere), else 1 (SDXL base: 1, 2, 10).
- disable_self_attentions where the context is as wide as the attention: attn1's key width is then the same
  either way; assumed not disabled.
- norm_groups: 32 as in every released model, or the largest smaller power of two that divides every width.
- use_new_attention_order, num_heads_upsample, dropout: invisible; defaults.

`checkpoint.detect_unet` then compares the shapes with every preset's and takes the preset's settings for
these invisible choices when the shapes are equal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..model.config import ConfigError, UNetConfig
from ..presets import PRESETS
from .header import CheckpointError
from .infer_attention import attention_settings
from .infer_shapes import Shapes, group_blocks, need, read_u, shape_of


def infer_config(shapes: Shapes) -> tuple[UNetConfig, list[str]]:
    """The config whose UNetModel has these shapes, and notes on every choice the shapes could not make."""
    notes: list[str] = []
    ted, mc = need(shapes, "time_embed.0.weight", 2)
    if mc < 1:
        raise CheckpointError("time_embed.0.weight", f"reads {mc} channels: shapes fit no UNet")
    conv_in = need(shapes, "input_blocks.0.0.weight", (3, 4, 5))
    if conv_in[0] != mc:
        raise CheckpointError(
            "input_blocks.0.0.weight",
            f"makes {conv_in[0]} channels, but the time embedding reads model_channels={mc}: shapes fit no UNet",
        )
    head = shape_of(shapes, "id_predictor.1.weight", (3, 4, 5))
    blocks = group_blocks(shapes)
    u = read_u(blocks)

    # Widths: each level's ResBlocks make model_channels * mult channels.
    channel_mult = []
    for level, positions in enumerate(u.down_at):
        key = f"input_blocks.{positions[0]}.0.in_layers.2.weight"
        width = need(shapes, key, (3, 4, 5))[0]
        if width % mc:
            raise CheckpointError(
                key, f"level {level} is {width} wide, not a multiple of model_channels={mc}: shapes fit no UNet"
            )
        channel_mult.append(width // mc)
    # Scale-shift norm: the time embedding gives a scale and a shift, twice the block's width.
    key = f"input_blocks.{u.down_at[0][0]}.0.emb_layers.1.weight"
    emb_width, width = need(shapes, key, 2)[0], channel_mult[0] * mc
    if emb_width not in (width, 2 * width):
        raise CheckpointError(key, f"gives {emb_width} values per sample, expected {width} or {2 * width}")

    kwargs: dict[str, Any] = dict(
        in_channels=conv_in[1],
        out_channels=need(shapes, "out.2.weight", (3, 4, 5))[0],
        model_channels=mc,
        channel_mult=tuple(channel_mult),
        num_res_blocks=u.num_res_blocks,
        conv_resample=u.conv_resample,
        dims=len(conv_in) - 2,
        use_scale_shift_norm=emb_width == 2 * width,
        resblock_updown=u.resblock_updown,
        n_embed=head[0] if head else None,
        **_class_input(shapes, ted),
    )
    kwargs.update(attention_settings(shapes, blocks, u, notes))
    return _choose_invisible(kwargs, notes), notes


def _class_input(shapes: Shapes, ted: int) -> dict[str, Any]:
    mlp = shape_of(shapes, "label_emb.0.0.weight", 2)
    if mlp:  # an MLP on a vector: SDXL's pooled text + sizes, unCLIP's image embedding
        return {"num_classes": "sequential", "adm_in_channels": mlp[1]}
    weight = shape_of(shapes, "label_emb.weight", 2)
    if weight:
        if "label_emb.bias" in shapes or weight[1] == 1:  # Linear(1, ted): weight [ted, 1]
            return {"num_classes": "continuous"}
        return {"num_classes": weight[0]}  # Embedding(classes, ted): weight [classes, ted]
    return {}


# Fields the shapes show, used to rank presets by likeness when borrowing their invisible settings.
_LIKENESS = (
    "use_spatial_transformer",
    "use_linear_in_transformer",
    "context_dim",
    "num_classes",
    "model_channels",
    "channel_mult",
    "num_res_blocks",
    "attention_resolutions",
    "transformer_depth",
    "in_channels",
    "out_channels",
    "use_scale_shift_norm",
    "resblock_updown",
)


def _choose_invisible(kwargs: dict[str, Any], notes: list[str]) -> UNetConfig:
    """Pick heads and norm groups that make a valid config, noting the choice."""
    defaults = {f.name: f.default for f in dataclasses.fields(UNetConfig)}

    def likeness(config: UNetConfig) -> int:
        return sum(getattr(config, f) == kwargs.get(f, defaults[f]) for f in _LIKENESS)

    heads: list[tuple[dict[str, int], str]] = []
    for p in sorted(PRESETS.values(), key=lambda p: -likeness(p.config)):  # stable: ties keep the preset order
        c = p.config
        setting = {"num_head_channels": c.num_head_channels} if c.num_head_channels else {"num_heads": c.num_heads}
        if setting not in [h for h, _ in heads]:
            heads.append((setting, f"as the closest preset, {p.name}"))
    heads += [
        ({"num_head_channels": 64}, "64 channels per head"),
        ({"num_heads": 8}, "8 heads"),
        ({"num_heads": 1}, "1 head"),
    ]
    errors: list[ConfigError] = []
    for groups in (32, 16, 8, 4, 2, 1):
        for setting, why in heads:
            try:
                config = UNetConfig(**kwargs, **setting, norm_groups=groups)
            except ConfigError as exc:
                errors.append(exc)
                if exc.field == "norm_groups":
                    break  # no heads setting fixes the groups
                continue
            ((name, value),) = setting.items()
            notes.insert(0, f"heads are invisible in the shapes; took {name}={value} ({why})")
            if groups != 32:
                notes.append(
                    f"norm_groups is invisible; took {groups}, the largest power of two up to 32 dividing every width"
                )
            return config
    # Report the error that no heads or groups setting could fix, if there is one.
    worst = next((e for e in errors if e.field not in ("num_heads", "num_head_channels", "norm_groups")), errors[0])
    raise CheckpointError(worst.field, f"the shapes fit no UNet: {worst.reason}")
