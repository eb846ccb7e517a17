"""Where a checkpoint's attention sits and what it is, from the shapes: attention_resolutions and
num_attention_blocks, plain attention blocks or spatial transformers, their depth at every block (per level, or
per block where a distilled model varies it: SSD-1B), context widths, projections, disabled self-attention, and
the middle block's kind (ResBlock, attention, ResBlock; a lone ResBlock; none).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .header import CheckpointError
from .infer_shapes import MAX_TRANSFORMER_DEPTH, Module, Shapes, U, shape_of


def attention_settings(shapes: Shapes, blocks: dict[str, dict[int, Module]], u: U, notes: list[str]) -> dict[str, Any]:
    """Where attention sits (attention_resolutions, num_attention_blocks), of which kind, and its settings."""

    def attention_of(block: str) -> Module | None:
        m = blocks.get(block, {}).get(1)
        return m if m is not None and m.kind in ("transformer", "attention") else None

    levels = len(u.num_res_blocks)
    down = [[attention_of(f"input_blocks.{i}") for i in positions] for positions in u.down_at]
    up = [[attention_of(f"output_blocks.{o}") for o in positions] for positions in u.up_at]
    middle, middle_block = _middle(blocks, attention_of("middle_block"))
    attended = [level for level in range(levels) if any(down[level]) or any(up[level])]
    # num_attention_blocks gives attention to the first n res blocks of a level.
    counts = [len(_leading(down[level])) for level in range(levels)]
    num_attention_blocks = None
    if any(counts[level] != u.num_res_blocks[level] for level in attended):
        num_attention_blocks = tuple(
            counts[level] if level in attended else u.num_res_blocks[level] for level in range(levels)
        )
    present = [m for row in down + up for m in row if m is not None] + ([middle] if middle else [])
    spatial = bool(present) and present[-1].kind == "transformer"
    if any((m.kind == "transformer") != spatial for m in present):
        raise CheckpointError("shapes", "mixes spatial transformers and plain attention blocks: shapes fit no UNet")
    out: dict[str, Any] = {
        "attention_resolutions": tuple(2**level for level in attended),
        "num_attention_blocks": num_attention_blocks,
        "middle_block": middle_block,
    }
    if spatial:
        out.update(_transformers(shapes, down, up, middle, levels, notes))
    return out


def _middle(blocks: dict[str, dict[int, Module]], attention: Module | None) -> tuple[Module | None, str | None]:
    """The middle block's attention and kind: ResBlock, attention, ResBlock; a lone ResBlock (SSD-1B, Vega); none
    (BK-SDM Small and Tiny)."""
    children = blocks.get("middle_block", {})
    if attention is not None:
        return attention, "attention"
    if not children:
        return None, None
    if set(children) == {0} and children[0].kind == "res":
        return None, "resblock"
    kinds = {sub: m.kind for sub, m in sorted(children.items())}
    raise CheckpointError(
        "shapes",
        f"middle_block holds {kinds}: not ResBlock, attention, ResBlock, nor a lone ResBlock: shapes fit no UNet",
    )


def _leading(row: list[Any]) -> list[Any]:
    """The leading run of present attentions (num_attention_blocks gives attention to the first n blocks)."""
    out = []
    for m in row:
        if m is None:
            break
        out.append(m)
    return out


class _Transformer(NamedTuple):
    """What one SpatialTransformer's shapes say."""

    depth: int
    contexts: list[int]  # the context width of each transformer block
    linear: bool  # Linear (SD 2.x, SDXL) or 1x1-conv (SD 1.x, LDM) projections
    self_disabled: bool | None  # attn1 attends to the context; None when the shapes cannot tell


def _read_transformer(shapes: Shapes, m: Module) -> _Transformer:
    indices = {int(n.split(".")[1]) for n in m.names if n.startswith("transformer_blocks.")}
    proj = shape_of(shapes, f"{m.path}.proj_in.weight", (2, 4))
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
        to_k = shape_of(shapes, key, 2)
        if to_k is None:
            raise CheckpointError("shapes", f"{key} is missing, so the context width is unknown")
        contexts.append(to_k[1])
    # attn1 reads the context instead of its own input when self-attention is disabled (x4 upscaler); when the
    # context is as wide as the attention, its key matrix is the same shape either way.
    self_key = shape_of(shapes, f"{m.path}.transformer_blocks.0.attn1.to_k.weight", 2) or (inner, inner)
    self_disabled = None if contexts[0] == inner else self_key[1] != inner
    return _Transformer(depth, contexts, len(proj) == 2, self_disabled)


def _transformers(
    shapes: Shapes,
    down_attn: list[list[Module | None]],
    up_attn: list[list[Module | None]],
    middle: Module | None,
    levels: int,
    notes: list[str],
) -> dict[str, Any]:
    """Depths, context widths, projections and disabled self-attention of the spatial transformers."""

    def read(row: list[Module | None]) -> list[_Transformer | None]:
        return [_read_transformer(shapes, m) if m is not None else None for m in row]

    down, up = [read(row) for row in down_attn], [read(row) for row in up_attn]
    per_level: dict[int, _Transformer] = {}
    for level in range(levels):
        present = [t for t in down[level] + up[level] if t is not None]
        if present:  # the level's first transformer speaks for its context and self-attention
            per_level[level] = present[0]
    mid = _read_transformer(shapes, middle) if middle is not None else None
    every = [t for row in down + up for t in row if t is not None]
    infos = [*every, *([mid] if mid else [])]
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
    # Distilled models vary the depth inside a level or between the way down and up (SSD-1B): per-block lists.
    per_block: dict[str, Any] = {}
    for name, rows in (("transformer_depth_down", down), ("transformer_depth_up", up)):
        table = tuple(
            tuple(t.depth if t is not None else transformer_depth[level] for t in row) for level, row in enumerate(rows)
        )
        if any(set(row) != {transformer_depth[level]} for level, row in enumerate(table)):
            per_block[name] = table

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
    if any(d is None for d in [*disabled.values(), *([mid.self_disabled] if mid else [])]):
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
        "transformer_depth_middle": mid.depth if mid else None,
        "context_dim": context_dim,
        "disable_self_attentions": disable_self_attentions,
        "disable_middle_self_attn": bool(mid and mid.self_disabled),
        **per_block,
    }
