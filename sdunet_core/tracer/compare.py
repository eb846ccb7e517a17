"""Compare two traces, and follow one model's cost across image sizes: plain functions over typed traces.

Tables are per stage (embed, down, mid, up, out), per (stage, level) and per category of module; the structural
comparison lists, per level, what each block is made of (category, class and transformer depth), so that the
page can say in words that SDXL has no attention at the highest resolution and stacks ten transformer blocks at
the lowest without parsing any text.

Block by block (`blocks`), b is read against a: a block of a that b lacks is `removed` (a distilled or pruned
variant against its parent: BK-SDM drops res/attention pairs, the middle block, a whole level), one only b has is
`added`, and the others are `same` or `different` by what they are made of. Blocks are matched by level and
role: the input conv, the res blocks in order, the downsampler; on the way up the blocks in order, except that a
level's last block (the one that ends with the upsampler) matches the other's last. `saved` gives the parameters
and MACs b saves against a, per stage and in total.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model.plan import STAGES, Stage
from ..schema import Block, Node, Totals, Trace, TraceInput

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
    stage: Stage = Field(description="the key's stage")
    level: int | None = Field(description="the key's level (null for `mid`, compared whatever its level)")
    a: LevelCost | None
    b: LevelCost | None


class KindRow(_Out):
    key: str = Field(description="a node category")
    a: KindCost | None
    b: KindCost | None


class Difference(_Out):
    where: str = Field(description="the level key, as in by_level")
    stage: Stage = Field(description="its stage")
    level: int | None = Field(description="its level (null for `mid`)")
    status: Literal["different", "removed", "added"] = Field(
        description="`removed`: the level is only in a; `added`: only in b; `different`: its blocks differ"
    )
    a: list[BlockMakeup] | None
    b: list[BlockMakeup] | None


class BlockMatch(_Out):
    """One block of a against its counterpart in b."""

    where: str = Field(description="the level key, as in by_level")
    a: str | None = Field(description="the block's path in a (null: added in b)")
    b: str | None = Field(description="its counterpart's path in b (null: removed in b)")
    status: Literal["same", "different", "removed", "added"] = Field(
        description="`removed`: in a, not in b; `added`: in b, not in a; else by what the two are made of"
    )
    a_parts: list[Part] | None
    b_parts: list[Part] | None
    params_saved: int = Field(description="a's parameters minus b's (a missing block counts 0)")
    macs_saved: int = Field(description="a's MACs minus b's")
    macs_saved_without_attention: int = Field(description="the same without the attention matmuls")


class Saving(_Out):
    """What b saves against a in one stage (or in total)."""

    key: str = Field(description="a stage (`embed`, `down`, `mid`, `up`, `out`) or `total`")
    params_a: int
    params_b: int
    params_saved: int
    macs_a: int
    macs_b: int
    macs_saved: int
    macs_without_attention_a: int = Field(description="comparable to published MAC tables (attention left out)")
    macs_without_attention_b: int
    macs_saved_without_attention: int


class Comparison(_Out):
    a: Side
    b: Side
    by_stage: list[StageRow]
    by_level: list[LevelRow]
    by_kind: list[KindRow]
    composition_a: dict[str, list[BlockMakeup]] = Field(description="level key -> what each block there holds")
    composition_b: dict[str, list[BlockMakeup]]
    differences: list[Difference] = Field(description="levels whose blocks are made of different parts")
    blocks: list[BlockMatch] = Field(description="block by block, b against a (removed, added, same, different)")
    saved: list[Saving] = Field(description="parameters and MACs b saves against a, per stage, then `total`")


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


def _place(key: str) -> dict[str, str | int | None]:
    """{stage, level} of a level key: what the rows carry besides it, so that no reader splits the string."""
    stage, _, level = key.partition(".")
    return {"stage": stage, "level": int(level) if level else None}


def _order(key: str) -> tuple[int, int]:
    place = _place(key)
    return (STAGES.index(place["stage"]), place["level"] or 0)


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


def _role(block: Block) -> str:
    return {"input_conv": "input_conv", "downsample_block": "downsample"}.get(block.category, "block")


def _pair_level(a: list[Block], b: list[Block]) -> list[tuple[Block | None, Block | None]]:
    """Counterparts inside one level (see the module docstring)."""
    pairs: list[tuple[Block | None, Block | None]] = []
    for role in ("input_conv", "block", "downsample"):
        xs, ys = [x for x in a if _role(x) == role], [y for y in b if _role(y) == role]
        if role == "block" and xs and ys and xs[0].stage == "up" and len(xs) != len(ys):
            # The block that ends the level (with the upsampler) matches the other level's last one.
            head = list(zip(xs[:-1], ys[:-1], strict=False))
            rest = [(x, None) for x in xs[len(ys) - 1 : -1]] + [(None, y) for y in ys[len(xs) - 1 : -1]]
            pairs += [*head, *rest, (xs[-1], ys[-1])]
            continue
        n = max(len(xs), len(ys))
        pairs += [(xs[i] if i < len(xs) else None, ys[i] if i < len(ys) else None) for i in range(n)]
    return pairs


def _parts(trace: Trace, path: str) -> list[Part]:
    out = []
    for child in trace.node(path).children:
        node = trace.node(child)
        out.append(Part(category=node.category, kind=node.kind, depth=node.attention.depth if node.attention else None))
    return out


def _macs(node: Node | None) -> tuple[int, int, int]:
    """(params, MACs, MACs without attention) of a block; zeros for a missing one."""
    if node is None:
        return 0, 0, 0
    return node.params, node.flops // 2, (node.flops - node.flops_by_op.attention) // 2


def match_blocks(a: Trace, b: Trace) -> list[BlockMatch]:
    """Every block of the down stage, the middle and the up stage of a against its counterpart in b, in the order
    the forward runs them."""

    def by_level(trace: Trace) -> dict[str, list[Block]]:
        out: dict[str, list[Block]] = {}
        for block in trace.blocks:
            if block.stage in ("down", "mid", "up"):
                out.setdefault(_level_key(block.stage, block.level), []).append(block)
        return out

    def execution_order(key: str) -> tuple[int, int]:
        stage, level = _order(key)
        return stage, -level if key.startswith("up") else level  # the way up runs from the lowest level

    la, lb = by_level(a), by_level(b)
    out = []
    for key in sorted(set(la) | set(lb), key=execution_order):
        for x, y in _pair_level(la.get(key, []), lb.get(key, [])):
            pa = _parts(a, x.path) if x else None
            pb = _parts(b, y.path) if y else None
            status = "removed" if y is None else "added" if x is None else "same" if pa == pb else "different"
            ca, cb = _macs(a.node(x.path) if x else None), _macs(b.node(y.path) if y else None)
            out.append(
                BlockMatch(
                    where=key,
                    a=x.path if x else None,
                    b=y.path if y else None,
                    status=status,
                    a_parts=pa,
                    b_parts=pb,
                    params_saved=ca[0] - cb[0],
                    macs_saved=ca[1] - cb[1],
                    macs_saved_without_attention=ca[2] - cb[2],
                )
            )
    return out


def savings(stage_a: dict[str, Cost], stage_b: dict[str, Cost], a: Totals, b: Totals) -> list[Saving]:
    def row(key: str, pa: int, pb: int, fa: int, fb: int, aa: int, ab: int) -> Saving:
        ma, mb, wa, wb = fa // 2, fb // 2, (fa - aa) // 2, (fb - ab) // 2
        return Saving(
            key=key,
            params_a=pa,
            params_b=pb,
            params_saved=pa - pb,
            macs_a=ma,
            macs_b=mb,
            macs_saved=ma - mb,
            macs_without_attention_a=wa,
            macs_without_attention_b=wb,
            macs_saved_without_attention=wa - wb,
        )

    rows = []
    for k in STAGES:
        x, y = stage_a[k], stage_b[k]
        rows.append(row(k, x.params, y.params, x.flops, y.flops, x.attention_flops, y.attention_flops))
    rows.append(row("total", a.params, b.params, a.flops, b.flops, a.attention_flops, b.attention_flops))
    return rows


def compare_traces(a: Trace, b: Trace) -> Comparison:
    comp_a, comp_b = level_composition(a), level_composition(b)
    differences = [
        Difference(
            where=key,
            **_place(key),
            status="removed" if key not in comp_b else "added" if key not in comp_a else "different",
            a=comp_a.get(key),
            b=comp_b.get(key),
        )
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
        by_level=[LevelRow(key=k, **_place(k), a=level_a.get(k), b=level_b.get(k)) for k in levels],
        by_kind=[
            KindRow(key=k, a=kind_a.get(k), b=kind_b.get(k)) for k in KIND_CATEGORIES if k in kind_a or k in kind_b
        ],
        composition_a=comp_a,
        composition_b=comp_b,
        differences=differences,
        blocks=match_blocks(a, b),
        saved=savings(stage_a, stage_b, a.totals, b.totals),
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
