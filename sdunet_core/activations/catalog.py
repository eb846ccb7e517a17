"""The activation catalog: every named point of a UNet where an activation can be read, in the study's scheme.

Names follow "Not All Diffusion Model Activations Have Been Evaluated as Discriminative Features" as its code
spells them (Darkbblue/generic-diffusion-feature, `feature/configs/config_15_full.json`, `config_xl_full.json`,
`feature/components/feature_extractor.py`):

- `down-level{L}-repeat{R}-…`: level L counts from the full latent resolution (0) down, as diffusers' `down_blocks`
  do; repeat R is the ResBlock (and its attention) within the level; `down-level{L}-downsampler-out` leaves it.
- `mid-repeat{0|1}-res-…` and `mid-vit-…`: the middle block's two ResBlocks and its transformer (no level).
- `up-level{L}-repeat{R}-…`: level L counts from the *lowest* resolution (0) up, as diffusers' `up_blocks` do, so
  SD 1.x's `up-level{L}-repeat{R}` is `output_blocks[3L + R]`; `up-level{L}-upsampler-out` leaves the level.
- inside a repeat: `res-out` (the ResBlock's output), `res-increment` (its residual branch before the add: the
  output of `out_layers.3`), `vit-out` (the transformer's output, residual included) and per transformer block N
  `vit-block{N}-{self|cross}-{q|k|v|map}`, `-ffn-inner` (the GEGLU output, `ff.net.0`) and `-out`.
- `unet-in` (the noised latent), `unet-after-conv-in` (`input_blocks.0`), `unet-out` (the prediction).

Every point names the module it is read from (our module names are the original ones) and whether it is that
module's output or, for `*-map`, the attention probabilities softmax(q kᵀ / √d) computed from the captured q and k
(the model's forward is never changed). Plain self-attention blocks of the unconditional LDMs have no q/k/v
modules: they offer `vit-out` only. Shapes come from one forward on the meta device, so they are the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

import torch
from torch import nn

from ..model.config import BlockPlan, UNetConfig
from ..model.unet import UNetModel
from .tokenizer import MAX_TOKENS

Source = Literal["input", "output", "attention-map"]
# How a point's tensor is laid out: conv features, tokens × channels (tokens = the block's pixels, row-major),
# context tokens × channels, and attention maps (heads, queries, keys).
Layout = Literal["BCHW", "BNC", "BTC", "BHNM"]

# What each kind of point is, in a sentence (the page shows it; one place for the wording).
KIND_TEXT: dict[str, str] = {
    "unet-in": "the noised latent the UNet is given",
    "unet-after-conv-in": "the output of the first 3x3 conv (input_blocks.0)",
    "unet-out": "the UNet's prediction (noise, or v for v-prediction models)",
    "res-out": "the ResBlock's output (skip path + residual branch)",
    "res-increment": "the ResBlock's residual branch before it is added (the output of out_layers.3)",
    "vit-out": "the transformer's output, its input added back (after proj_out)",
    "downsampler-out": "the output of the stride-2 downsampler that leaves the level",
    "upsampler-out": "the output of the x2 upsampler that leaves the level",
    "self-q": "self-attention queries (the output of attn1.to_q)",
    "self-k": "self-attention keys (the output of attn1.to_k)",
    "self-v": "self-attention values (the output of attn1.to_v)",
    "self-map": "self-attention probabilities softmax(q k^T / sqrt(d)), pixels x pixels per head",
    "cross-q": "cross-attention queries from the pixels (the output of attn2.to_q)",
    "cross-k": "cross-attention keys from the text tokens (the output of attn2.to_k)",
    "cross-v": "cross-attention values from the text tokens (the output of attn2.to_v)",
    "cross-map": "cross-attention probabilities softmax(q k^T / sqrt(d)), pixels x text tokens per head",
    "ffn-inner": "the feed-forward's inner activation (the GEGLU output, ff.net.0)",
    "block-out": "the transformer block's output",
}


@dataclass(frozen=True)
class ActivationPoint:
    """One named activation: where it is read, what it is, its shape at the catalog's input, who uses it."""

    name: str
    kind: str  # a key of KIND_TEXT
    stage: Literal["in", "down", "mid", "up", "out"]
    level: int | None  # in the scheme's numbering (see the module docstring); None for mid and the UNet's ends
    repeat: int | None
    transformer_block: int | None
    block_path: str  # the top-level block: "input_blocks.4", "middle_block", "output_blocks.7", "out"
    module: str  # the module read ("" for the UNet itself); for maps, the attention whose q and k are used
    source: Source
    layout: Layout
    factor: int  # latent pixels per pixel of this point (1 at full latent resolution)
    block_output: bool  # this point is the output of its top-level block (the value the U passes on)
    shape: tuple[int, ...] = ()
    used_by: tuple[str, ...] = field(default=())

    @property
    def spatial(self) -> bool:
        """Its values sit on the pixel grid (a preview can show them as an image)."""
        return self.layout in ("BCHW", "BNC") or (self.layout == "BHNM" and self.kind != "cross-map")


