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
import re
from collections import defaultdict
from typing import Any, NamedTuple

from .config import ConfigError, UNetConfig
from .header import CheckpointError
from .plan import walk_u
from .presets import PRESETS

Shapes = dict[str, tuple[int, ...]]

# Bounds that keep a hostile header from making a server build a huge model (released UNets: 5 levels, 3 blocks).
MAX_LEVELS = 12
MAX_RES_BLOCKS = 32
MAX_TRANSFORMER_DEPTH = 64  # SDXL has 10

_BLOCK = re.compile(r"^(input_blocks\.\d+|output_blocks\.\d+|middle_block)\.(\d+)\.(.+)$")


@dataclasses.dataclass
class _Module:
    """One child of a top-level block: what kind of layer, and its parameter names below it."""

    path: str
    names: set[str]

    @property
    def kind(self) -> str:
        n = self.names
        if "in_layers.2.weight" in n or "in_layers.0.weight" in n:
            return "res"
        if "proj_in.weight" in n or any(k.startswith("transformer_blocks.") for k in n):
            return "transformer"
        if "qkv.weight" in n:
            return "attention"
        if "op.weight" in n:
            return "downsample"
        if "conv.weight" in n:
            return "upsample"
        return "unknown"


def _group(shapes: Shapes) -> dict[str, dict[int, _Module]]:
    """Top-level block -> sub-index -> module."""
    blocks: dict[str, dict[int, _Module]] = defaultdict(dict)
    for key in shapes:
        m = _BLOCK.match(key)
        if not m:
            continue
        block, sub, rest = m.group(1), int(m.group(2)), m.group(3)
        blocks[block].setdefault(sub, _Module(f"{block}.{sub}", set())).names.add(rest)
    return blocks


