"""Small helpers shared by the benchmarks: timing medians, the machine's description, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time of fn() in seconds over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__}, Python {platform.python_version()}{gpu}"


def table(rows: list[tuple[str, str, str]], header: tuple[str, str, str] = ("measure", "result", "target")) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines)


# A lesson step timed inside the page: the key press (→ or ←) to the step's view drawn (lesson_player.js announces
# lessonShown after the render and Present mode), then to the first task after the next frame. null when step `i`
# never shows (the key revealed a question's answer instead).
# Resolves when the page has nothing left to do (or after a second): before a timed key, as a person presses it.
IDLE = "() => new Promise((resolve) => requestIdleCallback(() => resolve(), {timeout: 1000}))"
LESSON_STEP = """async ([key, i]) => {
  const t0 = performance.now();
  window.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
  while (document.body.dataset.lessonShown !== String(i)) {
    if (performance.now() - t0 > 10000) return null;
    await new Promise((r) => requestAnimationFrame(r));
  }
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - t0;
}"""
