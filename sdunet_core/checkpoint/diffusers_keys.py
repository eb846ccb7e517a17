"""Two-way map between the original UNet's names and diffusers' `UNet2DConditionModel` names.

The original (CompVis / Stability) UNet numbers its blocks in one flat list per side (`input_blocks.4.1.proj_in`);
diffusers groups them per resolution level (`down_blocks.1.attentions.0.proj_in`). The inside of a transformer
is named the same in both; ResBlocks, resamplers and the embeddings are renamed:

    time_embed.0 / .2              time_embedding.linear_1 / linear_2
    input_blocks.0.0               conv_in
    input_blocks.i.0 (ResBlock)    down_blocks.L.resnets.j      in_layers.0 -> norm1, in_layers.2 -> conv1,
    input_blocks.i.1               down_blocks.L.attentions.j   emb_layers.1 -> time_emb_proj, out_layers.0 ->
    input_blocks.i.0.op            down_blocks.L.downsamplers.0.conv     norm2, out_layers.3 -> conv2,
    middle_block.0 / .1 / .2       mid_block.resnets.0 / attentions.0 / resnets.1      skip_connection ->
    output_blocks.o.0 / .1         up_blocks.U.resnets.j / attentions.j                   conv_shortcut
    output_blocks.o.k.conv         up_blocks.U.upsamplers.0.conv   (k = 1, or 2 after an attention)
    out.0 / out.2                  conv_norm_out / conv_out
    label_emb (an Embedding)       class_embedding
    label_emb.0.0 / .0.2           class_embedding.linear_1 / linear_2  (SD 2 unCLIP: "projection")
                                   add_embedding.linear_1 / linear_2    (SDXL: "text_time")

where L is the level, U = levels - 1 - L (diffusers lists the up side from the lowest resolution) and j the
position inside the level. Which index belongs to which level depends only on the res blocks per level and on
where the up side's attentions sit, so the map is built from a small `KeyLayout` that comes either from a
config or from the diffusers names themselves (to read a diffusers file before its config is known).

Only UNets that diffusers' UNet2DConditionModel can express have a map: spatial transformers, learned conv
resampling, no ResBlock up/down-sampling, no codebook head, no "continuous" class input. The others
(the unconditional LDMs with plain attention blocks) live in diffusers' UNet2DModel, whose attention splits
`qkv` into three tensors: no one-to-one key map exists, so `to_diffusers_name` answers None.

The names follow diffusers' layout as its conversion script `convert_original_stable_diffusion_to_diffusers`
produces it; this module is our own code, checked in the tests against a real UNet2DConditionModel.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..model.config import UNetConfig
from ..model.plan import plan_blocks, walk_u

LabelKind = Literal["embedding", "class_projection", "addition", "continuous"] | None

# Inside a ResBlock: original child -> diffusers child. The SiLU and Dropout children have no parameters and no
# diffusers counterpart; a path through them maps to None.
_RESNET = {
    "in_layers.0": "norm1",
    "in_layers.2": "conv1",
    "emb_layers.1": "time_emb_proj",
    "out_layers.0": "norm2",
    "out_layers.3": "conv2",
    "skip_connection": "conv_shortcut",
}
_DOWNSAMPLE = {"op": "conv"}
_UPSAMPLE = {"conv": "conv"}

# Top-level names of each layout, to tell UNet keys from the rest of a file without a prefix.
LDM_TOP_LEVEL = frozenset(
    {"time_embed", "label_emb", "input_blocks", "middle_block", "output_blocks", "out", "id_predictor"}
)
DIFFUSERS_TOP_LEVEL = frozenset(
    {
        "conv_in",
        "time_proj",
        "time_embedding",
        "class_embedding",
        "add_embedding",
        "add_time_proj",
        "down_blocks",
        "mid_block",
        "up_blocks",
        "conv_norm_out",
        "conv_act",
        "conv_out",
    }
)


@dataclass(frozen=True)
class KeyLayout:
    """What fixes the index arithmetic between the two layouts."""

    # ResBlocks per level on the way down (the way up has one more).
    num_res_blocks: tuple[int, ...]
    # Per level, per position on the way up (0..num_res_blocks): does that output block hold an attention?
    # It moves the upsampler from sub-index 1 to 2 in the level's last output block.
    up_attention: tuple[tuple[bool, ...], ...]
    label: LabelKind = None


@dataclass(frozen=True)
class _Pair:
    ldm: str
    diffusers: str
    # Child renames for the part of a path below the pair (None: the rest is kept as it is).
    children: dict[str, str] | None = None
    # A container with no one-to-one children (a path below it is resolved by a longer pair or not at all).
    exact_only: bool = False


def unsupported_reason(config: UNetConfig) -> str | None:
    """Why diffusers' UNet2DConditionModel cannot name this UNet's keys one-to-one, or None when it can."""
    if not config.use_spatial_transformer:
        return "plain attention blocks: diffusers keeps them in UNet2DModel, which splits qkv into to_q/to_k/to_v"
    if config.resblock_updown:
        return "ResBlock up/down-sampling (resblock_updown) has no UNet2DConditionModel counterpart"
    if not config.conv_resample:
        return "resampling without convolutions (conv_resample=False) has no UNet2DConditionModel counterpart"
    if config.dims != 2:
        return f"dims={config.dims}: UNet2DConditionModel is 2D only"
    if config.n_embed is not None:
        return "a codebook head (n_embed) has no UNet2DConditionModel counterpart"
    if config.num_classes == "continuous":
        return "a continuous class input (num_classes='continuous') has no UNet2DConditionModel counterpart"
    return None


def layout_from_config(config: UNetConfig, label: LabelKind = None) -> KeyLayout:
    """The layout of a config. `label` overrides where a sequential label embedding goes (see `label_kind`)."""
    up: list[list[bool]] = [[] for _ in config.channel_mult]
    for block in plan_blocks(config):
        if block.stage == "up" and block.level is not None:
            up[block.level].append(bool(block.attention))
    return KeyLayout(config.num_res_blocks, tuple(tuple(u) for u in up), label or label_kind(config))


def label_kind(config: UNetConfig) -> LabelKind:
    """Where the label embedding goes in diffusers.

    An Embedding is `class_embedding`. A sequential MLP is `add_embedding` ("text_time") in SDXL and
    `class_embedding` ("projection") in SD 2 unCLIP; the two are told apart by the SDXL layout, whose full
    resolution level has no attention (the original configs say no more than that; diffusers' own converter
    looks at the context width instead).
    """
    nc = config.num_classes
    if nc is None:
        return None
    if nc == "continuous":
        return "continuous"
    if nc == "sequential":
        return "class_projection" if 1 in config.attention_resolutions else "addition"
    return "embedding"


def layout_from_diffusers_keys(keys: Iterable[str]) -> KeyLayout:
    """The layout read off diffusers names: resnets per down block, attentions per up block, the label input."""
    resnets: dict[int, set[int]] = {}
    up_attn: dict[int, set[int]] = {}
    names = set(keys)
    levels = 0
    for key in names:
        parts = key.split(".")
        if len(parts) < 2 or parts[0] != "down_blocks" or not parts[1].isdigit():
            continue
        levels = max(levels, int(parts[1]) + 1)
        if len(parts) >= 4 and parts[2] == "resnets" and parts[3].isdigit():
            resnets.setdefault(int(parts[1]), set()).add(int(parts[3]))
    for key in names:
        parts = key.split(".")
        if len(parts) >= 4 and parts[0] == "up_blocks" and parts[2] == "attentions" and (parts[1] + parts[3]).isdigit():
            up_attn.setdefault(int(parts[1]), set()).add(int(parts[3]))
    # A level's count is its highest resnet index plus one (a missing middle resnet shows up as missing keys).
    num_res = tuple(max(resnets.get(level, {0})) + 1 for level in range(levels))
    up = tuple(
        tuple(j in up_attn.get(levels - 1 - level, set()) for j in range(num_res[level] + 1)) for level in range(levels)
    )
    label: LabelKind = None
    if "add_embedding.linear_1.weight" in names:
        label = "addition"
    elif "class_embedding.linear_1.weight" in names:
        label = "class_projection"
    elif "class_embedding.weight" in names:
        label = "embedding"
    return KeyLayout(num_res, up, label)


def _pairs(layout: KeyLayout) -> list[_Pair]:
    """Every module pair of the layout, containers first."""
    pairs = [
        _Pair("time_embed", "time_embedding", exact_only=True),
        _Pair("time_embed.0", "time_embedding.linear_1"),
        _Pair("time_embed.2", "time_embedding.linear_2"),
        _Pair("input_blocks.0.0", "conv_in"),
        _Pair("middle_block", "mid_block", exact_only=True),
        _Pair("middle_block.0", "mid_block.resnets.0", _RESNET),
        _Pair("middle_block.1", "mid_block.attentions.0"),
        _Pair("middle_block.2", "mid_block.resnets.1", _RESNET),
        _Pair("out.0", "conv_norm_out"),
        _Pair("out.2", "conv_out"),
    ]
    if layout.label == "embedding":
        pairs.append(_Pair("label_emb", "class_embedding"))
    elif layout.label in ("class_projection", "addition"):
        target = "class_embedding" if layout.label == "class_projection" else "add_embedding"
        pairs += [
            _Pair("label_emb", target, exact_only=True),
            _Pair("label_emb.0.0", f"{target}.linear_1"),
            _Pair("label_emb.0.2", f"{target}.linear_2"),
        ]
    levels = len(layout.num_res_blocks)
    for slot in walk_u(layout.num_res_blocks):
        level, j, path = slot.level, slot.position, slot.path
        if slot.kind == "res":
            pairs += [
                _Pair(f"{path}.0", f"down_blocks.{level}.resnets.{j}", _RESNET),
                _Pair(f"{path}.1", f"down_blocks.{level}.attentions.{j}"),
            ]
        elif slot.kind == "downsample":
            pairs.append(_Pair(f"{path}.0", f"down_blocks.{level}.downsamplers.0", _DOWNSAMPLE))
        elif slot.kind == "up":
            u = levels - 1 - level  # diffusers lists the up side from the lowest resolution
            has_attention = layout.up_attention[level][j]
            pairs.append(_Pair(f"{path}.0", f"up_blocks.{u}.resnets.{j}", _RESNET))
            if has_attention:
                pairs.append(_Pair(f"{path}.1", f"up_blocks.{u}.attentions.{j}"))
            if slot.upsample:
                k = 2 if has_attention else 1
                pairs.append(_Pair(f"{path}.{k}", f"up_blocks.{u}.upsamplers.0", _UPSAMPLE))
    return pairs


class KeyMap:
    """Both directions of the map for one layout, looked up by the longest matching module prefix."""

    def __init__(self, layout: KeyLayout, extra: Iterable[tuple[str, str]] = ()) -> None:
        """`extra`: more (original, diffusers) module pairs whose children keep their names (a ControlNet's)."""
        self.layout = layout
        pairs = [*_pairs(layout), *(_Pair(ldm, diffusers) for ldm, diffusers in extra)]
        self._forward = {p.ldm: p for p in pairs}
        self._backward = {p.diffusers: p for p in pairs}

    def to_diffusers(self, path: str) -> str | None:
        return _translate(path, self._forward, forward=True)

    def from_diffusers(self, name: str) -> str | None:
        return _translate(name, self._backward, forward=False)


def _translate(path: str, table: dict[str, _Pair], *, forward: bool) -> str | None:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        pair = table.get(".".join(parts[:cut]))
        if pair is None:
            continue
        target = pair.diffusers if forward else pair.ldm
        rest = parts[cut:]
        if not rest:
            return target
        if pair.exact_only:
            continue  # a longer pair would have matched; look for a shorter one (none is wanted, so usually None)
        if pair.children is None:
            return ".".join([target, *rest])
        children = pair.children if forward else {v: k for k, v in pair.children.items()}
        for n in (2, 1):
            head = ".".join(rest[:n])
            if len(rest) >= n and head in children:
                return ".".join([target, children[head], *rest[n:]])
        return None
    return None


def keymap_for(config: UNetConfig, label: LabelKind = None) -> KeyMap | None:
    """The map of a config, or None when diffusers cannot express it (see `unsupported_reason`)."""
    if unsupported_reason(config) is not None:
        return None
    return KeyMap(layout_from_config(config, label))


def to_diffusers_name(path: str, config: UNetConfig, label: LabelKind = None) -> str | None:
    """The diffusers name of an original parameter or module path; None where there is no one-to-one name."""
    keymap = keymap_for(config, label)
    return keymap.to_diffusers(path) if keymap else None


def from_diffusers_name(name: str, config: UNetConfig, label: LabelKind = None) -> str | None:
    """The original name of a diffusers parameter or module path; None where there is no one-to-one name."""
    keymap = keymap_for(config, label)
    return keymap.from_diffusers(name) if keymap else None