def _transformer_points(prefix: str, module: str, attn: nn.Module) -> list[dict]:
    """The points of one SpatialTransformer at `module` (name prefix like `down-level1-repeat0-`)."""
    out: list[dict] = []
    for n, block in enumerate(attn.transformer_blocks):
        base = f"{module}.transformer_blocks.{n}"
        for part, which in (("self", "attn1"), ("cross", "attn2")):
            # With self-attention disabled (the x4 upscaler) attn1 attends to the context too: its k/v are tokens.
            tokens = part == "cross" or block.disable_self_attn
            for qkv in ("q", "k", "v"):
                layout = "BNC" if qkv == "q" or not tokens else "BTC"
                out.append(
                    dict(name=f"{prefix}vit-block{n}-{part}-{qkv}", kind=f"{part}-{qkv}", transformer_block=n,
                         module=f"{base}.{which}.to_{qkv}", source="output", layout=layout)
                )  # fmt: skip
            out.append(
                dict(name=f"{prefix}vit-block{n}-{part}-map", kind=f"{part}-map", transformer_block=n,
                     module=f"{base}.{which}", source="attention-map", layout="BHNM")
            )  # fmt: skip
        out.append(
            dict(name=f"{prefix}vit-block{n}-ffn-inner", kind="ffn-inner", transformer_block=n,
                 module=f"{base}.ff.net.0", source="output", layout="BNC")
        )  # fmt: skip
        out.append(
            dict(name=f"{prefix}vit-block{n}-out", kind="block-out", transformer_block=n, module=base,
                 source="output", layout="BNC")
        )  # fmt: skip
    return out


def _repeat_points(prefix: str, path: str, model: UNetModel, with_attention: bool) -> list[dict]:
    """ResBlock (submodule 0) and attention (submodule 1) points of one repeat."""
    out = [
        dict(name=f"{prefix}res-increment", kind="res-increment", module=f"{path}.0.out_layers.3", layout="BCHW"),
        dict(name=f"{prefix}res-out", kind="res-out", module=f"{path}.0", layout="BCHW"),
    ]
    if with_attention:
        attn = model.get_submodule(f"{path}.1")
        vit_prefix = prefix.replace("repeat0-", "") if prefix.startswith("mid-") else prefix
        if hasattr(attn, "transformer_blocks"):
            out += _transformer_points(vit_prefix, f"{path}.1", attn)
        out.append(dict(name=f"{vit_prefix}vit-out", kind="vit-out", module=f"{path}.1", layout="BCHW"))
    return out


def _block_points(b: BlockPlan, model: UNetModel, repeats: dict[tuple[str, int], int]) -> list[dict]:
    """Every point of one top-level block, in forward order, without shapes."""
    levels = model.config.num_levels
    common = {"block_path": b.path, "factor": b.factor, "source": "output"}
    if b.category == "input_conv":
        return [
            {**common, "name": "unet-in", "kind": "unet-in", "stage": "in", "module": "", "source": "input",
             "layout": "BCHW"},
            {**common, "name": "unet-after-conv-in", "kind": "unet-after-conv-in", "stage": "in",
             "module": f"{b.path}.0", "layout": "BCHW"},
        ]  # fmt: skip
    if b.category == "downsample_block":
        name = f"down-level{b.level}-downsampler-out"
        return [{**common, "name": name, "kind": "downsampler-out", "stage": "down", "level": b.level,
                 "module": f"{b.path}.0", "layout": "BCHW"}]  # fmt: skip
    if b.stage == "down":
        r = repeats.setdefault(("down", b.level), 0)
        repeats[("down", b.level)] += 1
        points = _repeat_points(f"down-level{b.level}-repeat{r}-", b.path, model, bool(b.attention))
        return [{**common, "stage": "down", "level": b.level, "repeat": r, **p} for p in points]
    if b.stage == "mid":
        first = _repeat_points("mid-repeat0-", b.path, model, bool(b.attention))
        # The middle block's second ResBlock is submodule 2 (a lone ResBlock, SSD-1B's and Vega's, has none).
        last = [
            {"name": "mid-repeat1-res-increment", "kind": "res-increment", "module": f"{b.path}.2.out_layers.3",
             "layout": "BCHW", "repeat": 1},
            {"name": "mid-repeat1-res-out", "kind": "res-out", "module": f"{b.path}.2", "layout": "BCHW",
             "repeat": 1},
        ] if b.attention else []  # fmt: skip
        first = [{**p, "repeat": 0 if p["name"].startswith("mid-repeat0-") else None} for p in first]
        return [{**common, "stage": "mid", **p} for p in first + last]
    if b.stage == "up":
        level = levels - 1 - b.level  # diffusers' up_blocks order: 0 is the lowest resolution
        r = repeats.setdefault(("up", level), 0)
        repeats[("up", level)] += 1
        # BlockPlan.factor is the block's output; everything before an upsampler is at twice that.
        inner = b.factor * 2 if b.resample == "up" else b.factor
        points = _repeat_points(f"up-level{level}-repeat{r}-", b.path, model, bool(b.attention))
        points = [{**common, "factor": inner, "stage": "up", "level": level, "repeat": r, **p} for p in points]
        if b.resample == "up":
            points.append(
                {**common, "name": f"up-level{level}-upsampler-out", "kind": "upsampler-out", "stage": "up",
                 "level": level, "module": f"{b.path}.{1 + len(b.attention)}", "layout": "BCHW"}
            )  # fmt: skip
        return points
    if b.path in ("out", "id_predictor") and (b.path == "id_predictor") == hasattr(model, "id_predictor"):
        return [{**common, "name": "unet-out", "kind": "unet-out", "stage": "out", "module": b.path,
                 "layout": "BCHW"}]  # fmt: skip
    return []


