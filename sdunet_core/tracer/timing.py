"""Timed runs on a real device: per-module times from hooked forwards, end-to-end times from unhooked ones, and
the memory a run needs before it is started.

Unhooked and hooked forwards alternate so that both see the same machine state. On CUDA, module times come from
CUDA events read after the run; on the CPU from `time.perf_counter`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..model.unet import UNetModel

Progress = Callable[[str, int, int], None]


def run_memory_bytes(params: int, peak_activation_bytes: int, device: str, dtype: torch.dtype) -> int:
    """Memory a timed run needs on `device`: the weights at `dtype` plus the peak activations (at `dtype`), with 20%
    headroom for the allocator and kernel workspaces; on the CPU also the float32 copy the model is built in before
    it is cast (it is the same tensor when the run is in float32)."""
    elem = torch.empty((), dtype=dtype).element_size()
    build = params * 4 if device == "cpu" and elem != 4 else 0
    return int((params * elem + peak_activation_bytes) * 1.2) + build


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


class MemoryLimitError(RuntimeError):
    """A timed run would not fit in the device's free memory."""


def time_modules(
    model: UNetModel,
    inputs: dict[str, torch.Tensor | None],
    device: torch.device,
    repeats: int,
    warmup: int,
    progress: Progress | None,
) -> tuple[dict[str, float], list[float]]:
    """Median per-module times (ms) from hooked runs, and the unhooked forward times (ms)."""
    cuda = device.type == "cuda"
    names = {m: n for n, m in model.named_modules()}
    samples: dict[str, list[float]] = {n: [] for n in names.values()}
    starts: dict[str, Any] = {}
    pending: list[tuple[str, Any, Any]] = []

    def pre(module: nn.Module, args: tuple) -> None:
        path = names[module]
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            starts[path] = ev
        else:
            starts[path] = time.perf_counter()

    def post(module: nn.Module, args: tuple, output: Any) -> None:
        path = names[module]
        if cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            pending.append((path, starts.pop(path), ev))
        else:
            samples[path].append((time.perf_counter() - starts.pop(path)) * 1e3)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    total = warmup + 2 * repeats
    step = 0
    forward_ms: list[float] = []

    def tick(phase: str) -> None:
        nonlocal step
        step += 1
        if progress:
            progress(phase, step, total)

    with torch.inference_mode():
        for _ in range(warmup):
            model(**inputs)
            tick("warmup")
        sync()
        # Unhooked and hooked forwards alternate, so that both see the same machine state: the unhooked ones give
        # the honest end-to-end time, the hooked ones the per-module times.
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(**inputs)
            sync()
            forward_ms.append((time.perf_counter() - t0) * 1e3)
            tick("run")
            handles = [m.register_forward_pre_hook(pre) for m in names]
            handles += [m.register_forward_hook(post) for m in names]
            try:
                model(**inputs)
                sync()
            finally:
                for h in handles:
                    h.remove()
            for path, a, b in pending:
                samples[path].append(a.elapsed_time(b))
            pending.clear()
            tick("run")
    return {p: statistics.median(v) for p, v in samples.items() if v}, forward_ms
