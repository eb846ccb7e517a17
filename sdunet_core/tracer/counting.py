"""Counting at dispatch: FLOPs per (module, op kind) and live activation bytes, on the meta device.

FLOPs use the formulas of `torch.utils.flop_counter` (2 per multiply-add: conv, mm/addmm, bmm, fused attention),
attributed to the innermost module running at the time. Activation memory counts each newly allocated tensor (not
views) from its creation until Python frees it; its high-water mark is the peak.

On the meta device scaled-dot-product attention runs the math kernel, which materialises the heads × tokens ×
tokens score matrix. A fused kernel (flash or memory-efficient, what CUDA and the CPU use for real runs) never
holds it, so a second tally leaves out everything allocated inside an SDPA call and counts only its output: the
peak "with a fused kernel". A `TorchFunctionMode` marks where SDPA starts and ends; both modes are thread-local.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

# Which FLOP bucket an aten op belongs to. bmm appears in this model only inside attention (QK^T and AV); the fused
# SDPA kernels are counted the same way when a real device picks them.
OP_KIND = {"convolution": "conv", "mm": "linear", "addmm": "linear", "bmm": "attention", "baddbmm": "attention"}
for _op in flop_registry:
    if "attention" in str(_op):
        OP_KIND[str(_op).removeprefix("aten.")] = "attention"

# Check the deadline every this many ops: often enough to stop within milliseconds, rarely enough to cost nothing.
_DEADLINE_EVERY = 256


class TraceTimeout(RuntimeError):
    """A trace ran past its time limit."""


def nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 0


class _Tally:
    """Live and peak bytes of one memory model."""

    def __init__(self, start: int) -> None:
        self.live = start
        self.peak = start

    def add(self, tensor: torch.Tensor) -> None:
        n = tensor.numel() * tensor.element_size()
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(tensor, self.release, n)

    def release(self, n: int) -> None:
        self.live -= n


class SdpaMarker(TorchFunctionMode):
    """Tells the counting mode when it is inside `scaled_dot_product_attention` and what the call returned."""

    def __init__(self, counter: FlopAndMemoryMode) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is not F.scaled_dot_product_attention:
            return func(*args, **(kwargs or {}))
        self.counter.in_sdpa += 1
        try:
            out = func(*args, **(kwargs or {}))
        finally:
            self.counter.in_sdpa -= 1
        if not self.counter.in_sdpa:
            self.counter.fused.add(out)  # a fused kernel allocates its output and nothing it keeps
        return out


class FlopAndMemoryMode(TorchDispatchMode):
    """Counts FLOPs per (module, kind) and tracks live activation bytes (math and fused attention), at dispatch.

    `stack` is the module path stack kept by the tracer's hooks: FLOPs go to its top.
    """

    def __init__(self, stack: list[str], start_bytes: int = 0, deadline: float | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.deadline = deadline
        self.ops = 0
        self.flops: dict[str, dict[str, int]] = {}
        self.flop_log: list[str] = []  # paths in the order their buckets were made (see memo.py)
        self.math = _Tally(start_bytes)
        self.fused = _Tally(start_bytes)
        self.in_sdpa = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        self.ops += 1
        if self.deadline is not None and self.ops % _DEADLINE_EVERY == 0 and time.monotonic() > self.deadline:
            raise TraceTimeout("the trace ran past its time limit")
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        formula = flop_registry.get(packet)
        if formula is not None:
            self.add_flops(
                self.stack[-1], {OP_KIND.get(packet.__name__, "other"): formula(*args, **kwargs, out_val=out)}
            )
        for t in out if isinstance(out, (tuple, list)) else (out,):  # activation memory
            if isinstance(t, torch.Tensor) and not t._is_view():
                self.math.add(t)
                if not self.in_sdpa:
                    self.fused.add(t)
        return out

    def add_flops(self, path: str, counts: dict[str, int]) -> None:
        bucket = self.flops.get(path)
        if bucket is None:
            bucket = self.flops[path] = {}
            self.flop_log.append(path)
        for kind, count in counts.items():
            bucket[kind] = bucket.get(kind, 0) + count
