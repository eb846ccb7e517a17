"""The plan of the U: which top-level block sits where, with its channels, attention and resampling.

`walk_u()` is the one walk over the U's slots (stage, level, position in the level) that the original
constructor makes; `plan_blocks()` puts a config's channels and attention on it, `UNetModel` builds from that
plan, and the diffusers key map and the checkpoint reader use the same walk to number blocks. Nothing else
counts indices.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .categories import BlockCategory

if TYPE_CHECKING:
    from .config import UNetConfig

Stage = Literal["embed", "down", "mid", "up", "out"]
STAGES: tuple[Stage, ...] = typing.get_args(Stage)  # in execution order
SlotKind = Literal["input_conv", "res", "downsample", "middle", "up"]


@dataclass(frozen=True)
class Slot:
    """One place of the U: an input block, the middle block or an output block."""

    path: str
    stage: Literal["down", "mid", "up"]
    level: int
    # Position inside the level: res blocks 0..n-1 and the downsampler n on the way down; 0..n on the way up.
    position: int
    kind: SlotKind
    upsample: bool = False  # the last up block of every level but the top one ends with an upsampler


def walk_u(num_res_blocks: tuple[int, ...], middle: bool = True) -> list[Slot]:
    """Every slot of a U with these res blocks per level on the way down (the way up has one more per level).

    The way up has to have one more: level L's up blocks take the skips made at its resolution, its res blocks'
    outputs and the input conv's or the downsampler's before them. `middle=False` leaves the middle block out
    (BK-SDM Small and Tiny); the indices of the other slots stay as they are.
    """
    levels = len(num_res_blocks)
    slots = [Slot("input_blocks.0", "down", 0, 0, "input_conv")]
    index = 1
    for level, count in enumerate(num_res_blocks):
        for j in range(count):
            slots.append(Slot(f"input_blocks.{index}", "down", level, j, "res"))
            index += 1
        if level != levels - 1:
            slots.append(Slot(f"input_blocks.{index}", "down", level, count, "downsample"))
            index += 1
    if middle:
        slots.append(Slot("middle_block", "mid", levels - 1, 0, "middle"))
    index = 0
    for level in reversed(range(levels)):
        for j in range(num_res_blocks[level] + 1):
            last = j == num_res_blocks[level]
            slots.append(Slot(f"output_blocks.{index}", "up", level, j, "up", upsample=last and level > 0))
            index += 1
    return slots


@dataclass(frozen=True)
class AttentionPlan:
    """One attention layer inside a block: a SpatialTransformer or a plain AttentionBlock."""

    kind: Literal["spatial_transformer", "attention_block"]
    channels: int
    heads: int
    head_channels: int
    depth: int = 1
    context_dims: tuple[int | None, ...] = ()
    disable_self_attn: bool = False


@dataclass(frozen=True)
class BlockPlan:
    """One top-level block of the U, with what it holds and where it sits."""

    path: str  # "input_blocks.3", "middle_block", "output_blocks.0", ...
    stage: Stage
    level: int | None  # resolution level (0 = full latent resolution); None for embeddings
    category: BlockCategory
    factor: int  # downsample factor of the block's output relative to the latent
    in_channels: int
    out_channels: int
    attention: tuple[AttentionPlan, ...] = ()
    resample: Literal["down", "up"] | None = None
    skip_from: str | None = None  # for output blocks: the input block whose output is concatenated
    skip_channels: int = 0
    position: int | None = None  # position inside its level (see Slot)


def _attention(cfg: UNetConfig, level: int, position: int, width: int, factor: int, up: bool) -> tuple:
    """The attention layers of the res block at (level, position), as the original constructor decides them."""
    if factor not in cfg.attention_resolutions:
        return ()
    if cfg.num_attention_blocks is not None and position >= cfg.num_attention_blocks[level]:
        return ()
    heads, head_ch = cfg.heads_for(width, upsample=up)
    if not cfg.use_spatial_transformer:
        return (AttentionPlan("attention_block", width, heads, head_ch),)
    depth = cfg.transformer_depth_at(level, position, up)
    disabled = bool(cfg.disable_self_attentions[level]) if cfg.disable_self_attentions else False
    return (
        AttentionPlan(
            "spatial_transformer", width, heads, head_ch, depth, tuple(cfg.context_dims_for(depth)), disabled
        ),
    )


def _middle_attention(cfg: UNetConfig, ch: int) -> tuple[AttentionPlan, ...]:
    if cfg.middle_block != "attention":
        return ()  # a lone ResBlock (SSD-1B, Vega)
    heads, head_ch = cfg.heads_for(ch)
    if not cfg.use_spatial_transformer:
        return (AttentionPlan("attention_block", ch, heads, head_ch),)
    depth = cfg.transformer_depth_middle if cfg.transformer_depth_middle is not None else 1
    contexts = tuple(cfg.context_dims_for(depth))
    return (AttentionPlan("spatial_transformer", ch, heads, head_ch, depth, contexts, cfg.disable_middle_self_attn),)


def plan_blocks(cfg: UNetConfig) -> list[BlockPlan]:
    """Every top-level block of the U (input conv to output head), with channels, attention and resampling."""
    mc = cfg.model_channels
    blocks: list[BlockPlan] = []
    skips: list[tuple[str, int]] = []  # (path, channels) of every input block's output, for the way up
    ch, factor = mc, 1
    for slot in walk_u(cfg.num_res_blocks, middle=cfg.middle_block is not None):
        width = cfg.channel_mult[slot.level] * mc
        if slot.kind == "input_conv":
            block = BlockPlan(slot.path, "down", 0, "input_conv", 1, cfg.in_channels, mc, position=0)
        elif slot.kind == "res":
            attn = _attention(cfg, slot.level, slot.position, width, factor, up=False)
            block = BlockPlan(
                slot.path, "down", slot.level, "down_block", factor, ch, width, attn, position=slot.position
            )
        elif slot.kind == "downsample":
            factor *= 2
            block = BlockPlan(
                slot.path, "down", slot.level, "downsample_block", factor, ch, ch, (), "down", position=slot.position
            )
        elif slot.kind == "middle":
            block = BlockPlan(slot.path, "mid", slot.level, "middle_block", factor, ch, ch, _middle_attention(cfg, ch))
        else:
            skip_path, skip_ch = skips.pop()
            attn = _attention(cfg, slot.level, slot.position, width, factor, up=True)
            out_factor = factor // 2 if slot.upsample else factor
            block = BlockPlan(
                slot.path,
                "up",
                slot.level,
                "up_block",
                out_factor,
                ch + skip_ch,
                width,
                attn,
                resample="up" if slot.upsample else None,
                skip_from=skip_path,
                skip_channels=skip_ch,
                position=slot.position,
            )
            factor = out_factor
        if slot.stage == "down":
            skips.append((slot.path, block.out_channels))
        ch = block.out_channels
        blocks.append(block)
    blocks.append(BlockPlan("out", "out", 0, "output_head", 1, ch, cfg.out_channels))
    if cfg.n_embed is not None:
        blocks.append(BlockPlan("id_predictor", "out", 0, "codebook_head", 1, ch, cfg.n_embed))
    return blocks


def embedding_plans(cfg: UNetConfig) -> list[BlockPlan]:
    """The time embedding and, for class-conditional models, the label embedding: the blocks beside the U."""
    ted = cfg.time_embed_dim
    out = [BlockPlan("time_embed", "embed", None, "time_embedding", 1, cfg.model_channels, ted)]
    if cfg.num_classes is not None:
        width = cfg.adm_in_channels or (1 if cfg.num_classes == "continuous" else 0)
        out.append(BlockPlan("label_emb", "embed", None, "label_embedding", 1, width, ted))
    return out


def top_level_of(path: str) -> str | None:
    """The top-level block holding a module path: `input_blocks.4.1.norm` -> `input_blocks.4`; None for the
    root and for the stage lists themselves."""
    if not path:
        return None
    head, _, rest = path.partition(".")
    if head in ("input_blocks", "output_blocks", "zero_convs"):  # numbered lists (zero_convs: a ControlNet's)
        index = rest.partition(".")[0]
        return f"{head}.{index}" if index else None
    return head
