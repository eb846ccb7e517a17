"""One hooked forward on the meta device that records every module: shapes, call order, parameters, FLOPs.

Hooks live on the traced model instance and are always removed; the counting modes are thread-local, so traces in
several threads never mix. The result is the list of node records (`schema.Node` fields) with parameters and
FLOPs summed up the tree: a node's totals equal its own plus its children's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..model.plan import top_level_of
from ..model.unet import UNetModel
from .counting import FlopAndMemoryMode, SdpaMarker, nbytes
from .facts import attention_scores, category_of, feeds, flow_of, layer_facts
from .memo import Memo, MemoCache

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


class Recorder:
    """A pre/post hook on every module of one meta model (and, with a memo cache, the replay of repeated
    sub-blocks), installed once for any number of forwards; use as a context manager, which removes them."""

    def __init__(self, model: UNetModel, memo: MemoCache | None) -> None:
        self.model = model
        self.names = names = {m: n for n, m in model.named_modules()}
        # The SDPA marker watches torch functions only inside the modules that attend: watching every call of the
        # forward would cost more than the trace itself.
        self.attends = {m for m in names if getattr(m, "category", None) in _ATTENDING}
        self.handles = []
        for module in names:
            self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(module.register_forward_hook(self._post, with_kwargs=True))
        self.memo = Memo(names, memo) if memo is not None else None
        self.entered = 0

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.memo is not None:
            self.memo.restore()
        for h in self.handles:
            h.remove()

    def run(
        self, inputs: dict[str, torch.Tensor | None], deadline: float | None
    ) -> tuple[dict[str, dict[str, Any]], FlopAndMemoryMode]:
        """One meta forward: per-path call records (inputs, outputs, order), and the counting mode."""
        self.calls: dict[str, dict[str, Any]] = {}
        self.call_log: list[str] = []
        self.stack: list[str] = [""]
        self.order = [0]
        self.mode = mode = FlopAndMemoryMode(self.stack, sum(nbytes(v) for v in inputs.values()), deadline)
        self.marker = SdpaMarker(mode)
        if self.memo is not None:
            self.memo.begin(self.calls, self.call_log, self.order, mode)
        try:
            with torch.no_grad(), mode:
                self.model(**inputs)
        finally:
            while self.entered:  # a forward stopped inside an attention (time limit): leave no mode behind
                self.marker.__exit__(None, None, None)
                self.entered -= 1
        return self.calls, mode

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        path = self.names[module]
        if path not in self.calls:
            self.calls[path] = {"inputs": _spec(args) + _spec(kwargs), "call_order": self.order[0]}
            self.call_log.append(path)
        self.order[0] += 1
        self.stack.append(path)
        if module in self.attends:
            self.marker.__enter__()
            self.entered += 1

    def _post(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if module in self.attends:
            self.marker.__exit__(None, None, None)
            self.entered -= 1
        rec = self.calls[self.stack.pop()]
        rec.setdefault("outputs", _spec(output))
        rec.setdefault("activation_bytes", nbytes(output))


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
                **flow_of(module),
            }
        )
    return out


def record_nodes(
    model: UNetModel,
    inputs: dict[str, torch.Tensor | None],
    deadline: float | None = None,
    memoize: bool | MemoCache = True,
    described: list[dict[str, Any]] | None = None,
    recorder: Recorder | None = None,
) -> tuple[list[dict[str, Any]], FlopAndMemoryMode]:
    """Node records of every module in `named_modules()` order, and the counting mode (FLOPs, peak bytes).

    With `memoize`, each distinct (sub-block, input shape) runs once and its repeats are replayed (memo.py); a
    `MemoCache` carries what was learnt to the next trace of the same model. `described` is
    `describe_modules(model)` when the caller has it already; `recorder` a `Recorder` of the model kept for several
    runs (then `memoize` is the recorder's)."""
    if recorder is not None:
        calls, mode = recorder.run(inputs, deadline)
    else:
        memo = memoize if isinstance(memoize, MemoCache) else MemoCache() if memoize else None
        with Recorder(model, memo) as rec:
            calls, mode = rec.run(inputs, deadline)
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
        scores = attention_scores(static["category"], static.get("attention"), node["inputs"])
        if scores is not None:
            # A copy: `described` is shared by every trace of this model (a scaling sweep), the shapes are not.
            node["attention"] = {**static["attention"], "scores": scores}
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
