"""Trace each distinct sub-block once: on the meta device a module's records depend only on its structure and the
shapes of its inputs, so a repeat is replayed instead of run.

SDXL's U holds 70 transformer blocks but only a handful of distinct (structure, input shape) pairs; SD 1.x's 22
ResBlocks come in a few kinds. The first call of each pair runs normally, with every hook firing, and its
descendants' call records, FLOPs buckets and memory high-water mark are kept relative to the module; a repeat
writes the same records under its own path, advances the call counter as the real forward would, and returns an
empty meta tensor of the recorded shape. The records are exactly those of a full run: tests compare the two.

Only the traced meta model is touched (its instances' `forward` is wrapped for the duration of one trace and then
restored); nothing here is process-global.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import _disable_current_modes

from .counting import FlopAndMemoryMode

_SCALARS = (int, float, bool, str, type(None))


class _Signatures:
    """A small integer per distinct module structure (type, scalar settings, parameter shapes, children)."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._of: dict[nn.Module, int] = {}

    def of(self, module: nn.Module) -> int:
        found = self._of.get(module)
        if found is not None:
            return found
        attrs = tuple(
            sorted((k, v) for k, v in vars(module).items() if not k.startswith("_") and isinstance(v, _SCALARS))
        )
        tensors = tuple(
            (n, tuple(t.shape), t.dtype)
            for n, t in [*module._parameters.items(), *module._buffers.items()]
            if t is not None
        )
        kids = tuple((n, self.of(c)) for n, c in module._modules.items() if c is not None)
        key = (type(module), attrs, tensors, kids)
        sid = self._ids.setdefault(key, len(self._ids))
        self._of[module] = sid
        return sid


def _input_key(args: tuple, kwargs: dict) -> tuple | None:
    """Shapes, strides and dtypes of the arguments; None when one is not a tensor or None (not memoizable)."""
    out = []
    for value in (*args, *kwargs.values()):
        if value is None:
            out.append(None)
        elif isinstance(value, torch.Tensor):
            out.append((tuple(value.shape), value.stride(), value.dtype))
        else:
            return None
    return (tuple(out), tuple(kwargs))


class _Recording:
    """What one run of a module left behind, relative to the module."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []  # (relative path, order offset, record)
        self.flops: list[tuple[str, dict[str, int]]] = []
        self.n_calls = 0
        self.peaks: tuple[int, int] = (0, 0)  # internal high-water mark above the entry level (math, fused)
        self.kept: tuple[int, int] = (0, 0)  # bytes still alive after the call (the output)
        self.out: tuple[tuple[int, ...], tuple[int, ...], torch.dtype] | None = None


class MemoCache:
    """What one model's traces have learnt: module signatures and recordings by (signature, input shapes). A
    recording is relative to its module, so one cache serves every trace of the model (a scaling sweep)."""

    def __init__(self) -> None:
        self.signatures = _Signatures()
        self.seen: dict[tuple, _Recording] = {}


class Memo:
    """Wraps the forward of every non-leaf module of one meta model; `begin()` each run with its records, and
    `restore()` when done (the wrappers stay for several runs: a scaling sweep)."""

    def __init__(self, names: dict[nn.Module, str], cache: MemoCache | None = None) -> None:
        self.names = names
        self.calls: dict[str, dict[str, Any]] = {}
        self.call_log: list[str] = []
        self.order = [0]
        self.mode: FlopAndMemoryMode | None = None
        cache = cache or MemoCache()
        self._sigs = cache.signatures
        self._seen = cache.seen
        self._wrapped: list[nn.Module] = []
        for module, path in names.items():
            if path and module._modules:
                # Straight into the instance's dict: nn.Module.__setattr__ checks every value against Parameter.
                module.__dict__["forward"] = self._wrap(module, module.forward)
                self._wrapped.append(module)

    def begin(
        self, calls: dict[str, dict[str, Any]], call_log: list[str], order: list[int], mode: FlopAndMemoryMode
    ) -> None:
        """The records of the run about to start, which recordings read and replays write."""
        self.calls, self.call_log, self.order, self.mode = calls, call_log, order, mode

    def restore(self) -> None:
        for module in self._wrapped:
            module.__dict__.pop("forward")  # back to the class's forward
        self._wrapped.clear()

    def _wrap(self, module: nn.Module, forward: Callable[..., Any]) -> Callable[..., Any]:
        def memoized(*args: Any, **kwargs: Any) -> Any:
            inputs = _input_key(args, kwargs)
            if inputs is None:
                return forward(*args, **kwargs)
            key = (self._sigs.of(module), inputs)
            rec = self._seen.get(key)
            if rec is not None:
                return self._replay(module, rec)
            out, rec = self._record(module, forward, args, kwargs)
            if rec is not None:
                self._seen[key] = rec
            return out

        return memoized

    def _record(
        self, module: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict
    ) -> tuple[Any, _Recording | None]:
        path, mode = self.names[module], self.mode
        assert mode is not None
        start_order, start_calls, start_flops = self.order[0], len(self.call_log), len(mode.flop_log)
        tallies = (mode.math, mode.fused)
        entry = [(t.live, t.peak) for t in tallies]
        for t in tallies:
            t.peak = t.live  # measure this call's own high-water mark, then fold it back in
        try:
            out = forward(*args, **kwargs)
        finally:
            inner = [t.peak for t in tallies]
            for t, (_, peak) in zip(tallies, entry, strict=True):
                t.peak = max(peak, t.peak)
        if not isinstance(out, torch.Tensor) or out.device.type != "meta":
            return out, None
        rec = _Recording()
        cut = len(path) + 1
        for p in self.call_log[start_calls:]:
            r = self.calls[p]
            rec.calls.append((p[cut:], r["call_order"] - start_order, r))
        rec.flops = [(p[cut:] if p != path else "", dict(mode.flops[p])) for p in mode.flop_log[start_flops:]]
        rec.n_calls = self.order[0] - start_order
        rec.peaks = (inner[0] - entry[0][0], inner[1] - entry[1][0])
        rec.kept = (mode.math.live - entry[0][0], mode.fused.live - entry[1][0])
        rec.out = (tuple(out.shape), out.stride(), out.dtype)
        return out, rec

    def _replay(self, module: nn.Module, rec: _Recording) -> torch.Tensor:
        path, mode = self.names[module], self.mode
        assert mode is not None
        base = self.order[0]
        for rel, offset, r in rec.calls:
            p = f"{path}.{rel}"
            self.calls[p] = {**r, "call_order": base + offset}
            self.call_log.append(p)
        self.order[0] += rec.n_calls
        for rel, buckets in rec.flops:
            mode.add_flops(f"{path}.{rel}" if rel else path, buckets)
        assert rec.out is not None
        shape, stride, dtype = rec.out
        with _disable_current_modes():  # made here, not by the model: the counting mode must not see it
            out = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
        for tally, peak, kept in zip((mode.math, mode.fused), rec.peaks, rec.kept, strict=True):
            tally.peak = max(tally.peak, tally.live + peak)
            tally.live += kept
            weakref.finalize(out, tally.release, kept)
        return out
