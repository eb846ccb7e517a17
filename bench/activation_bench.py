"""Capturing activations against a plain forward, side by side in one run (seeded random weights, CPU).

- SD 1.x at 512 x 512: every block output (`@outputs`: statistics, histogram and PCA preview of each) against the
  same forward without hooks, medians of alternating runs; target <= 1.3x. Peak RSS of each (Linux's VmHWM, reset
  between phases through /proc/self/clear_refs).
- SDXL at 1024 x 1024: one capture of every block output in a fresh process; its peak RSS; target <= 24 GiB.

Run: `python -m bench.activation_bench`; `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.common import machine, table


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _sd1(repeats: int) -> list[tuple[str, str, str]]:
    import torch

    from sdunet_core import PRESETS
    from sdunet_core.activations.capture import run_forward
    from sdunet_core.activations.session import CaptureSpec, Explorer

    ex = Explorer.random(PRESETS["sd1"].config)
    spec = CaptureSpec(points=["@outputs"], timestep=261, prompt="a photo of a cat", sample_size=(64, 64))
    outcome = ex.run(spec)  # warm-up, and the inputs of the plain forward
    inputs = ex.last_inputs
    run_forward(ex.unet, inputs)
    plain, captured, reduced, peaks = [], [], [], {"plain": 0, "capture": 0}
    for _ in range(repeats):
        _reset_peak()
        t0 = time.perf_counter()
        run_forward(ex.unet, inputs)
        plain.append(time.perf_counter() - t0)
        peaks["plain"] = max(peaks["plain"], _peak_bytes())
        _reset_peak()
        timings = ex.run(spec).timings
        captured.append(timings["forward_ms"] / 1e3)
        reduced.append(timings["reduce_ms"] / 1e3)
        peaks["capture"] = max(peaks["capture"], _peak_bytes())
    p, c = statistics.median(plain), statistics.median(captured)
    n = len(outcome.points)
    del ex
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return [
        (
            f"sd1 512x512 cpu: capture every block output ({n} points, stats + PCA preview) vs plain forward "
            f"(median of {repeats})",
            f"capture {c * 1e3:.0f} ms, plain {p * 1e3:.0f} ms, ratio {c / p:.2f}",
            "<= 1.3",
        ),
        (
            "  of which the hooks' reductions (timed inside the capture)",
            f"{statistics.median(reduced) * 1e3:.0f} ms, {statistics.median(reduced) / c:.0%} of the capture",
            "",
        ),
        (
            "  peak RSS of the process (weights 3.4 GB included)",
            f"capture {peaks['capture'] / 2**30:.2f} GiB, plain {peaks['plain'] / 2**30:.2f} GiB",
            "bounded",
        ),
    ]


_SDXL = """
import time
from bench.activation_bench import _peak_bytes
from sdunet_core import PRESETS
from sdunet_core.activations.session import CaptureSpec, Explorer
t0 = time.perf_counter()
ex = Explorer.random(PRESETS["sdxl-base"].config)
t1 = time.perf_counter()
out = ex.run(CaptureSpec(points=["@outputs"], timestep=261, prompt="a photo of a cat", sample_size=(128, 128)))
print(len(out.points), t1 - t0, out.timings["forward_ms"] / 1e3, _peak_bytes())
"""


def _sdxl() -> list[tuple[str, str, str]]:
    done = subprocess.run([sys.executable, "-c", _SDXL], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        return [("sdxl-base 1024x1024 cpu capture", f"failed: {done.stderr.strip().splitlines()[-1:]}", "<= 24 GiB")]
    n, build, forward, peak = done.stdout.split()[-4:]
    return [
        (
            f"sdxl-base 1024x1024 cpu: capture every block output ({n} points), one run in a fresh process",
            f"peak RSS {int(peak) / 2**30:.1f} GiB (weights 10.3 GB); build {float(build):.0f} s, "
            f"forward {float(forward):.0f} s",
            "<= 24 GiB",
        )
    ]


def run(repeats: int = 3, sdxl: bool = True) -> list[tuple[str, str, str]]:
    return _sd1(repeats) + (_sdxl() if sdxl else [])


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
