"""Compare two traces, and follow one model's cost across image sizes: plain functions over typed traces.

Tables are per stage (embed, down, mid, up, out), per (stage, level) and per category of module; the structural
comparison lists, per level, what each block is made of (category, class and transformer depth), so that the
page can say in words that SDXL has no attention at the highest resolution and stacks ten transformer blocks at
the lowest without parsing any text.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .schema import Node, Totals, Trace, TraceInput

STAGES = ("embed", "down", "mid", "up", "out")
# Categories counted in the per-kind table: the parts a reader compares. Nested ones overlap (a transformer_block
# is inside a spatial_transformer), but no module is counted twice under one category.
KIND_CATEGORIES = (
    "resblock",
    "spatial_transformer",
    "transformer_block",
    "self_attention",
    "cross_attention",
    "feed_forward",
    "attention_block",
    "downsample",
    "upsample",
    "time_embedding",
    "label_embedding",
    "input_conv",
    "output_head",
    "codebook_head",
)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cost(_Out):
    params: int
    flops: int
    attention_flops: int


class LevelCost(Cost):
    blocks: int


class KindCost(_Out):
    count: int
    params: int
    flops: int


class Part(_Out):
    """One child of a top-level block, as the comparison sees it."""

    category: str
    kind: str
    depth: int | None = Field(None, description="transformer blocks, for a spatial transformer")


class BlockMakeup(_Out):
    path: str
    parts: list[Part]


class Side(_Out):
    preset: str | None
    input: TraceInput
    totals: Totals


class StageRow(_Out):
    key: str
    a: Cost | None
    b: Cost | None


class LevelRow(_Out):
    key: str = Field(description="`down.0`, ..., `mid`, `up.0`, ...")
    a: LevelCost | None
    b: LevelCost | None


class KindRow(_Out):
    key: str = Field(description="a node category")
    a: KindCost | None
    b: KindCost | None


class Difference(_Out):
    where: str = Field(description="the level key, as in by_level")
    a: list[BlockMakeup] | None
    b: list[BlockMakeup] | None


class Comparison(_Out):
    a: Side
    b: Side
    by_stage: list[StageRow]
    by_level: list[LevelRow]
    by_kind: list[KindRow]
    composition_a: dict[str, list[BlockMakeup]] = Field(description="level key -> what each block there holds")
    composition_b: dict[str, list[BlockMakeup]]
    differences: list[Difference] = Field(description="levels whose blocks are made of different parts")


class ScalingPoint(_Out):
    image_size: list[int]
    sample_size: list[int]
    flops: int
    attention_flops: int
    other_flops: int
    activation_bytes: int
    peak_activation_bytes: int
    peak_activation_bytes_fused: int
    peak_memory_bytes: int
    time_ms: float | None


class Scaling(_Out):
    preset: str
    points: list[ScalingPoint]


def _level_key(stage: str, level: int | None) -> str:
    # The middle block sits at the lowest level, whichever number that is: compare it as "mid".
    return "mid" if stage == "mid" else f"{stage}.{level}"


def _order(key: str) -> tuple[int, int]:
    stage, _, level = key.partition(".")
    return (STAGES.index(stage), int(level or 0))


def _cost(node: Node) -> dict[str, int]:
    return {"params": node.params, "flops": node.flops, "attention_flops": node.flops_by_op.attention}


def totals_by_stage(trace: Trace) -> dict[str, Cost]:
    out = {s: {"params": 0, "flops": 0, "attention_flops": 0} for s in STAGES}
    for block in trace.blocks:
        for k, v in _cost(trace.node(block.path)).items():
            out[block.stage][k] += v
    return {s: Cost(**v) for s, v in out.items()}


def totals_by_level(trace: Trace) -> dict[str, LevelCost]:
    out: dict[str, dict[str, int]] = {}
    for block in trace.blocks:
        if block.stage not in ("down", "mid", "up"):
            continue
        row = out.setdefault(_level_key(block.stage, block.level), {"params": 0, "flops": 0, "attention_flops": 0})
        for k, v in _cost(trace.node(block.path)).items():
            row[k] += v
        row["blocks"] = row.get("blocks", 0) + 1
    return {k: LevelCost(**v) for k, v in out.items()}


def totals_by_kind(trace: Trace) -> dict[str, KindCost]:
    """Per category: how many modules, and their params and FLOPs."""
    out: dict[str, dict[str, int]] = {}
    for node in trace.nodes:
        if node.category in KIND_CATEGORIES:
            row = out.setdefault(node.category, {"count": 0, "params": 0, "flops": 0})
            row["count"] += 1
            row["params"] += node.params
            row["flops"] += node.flops
    return {k: KindCost(**out[k]) for k in KIND_CATEGORIES if k in out}


def level_composition(trace: Trace) -> dict[str, list[BlockMakeup]]:
    """(stage.level) -> what each block there is made of: its children's categories, classes and depths."""
    out: dict[str, list[BlockMakeup]] = {}
    for block in trace.blocks:
        if block.stage not in ("down", "mid", "up") or block.category == "input_conv":
            continue
        parts = []
        for child in trace.node(block.path).children:
            node = trace.node(child)
            depth = node.attention.depth if node.attention else None
            parts.append(Part(category=node.category, kind=node.kind, depth=depth))
        out.setdefault(_level_key(block.stage, block.level), []).append(BlockMakeup(path=block.path, parts=parts))
    return out


def _same_makeup(a: list[BlockMakeup] | None, b: list[BlockMakeup] | None) -> bool:
    if a is None or b is None:
        return a is b
    return [m.parts for m in a] == [m.parts for m in b]


def compare_traces(a: Trace, b: Trace) -> Comparison:
    comp_a, comp_b = level_composition(a), level_composition(b)
    differences = [
        Difference(where=key, a=comp_a.get(key), b=comp_b.get(key))
        for key in sorted(set(comp_a) | set(comp_b), key=_order)
        if not _same_makeup(comp_a.get(key), comp_b.get(key))
    ]
    stage_a, stage_b = totals_by_stage(a), totals_by_stage(b)
    kind_a, kind_b = totals_by_kind(a), totals_by_kind(b)
    level_a, level_b = totals_by_level(a), totals_by_level(b)
    levels = sorted(set(level_a) | set(level_b), key=_order)
    return Comparison(
        a=Side(preset=a.preset, input=a.input, totals=a.totals),
        b=Side(preset=b.preset, input=b.input, totals=b.totals),
        by_stage=[StageRow(key=k, a=stage_a.get(k), b=stage_b.get(k)) for k in STAGES],
        by_level=[LevelRow(key=k, a=level_a.get(k), b=level_b.get(k)) for k in levels],
        by_kind=[
            KindRow(key=k, a=kind_a.get(k), b=kind_b.get(k)) for k in KIND_CATEGORIES if k in kind_a or k in kind_b
        ],
        composition_a=comp_a,
        composition_b=comp_b,
        differences=differences,
    )


def scaling_point(inp: TraceInput, t: Totals) -> ScalingPoint:
    """One size of a scaling curve: a trace's `input` and `totals` (or `trace_totals`'s pair)."""
    return ScalingPoint(
        image_size=inp.image_size,
        sample_size=inp.sample_size,
        flops=t.flops,
        attention_flops=t.attention_flops,
        other_flops=t.flops - t.attention_flops,
        activation_bytes=t.activation_bytes,
        peak_activation_bytes=t.peak_activation_bytes,
        peak_activation_bytes_fused=t.peak_activation_bytes_fused,
        peak_memory_bytes=t.peak_memory_bytes,
        time_ms=t.time_ms,
    )