def plan_points(model: UNetModel) -> list[ActivationPoint]:
    """The points of a built model (any device, meta included), in forward order, without shapes."""
    repeats: dict[tuple[str, int], int] = {}
    raw = [p for b in model.plan for p in _block_points(b, model, repeats)]
    # A block's output is its last submodule's output: mark the last point of each block read at block level.
    last_of_block: dict[str, int] = {}
    for i, p in enumerate(raw):
        if p["layout"] == "BCHW" and p["kind"] not in ("res-increment", "unet-in"):
            last_of_block[p["block_path"]] = i
    points = []
    for i, p in enumerate(raw):
        p.setdefault("level", None)
        p.setdefault("repeat", None)
        p.setdefault("transformer_block", None)
        # Points inside a transformer keep the block's factor: tokens are the block's pixels.
        points.append(ActivationPoint(block_output=last_of_block.get(p["block_path"]) == i, **p))
    return points


def _shapes(model: UNetModel, points: list[ActivationPoint], inputs: dict) -> dict[str, tuple[int, ...]]:
    """Shape of every point from one forward of `model` (on meta: free) with output hooks."""
    seen: dict[str, tuple[int, ...]] = {}
    handles = []
    modules = {p.module for p in points if p.source == "output"}
    attn_modules = {p.module for p in points if p.source == "attention-map"}
    for name in modules | {f"{m}.to_q" for m in attn_modules} | {f"{m}.to_k" for m in attn_modules}:

        def hook(_m: nn.Module, _args: tuple, output: torch.Tensor, name: str = name) -> None:
            seen[name] = tuple(output.shape)

        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(inputs["x"], inputs["timesteps"], inputs["context"], inputs["y"])
    finally:
        for h in handles:
            h.remove()
    out: dict[str, tuple[int, ...]] = {}
    for p in points:
        if p.source == "input":
            out[p.name] = tuple(inputs["x"].shape)
        elif p.source == "output":
            out[p.name] = seen[p.module]
        else:
            heads = model.get_submodule(p.module).heads
            q, k = seen[f"{p.module}.to_q"], seen[f"{p.module}.to_k"]
            out[p.name] = (q[0], heads, q[1], k[1])
    return out


@lru_cache(maxsize=32)
def catalog(
    config: UNetConfig,
    sample_size: tuple[int, ...],
    context_tokens: int | None = MAX_TOKENS,
    batch: int = 1,
) -> tuple[ActivationPoint, ...]:
    """Every activation point of `config` with its shape for a [batch, C, *sample_size] latent, and its uses."""
    from ..tracer.trace import make_inputs
    from .references import annotate

    config.check_sample_size(sample_size)
    with torch.device("meta"):
        model = UNetModel(config)
    points = plan_points(model)
    inputs = make_inputs(config, sample_size, batch, context_tokens, "meta", torch.float32)
    shapes = _shapes(model, points, inputs)
    notes = annotate(config, points)
    return tuple(replace(p, shape=shapes[p.name], used_by=tuple(notes.get(p.name, ()))) for p in points)


def resolve_points(points: tuple[ActivationPoint, ...], names: list[str]) -> list[ActivationPoint]:
    """The points named (names, or the groups of `GROUPS`), in forward order; KeyError on an unknown name."""
    from .references import GROUPS

    by_name = {p.name: p for p in points}
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted.update(p.name for p in points if GROUPS[name](p))
        elif name in by_name:
            wanted.add(name)
        else:
            raise KeyError(name)
    return [p for p in points if p.name in wanted]
