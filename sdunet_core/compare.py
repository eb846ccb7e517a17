"""Compare two traces, and follow one model's cost across image sizes: plain functions over trace dicts.

Tables are per stage (embed, down, mid, up, out), per (stage, level) and per block kind; the structural diff says in
words which levels hold different blocks, e.g. that SDXL has no attention at the highest resolution and stacks ten
transformer blocks at the lowest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

STAGES = ("embed", "down", "mid", "up", "out")
KIND_ROLES = (
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
    "output",
)


def _level_key(block: dict[str, Any]) -> str:
    # The middle block sits at the lowest level, whichever number that is: compare it as "mid".
    return "mid" if block["stage"] == "mid" else f"{block['stage']}.{block['level']}"


def _order(key: str) -> tuple[int, int]:
    stage, _, level = key.partition(".")
    return (STAGES.index(stage), int(level or 0))


def _top_nodes(trace: dict[str, Any]) -> list[dict[str, Any]]:
    by_path = {n["path"]: n for n in trace["nodes"]}
    return [by_path[b["path"]] | {"block": b} for b in trace["blocks"]]


def totals_by_stage(trace: dict[str, Any]) -> dict[str, dict[str, int]]:
    out = {s: {"params": 0, "flops": 0, "attention_flops": 0} for s in STAGES}
    for node in _top_nodes(trace):
        row = out[node["block"]["stage"]]
        row["params"] += node["params"]
        row["flops"] += node["flops"]
        row["attention_flops"] += node["flops_by_op"]["attention"]
    return out


def totals_by_level(trace: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for node in _top_nodes(trace):
        b = node["block"]
        if b["stage"] not in ("down", "mid", "up"):
            continue
        row = out.setdefault(_level_key(b), {"params": 0, "flops": 0, "attention_flops": 0, "blocks": 0})
        row["params"] += node["params"]
        row["flops"] += node["flops"]
        row["attention_flops"] += node["flops_by_op"]["attention"]
        row["blocks"] += 1
    return out


def totals_by_kind(trace: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per block kind: how many, and their params and FLOPs (nested kinds overlap: a transformer_block is also
    inside a spatial_transformer)."""
    out = {r: {"count": 0, "params": 0, "flops": 0} for r in KIND_ROLES}
    for node in trace["nodes"]:
        role = node["role"]
        if role in out:
            row = out[role]
            row["count"] += 1
            row["params"] += node["params"]
            row["flops"] += node["flops"]
    return {k: v for k, v in out.items() if v["count"]}


def level_composition(trace: dict[str, Any]) -> dict[str, list[str]]:
    """(stage.level) -> one short description per block, e.g. 'ResBlock + SpatialTransformer x10'."""
    by_path = {n["path"]: n for n in trace["nodes"]}
    out: dict[str, list[str]] = defaultdict(list)
    for block in trace["blocks"]:
        if block["stage"] not in ("down", "mid", "up") or block["role"] == "input_conv":
            continue
        parts = []
        for child in by_path[block["path"]]["children"]:
            node = by_path[child]
            if node["kind"] == "SpatialTransformer":
                depth = len(by_path[child + ".transformer_blocks"]["children"])
                parts.append(f"SpatialTransformer x{depth}" if depth > 1 else "SpatialTransformer")
            else:
                parts.append(node["kind"])
        out[_level_key(block)].append(" + ".join(parts))
    return dict(out)


def compare_traces(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    comp_a, comp_b = level_composition(a), level_composition(b)
    differences = []
    for key in sorted(set(comp_a) | set(comp_b), key=_order):
        ca, cb = comp_a.get(key), comp_b.get(key)
        if ca != cb:
            differences.append({"where": key, "a": ca, "b": cb})
    stage_a, stage_b = totals_by_stage(a), totals_by_stage(b)
    kind_a, kind_b = totals_by_kind(a), totals_by_kind(b)
    level_a, level_b = totals_by_level(a), totals_by_level(b)

    def pair(x: dict[str, dict], y: dict[str, dict], keys: list[str]) -> list[dict[str, Any]]:
        return [{"key": k, "a": x.get(k), "b": y.get(k)} for k in keys]

    levels = sorted(set(level_a) | set(level_b), key=_order)
    return {
        "a": {"preset": a["preset"], "input": a["input"], "totals": a["totals"]},
        "b": {"preset": b["preset"], "input": b["input"], "totals": b["totals"]},
        "by_stage": pair(stage_a, stage_b, list(STAGES)),
        "by_level": pair(level_a, level_b, levels),
        "by_kind": pair(kind_a, kind_b, [k for k in KIND_ROLES if k in kind_a or k in kind_b]),
        "differences": differences,
    }


def scaling_point(trace: dict[str, Any]) -> dict[str, Any]:
    t = trace["totals"]
    return {
        "image_size": trace["input"]["image_size"],
        "sample_size": trace["input"]["sample_size"],
        "flops": t["flops"],
        "attention_flops": t["attention_flops"],
        "other_flops": t["flops"] - t["attention_flops"],
        "activation_bytes": t["activation_bytes"],
        "peak_activation_bytes": t["peak_activation_bytes"],
        "peak_memory_bytes": t["peak_memory_bytes"],
        "time_ms": t["time_ms"],
    }
