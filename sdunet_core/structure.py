"""One hooked forward on the meta device that records every module: shapes, call order, parameters, FLOPs.

Hooks live on the traced model instance and are always removed; the counting modes are thread-local, so traces in
several threads never mix. The result is the list of node records (`schema.Node` fields) with parameters and
FLOPs summed up the tree: a node's totals equal its own plus its children's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .counting import FlopAndMemoryMode, SdpaMarker, nbytes
from .facts import category_of, feeds, layer_facts
from .memo import Memo, MemoCache
from .plan import top_level_of
from .unet import UNetModel

_OP_KINDS = ("conv", "linear", "attention", "other")
_ATTENDING = ("self_attention", "cross_attention", "attention_block")


def _spec(value: Any) -> list[dict[str, Any]]:
    """Shapes and dtypes of every tensor in a (nested) argument."""
    if isinstance(value, torch.Tensor):
        return [{"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _spec(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _spec(v)]
    return []


def tensor_spec(value: torch.Tensor) -> dict[str, Any]:
    return _spec(value)[0]


def _run_hooked(
    model: UNetModel, inputs: dict[str, torch.Tensor | None], deadline: float | None, memo: MemoCache | None
) -> tuple[dict[str, dict[str, Any]], FlopAndMemoryMode]:
    """The meta forward with a pre/post hook on every module: per-path call records, and the counting mode."""
    names = {m: n for n, m in model.named_modules()}
    calls: dict[str, dict[str, Any]] = {}
    call_log: list[str] = []
    stack: list[str] = [""]
    order = [0]
    mode = FlopAndMemoryMode(stack, sum(nbytes(v) for v in inputs.values()), deadline)
    # The SDPA marker watches torch functions only inside the modules that attend: watching every call of the
    # forward would cost more than the trace itself.
    marker = SdpaMarker(mode)
    attends = {m for m in names if getattr(m, "category", None) in _ATTENDING}
    entered = [0]

    def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
        path = names[module]
        if path not in calls:
            calls[path] = {"inputs": _spec(args) + _spec(kwargs), "call_order": order[0]}
            call_log.append(path)
        order[0] += 1
        stack.append(path)
        if module in attends:
            marker.__enter__()
            entered[0] += 1

    def post(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if module in attends:
            marker.__exit__(None, None, None)
            entered[0] -= 1
        rec = calls[stack.pop()]
        rec.setdefault("outputs", _spec(output))
        rec.setdefault("activation_bytes", nbytes(output))

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
    wrapped = Memo(model, names, calls, call_log, order, mode, memo) if memo is not None else None
    try:
        with torch.no_grad(), mode:
            model(**inputs)
    finally:
        if wrapped is not None:
            wrapped.restore()
        while entered[0]:  # a forward stopped inside an attention (time limit): leave no mode behind
            marker.__exit__(None, None, None)
            entered[0] -= 1
        for h in handles:
            h.remove()
    return calls, mode


def describe_modules(model: UNetModel) -> list[dict[str, Any]]:
    """What does not depend on the input: each module's path, class, category, place, what it takes, its own
    parameters and layer facts, in `named_modules()` order. Made once per model (a scaling sweep reuses it)."""
    block_map = model.block_map
    takes_emb, takes_context = feeds(model)
    out = []
    for path, module in model.named_modules():
        top = top_level_of(path)
        info = block_map.get(top) if top else None
        out.append(
            {
                "path": path,
                "name": path.rpartition(".")[2],
                "kind": type(module).__name__,
                "category": category_of(path, module, block_map),
                "parent": path.rpartition(".")[0] if path else None,
                "children": [f"{path}.{c}" if path else c for c, _ in module.named_children()],
                "block": top,
                "stage": info.stage if info else {"input_blocks": "down", "output_blocks": "up"}.get(path),
                "level": info.level if info else None,
                "takes_emb": path in takes_emb,
                "takes_context": path in takes_context,
                "params_own": sum(p.numel() for p in module.parameters(recurse=False)),
                **layer_facts(module),
            }
        )
    return out


def record_nodes(
    model: UNetModel,
    inputs: dict[str, torch.Tensor | None],
    deadline: float | None = None,
    memoize: bool | MemoCache = True,
    described: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], FlopAndMemoryMode]:
    """Node records of every module in `named_modules()` order, and the counting mode (FLOPs, peak bytes).

    With `memoize`, each distinct (sub-block, input shape) runs once and its repeats are replayed (memo.py); a
    `MemoCache` carries what was learnt to the next trace of the same model. `described` is
    `describe_modules(model)` when the caller has it already."""
    memo = memoize if isinstance(memoize, MemoCache) else MemoCache() if memoize else None
    calls, mode = _run_hooked(model, inputs, deadline, memo)
    nodes: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    for static in described if described is not None else describe_modules(model):
        path = static["path"]
        rec = calls.get(path, {})
        own_flops = mode.flops.get(path, {})
        node = {
            **static,
            "inputs": rec.get("inputs"),
            "outputs": rec.get("outputs"),
            "called": path in calls,
            "call_order": rec.get("call_order"),
            "order": rec.get("call_order"),
            "params": static["params_own"],
            "flops_own": sum(own_flops.values()),
            "flops_by_op": {kind: own_flops.get(kind, 0) for kind in _OP_KINDS},
            "activation_bytes": rec.get("activation_bytes", 0),
            "time_ms": None,
        }
        nodes.append(node)
        by_path[path] = node
    _sum_up(nodes, by_path)
    return nodes, mode


def _sum_up(nodes: list[dict[str, Any]], by_path: dict[str, dict[str, Any]]) -> None:
    """Parameters, FLOPs and order up the tree (children come after their parent in named_modules order)."""
    for node in reversed(nodes):
        parent = node["parent"]
        if parent is not None:
            p = by_path[parent]
            p["params"] += node["params"]
            for kind, count in node["flops_by_op"].items():
                p["flops_by_op"][kind] += count
            if node["order"] is not None and not p["called"]:
                p["order"] = node["order"] if p["order"] is None else min(p["order"], node["order"])
    for node in nodes:
        node["flops"] = sum(node["flops_by_op"].values())
        node["macs"] = node["flops"] // 2
        # Containers the forward walks by hand (a ResBlock's in_layers when it resamples): take shapes from
        # their first and last called children so that every node shows what flows through it.
        if not node["called"] and node["children"]:
            called = [by_path[c] for c in node["children"] if by_path[c]["called"]]
            if called:
                node["inputs"] = called[0]["inputs"]
                node["outputs"] = called[-1]["outputs"]
                node["activation_bytes"] = called[-1]["activation_bytes"]
