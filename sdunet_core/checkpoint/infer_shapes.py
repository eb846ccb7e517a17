"""The skeleton of a UNet read off the shapes of a state dict with the original key names: the tensors grouped by
top-level block and child, and the U's levels and res blocks per level from where the resamplers sit.

Shared by `infer_config` (the whole config) and `infer_attention` (where attention sits and how deep).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict

from ..model.plan import walk_u
from .header import CheckpointError

Shapes = dict[str, tuple[int, ...]]

# Bounds that keep a hostile header from making a server build a huge model (released UNets: 5 levels, 3 blocks).
MAX_LEVELS = 12
MAX_RES_BLOCKS = 32
MAX_TRANSFORMER_DEPTH = 64  # SDXL has 10

_BLOCK = re.compile(r"^(input_blocks\.\d+|output_blocks\.\d+|middle_block)\.(\d+)\.(.+)$")


@dataclasses.dataclass
class Module:
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


def group_blocks(shapes: Shapes) -> dict[str, dict[int, Module]]:
    """Top-level block -> sub-index -> module."""
    blocks: dict[str, dict[int, Module]] = defaultdict(dict)
    for key in shapes:
        m = _BLOCK.match(key)
        if not m:
            continue
        block, sub, rest = m.group(1), int(m.group(2)), m.group(3)
        blocks[block].setdefault(sub, Module(f"{block}.{sub}", set())).names.add(rest)
    return blocks


@dataclasses.dataclass(frozen=True)
class U:
    """The U's skeleton: res blocks per level, how it resamples, and where each level's blocks sit."""

    num_res_blocks: tuple[int, ...]
    conv_resample: bool
    resblock_updown: bool
    down_at: list[list[int]]  # per level: the input block indices of its ResBlocks
    up_at: list[list[int]]  # per level: its output block indices


def read_u(blocks: dict[str, dict[int, Module]]) -> U:
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
    return U(num_res_blocks, conv_resample, resblock_updown, down_at, up_at)


def need(shapes: Shapes, key: str, rank: int | tuple[int, ...]) -> tuple[int, ...]:
    shape = shape_of(shapes, key, rank)
    if shape is None:
        raise CheckpointError("shapes", f"{key} is missing, so the UNet's layout cannot be read")
    return shape


def shape_of(shapes: Shapes, key: str, rank: int | tuple[int, ...]) -> tuple[int, ...] | None:
    """A tensor's shape, None when absent; a CheckpointError naming the tensor when its rank is wrong."""
    if key not in shapes:
        return None
    ranks = (rank,) if isinstance(rank, int) else rank
    if len(shapes[key]) not in ranks:
        expected = " or ".join(map(str, ranks))
        raise CheckpointError(key, f"expected a {expected}-d tensor, found {list(shapes[key])}: shapes fit no UNet")
    return shapes[key]