def infer_config(shapes: Shapes) -> tuple[UNetConfig, list[str]]:
    """The config whose UNetModel has these shapes, and notes on every choice the shapes could not make."""
    notes: list[str] = []
    ted, mc = _need(shapes, "time_embed.0.weight", 2)
    if mc < 1:
        raise CheckpointError("time_embed.0.weight", f"reads {mc} channels: shapes fit no UNet")
    conv_in = _need(shapes, "input_blocks.0.0.weight", (3, 4, 5))
    if conv_in[0] != mc:
        raise CheckpointError(
            "input_blocks.0.0.weight",
            f"makes {conv_in[0]} channels, but the time embedding reads model_channels={mc}: shapes fit no UNet",
        )
    head = _shape(shapes, "id_predictor.1.weight", (3, 4, 5))
    blocks = _group(shapes)
    u = _read_u(blocks)

    # Widths: each level's ResBlocks make model_channels * mult channels.
    channel_mult = []
    for level, positions in enumerate(u.down_at):
        key = f"input_blocks.{positions[0]}.0.in_layers.2.weight"
        width = _need(shapes, key, (3, 4, 5))[0]
        if width % mc:
            raise CheckpointError(
                key, f"level {level} is {width} wide, not a multiple of model_channels={mc}: shapes fit no UNet"
            )
        channel_mult.append(width // mc)
    # Scale-shift norm: the time embedding gives a scale and a shift, twice the block's width.
    key = f"input_blocks.{u.down_at[0][0]}.0.emb_layers.1.weight"
    emb_width, width = _need(shapes, key, 2)[0], channel_mult[0] * mc
    if emb_width not in (width, 2 * width):
        raise CheckpointError(key, f"gives {emb_width} values per sample, expected {width} or {2 * width}")

    kwargs: dict[str, Any] = dict(
        in_channels=conv_in[1],
        out_channels=_need(shapes, "out.2.weight", (3, 4, 5))[0],
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
    kwargs.update(_attention(shapes, blocks, u, notes))
    return _choose_invisible(kwargs, notes), notes


@dataclasses.dataclass(frozen=True)
class _U:
    """The U's skeleton: res blocks per level, how it resamples, and where each level's blocks sit."""

    num_res_blocks: tuple[int, ...]
    conv_resample: bool
    resblock_updown: bool
    down_at: list[list[int]]  # per level: the input block indices of its ResBlocks
    up_at: list[list[int]]  # per level: its output block indices


def _read_u(blocks: dict[str, dict[int, _Module]]) -> _U:
    """Levels and res blocks per level, from where the resamplers sit."""
    n_in = 1 + max((int(b.split(".")[1]) for b in blocks if b.startswith("input_blocks.")), default=0)
    n_out = 1 + max((int(b.split(".")[1]) for b in blocks if b.startswith("output_blocks.")), default=-1)
    if n_out == 0:
        raise CheckpointError("shapes", "no output_blocks.* tensors: shapes fit no UNet")

    def kinds(block: str) -> dict[int, str]:
        return {sub: m.kind for sub, m in sorted(blocks.get(block, {}).items())}

    # An upsampler with parameters (a conv, or a ResBlock with resblock_updown) ends a level on the way up.
    # Without any (conv_resample=False), the down side's empty blocks (average pooling) mark the levels.
    resblock_updown, conv_resample = False, True
    ends: list[int] = []
    for o in range(n_out):
        later = [kind for sub, kind in kinds(f"output_blocks.{o}").items() if sub >= 1]
        if "upsample" in later or "res" in later:
            ends.append(o)
            resblock_updown = resblock_updown or "res" in later
    if ends:
        sizes = [b - a for a, b in zip([-1, *ends], [*ends, n_out - 1], strict=True)]
        num_res_blocks = tuple(s - 1 for s in reversed(sizes))  # the way up has one block more per level
    else:
        downs = [
            i
            for i in range(1, n_in)
            if not blocks.get(f"input_blocks.{i}") or kinds(f"input_blocks.{i}") == {0: "downsample"}
        ]
        conv_resample = not downs or any(blocks.get(f"input_blocks.{i}") for i in downs)
        num_res_blocks = tuple(b - a - 1 for a, b in zip([0, *downs], [*downs, n_in], strict=True))
    levels = len(num_res_blocks)
    if levels > MAX_LEVELS or max(num_res_blocks) > MAX_RES_BLOCKS:
        raise CheckpointError(
            "shapes",
            f"{levels} levels with up to {max(num_res_blocks)} res blocks each is beyond any UNet this explorer "
            f"builds (at most {MAX_LEVELS} levels of {MAX_RES_BLOCKS})",
        )
    if any(r < 1 for r in num_res_blocks) or 1 + sum(num_res_blocks) + levels - 1 != n_in:
        raise CheckpointError(
            "shapes",
            f"{n_in} input blocks and {n_out} output blocks do not make a U (res blocks per level "
            f"{list(num_res_blocks)} by the resamplers): shapes fit no UNet",
        )

    down_at: list[list[int]] = [[] for _ in range(levels)]
    up_at: list[list[int]] = [[] for _ in range(levels)]
    for slot in walk_u(num_res_blocks):
        if slot.kind in ("res", "up"):
            index = int(slot.path.rpartition(".")[2])
            (down_at if slot.kind == "res" else up_at)[slot.level].append(index)
    return _U(num_res_blocks, conv_resample, resblock_updown, down_at, up_at)


def _attention(shapes: Shapes, blocks: dict[str, dict[int, _Module]], u: _U, notes: list[str]) -> dict[str, Any]:
    """Where attention sits (attention_resolutions, num_attention_blocks), of which kind, and its settings."""

    def attention_of(block: str) -> _Module | None:
        m = blocks.get(block, {}).get(1)
        return m if m is not None and m.kind in ("transformer", "attention") else None

    levels = len(u.num_res_blocks)
    down = [[attention_of(f"input_blocks.{i}") for i in positions] for positions in u.down_at]
    up = [[attention_of(f"output_blocks.{o}") for o in positions] for positions in u.up_at]
    middle = attention_of("middle_block")
    if middle is None:
        raise CheckpointError("shapes", "middle_block.1 (the middle attention) is missing: shapes fit no UNet")
    attended = [level for level in range(levels) if any(down[level]) or any(up[level])]
    # num_attention_blocks gives attention to the first n res blocks of a level.
    counts = [len(_leading(down[level])) for level in range(levels)]
    num_attention_blocks = None
    if any(counts[level] != u.num_res_blocks[level] for level in attended):
        num_attention_blocks = tuple(
            counts[level] if level in attended else u.num_res_blocks[level] for level in range(levels)
        )
    spatial = middle.kind == "transformer"
    if any((m.kind == "transformer") != spatial for row in down + up for m in row if m is not None):
        raise CheckpointError("shapes", "mixes spatial transformers and plain attention blocks: shapes fit no UNet")
    out: dict[str, Any] = {
        "attention_resolutions": tuple(2**level for level in attended),
        "num_attention_blocks": num_attention_blocks,
    }
    if spatial:
        out.update(_transformers(shapes, down, up, middle, levels, notes))
    return out


def _need(shapes: Shapes, key: str, rank: int | tuple[int, ...]) -> tuple[int, ...]:
    shape = _shape(shapes, key, rank)
    if shape is None:
        raise CheckpointError("shapes", f"{key} is missing, so the UNet's layout cannot be read")
    return shape


def _shape(shapes: Shapes, key: str, rank: int | tuple[int, ...]) -> tuple[int, ...] | None:
    """A tensor's shape, None when absent; a CheckpointError naming the tensor when its rank is wrong."""
    if key not in shapes:
        return None
    ranks = (rank,) if isinstance(rank, int) else rank
    if len(shapes[key]) not in ranks:
        expected = " or ".join(map(str, ranks))
        raise CheckpointError(key, f"expected a {expected}-d tensor, found {list(shapes[key])}: shapes fit no UNet")
    return shapes[key]


def _leading(row: list[Any]) -> list[Any]:
    """The leading run of present attentions (num_attention_blocks gives attention to the first n blocks)."""
    out = []
    for m in row:
        if m is None:
            break
        out.append(m)
    return out


def _class_input(shapes: Shapes, ted: int) -> dict[str, Any]:
    mlp = _shape(shapes, "label_emb.0.0.weight", 2)
    if mlp:  # an MLP on a vector: SDXL's pooled text + sizes, unCLIP's image embedding
        return {"num_classes": "sequential", "adm_in_channels": mlp[1]}
    weight = _shape(shapes, "label_emb.weight", 2)
    if weight:
        if "label_emb.bias" in shapes or weight[1] == 1:  # Linear(1, ted): weight [ted, 1]
            return {"num_classes": "continuous"}
        return {"num_classes": weight[0]}  # Embedding(classes, ted): weight [classes, ted]
    return {}


class _Transformer(NamedTuple):
    """What one SpatialTransformer's shapes say."""

    depth: int
    contexts: list[int]  # the context width of each transformer block
    linear: bool  # Linear (SD 2.x, SDXL) or 1x1-conv (SD 1.x, LDM) projections
    self_disabled: bool | None  # attn1 attends to the context; None when the shapes cannot tell


def _read_transformer(shapes: Shapes, m: _Module) -> _Transformer:
    indices = {int(n.split(".")[1]) for n in m.names if n.startswith("transformer_blocks.")}
    proj = _shape(shapes, f"{m.path}.proj_in.weight", (2, 4))
    if proj is None or not indices:
        raise CheckpointError("shapes", f"{m.path} is a spatial transformer without proj_in or transformer blocks")
    depth, inner = max(indices) + 1, proj[0]
    if depth > MAX_TRANSFORMER_DEPTH:
        raise CheckpointError(
            "shapes",
            f"{m.path} holds {depth} transformer blocks, beyond any UNet this explorer builds "
            f"(at most {MAX_TRANSFORMER_DEPTH})",
        )
    contexts = []
    for d in range(depth):
        key = f"{m.path}.transformer_blocks.{d}.attn2.to_k.weight"
        to_k = _shape(shapes, key, 2)
        if to_k is None:
            raise CheckpointError("shapes", f"{key} is missing, so the context width is unknown")
        contexts.append(to_k[1])
    # attn1 reads the context instead of its own input when self-attention is disabled (x4 upscaler); when the
    # context is as wide as the attention, its key matrix is the same shape either way.
    self_key = _shape(shapes, f"{m.path}.transformer_blocks.0.attn1.to_k.weight", 2) or (inner, inner)
    self_disabled = None if contexts[0] == inner else self_key[1] != inner
    return _Transformer(depth, contexts, len(proj) == 2, self_disabled)


def _transformers(
    shapes: Shapes,
    down_attn: list[list[_Module | None]],
    up_attn: list[list[_Module | None]],
    middle: _Module,
    levels: int,
    notes: list[str],
) -> dict[str, Any]:
    """Depths, context widths, projections and disabled self-attention of the spatial transformers."""
    per_level: dict[int, _Transformer] = {}
    for level in range(levels):
        present = [m for m in down_attn[level] + up_attn[level] if m is not None]
        if present:  # the level's first transformer speaks for it; any other that differs shows as mismatched
            per_level[level] = _read_transformer(shapes, present[0])
    mid = _read_transformer(shapes, middle)
    infos = [*per_level.values(), mid]
    linear = {t.linear for t in infos}
    if len(linear) != 1:
        raise CheckpointError("shapes", "mixes linear and 1x1-conv transformer projections: shapes fit no UNet")

    depths = {level: t.depth for level, t in per_level.items()}
    shared = len(set(depths.values())) == 1
    fill = next(iter(depths.values())) if shared else 1
    transformer_depth = tuple(depths.get(level, fill) for level in range(levels))
    if len(depths) < levels:
        why = "the depth every attended level shares" if shared else "the default"
        notes.append(f"transformer_depth at levels without attention is invisible; took {fill} ({why})")

    widths = [c for t in infos for c in t.contexts]
    context_dim: int | tuple[int, ...]
    if len(set(widths)) == 1:
        context_dim = widths[0]
    else:  # sgm's per-block list: one width per transformer block
        varying = [t.contexts for t in infos if len(set(t.contexts)) > 1]
        context_dim = tuple(max(varying, key=len)) if varying else tuple(dict.fromkeys(widths))
        notes.append(
            f"the context width differs between transformer blocks; took the per-block list {list(context_dim)}"
        )

    disabled = {level: t.self_disabled for level, t in per_level.items()}
    if any(d is None for d in [*disabled.values(), mid.self_disabled]):
        notes.append(
            "where the context is as wide as the attention, attn1's key width cannot tell whether self-attention "
            "is disabled; assumed not"
        )
    disable_self_attentions = None
    if any(disabled.values()):
        disable_self_attentions = tuple(bool(disabled.get(level)) for level in range(levels))
    return {
        "use_spatial_transformer": True,
        "use_linear_in_transformer": linear.pop(),
        "transformer_depth": transformer_depth,
        "transformer_depth_middle": mid.depth,
        "context_dim": context_dim,
        "disable_self_attentions": disable_self_attentions,
        "disable_middle_self_attn": bool(mid.self_disabled),
    }


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
