"""Tracer speed and memory: meta traces of sd1 and sdxl-base against a bare FlopCounterMode forward and torchinfo,
the peak RSS of a process that traces sdxl-base, and the cost of timing hooks on the CPU.

Run: `python -m bench.trace_bench` (prints a Markdown table); `run()` returns the rows for `python -m bench`.
"""

from __future__ import annotations

import subprocess
import sys

import torch
import torchinfo
from torch.utils.flop_counter import FlopCounterMode

from bench.common import machine, median_time, table
from sdunet_core import PRESETS, UNetModel
from sdunet_core.tracer.inputs import make_inputs
from sdunet_core.tracer.structure import record_nodes
from sdunet_core.tracer.trace import _build, trace_totals, trace_unet

RSS_SCRIPT = (
    "import resource; from sdunet_core import trace_unet; trace_unet('sdxl-base', sample_size=(128, 128)); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def _bare_flop_counter(name: str, size: tuple[int, int]) -> float:
    preset = PRESETS[name]

    def run() -> None:
        with torch.device("meta"):
            model = UNetModel(preset.config).eval()
        inputs = make_inputs(preset.config, size, 1, preset.context_tokens, "meta", torch.float32)
        with torch.no_grad(), FlopCounterMode(display=False):
            model(**inputs)

    return median_time(run, repeats=5)


def _torchinfo(name: str, size: tuple[int, int]) -> float:
    preset = PRESETS[name]

    def run() -> None:
        with torch.device("meta"):
            model = UNetModel(preset.config).eval()
        inputs = make_inputs(preset.config, size, 1, preset.context_tokens, "meta", torch.float32)
        data = {k: v for k, v in inputs.items() if v is not None}
        torchinfo.summary(model, input_data=data, verbose=0, device="meta", depth=50)

    return median_time(run, repeats=3)


def _hook_overhead(name: str, size: tuple[int, int], repeats: int) -> tuple[float, float]:
    trace = trace_unet(name, sample_size=size, device="cpu", repeats=repeats)
    assert trace.timing is not None and trace.timing.hooked_forward_ms is not None
    return trace.timing.forward_ms, trace.timing.hooked_forward_ms


def _replay_gain(name: str, size: tuple[int, int]) -> tuple[float, float]:
    """The hooked meta forward with every module run, and with repeated sub-blocks replayed (memo.py)."""
    preset = PRESETS[name]
    model = _build(preset.config, "meta", torch.float32)
    inputs = make_inputs(preset.config, size, 1, preset.context_tokens, "meta", torch.float32)
    full = median_time(lambda: record_nodes(model, inputs, memoize=False), repeats=3)
    memo = median_time(lambda: record_nodes(model, inputs), repeats=3)
    return full, memo


def run() -> list[tuple[str, str, str]]:
    rows = []
    for name, size, target in (("sd1", (64, 64), 0.5), ("sdxl-base", (128, 128), 1.5)):
        t = median_time(lambda n=name, s=size: trace_unet(n, sample_size=s), repeats=5)
        bare = _bare_flop_counter(name, size)
        info = _torchinfo(name, size)
        px = size[0] * 8
        rows.append((f"{name} {px}x{px} meta trace (median of 5)", f"{t:.3f} s", f"<= {target} s"))
        rows.append((f"{name} trace / bare forward under FlopCounterMode ({bare:.3f} s)", f"{t / bare:.2f}x", "<= 2x"))
        rows.append((f"{name} trace / torchinfo.summary on meta ({info:.3f} s)", f"{t / info:.2f}x", "(for reference)"))
        full, memo = _replay_gain(name, size)
        rows.append((f"{name} hooked meta forward: every module run / repeats replayed", f"{full:.3f} s / {memo:.3f} s",
                     "(same records; tested)"))  # fmt: skip
    sizes = [(s, s) for s in (32, 64, 96, 128, 160)]
    one = median_time(lambda: trace_unet("sdxl-base", sample_size=(128, 128)), repeats=3)
    sweep = median_time(lambda: trace_totals("sdxl-base", sizes), repeats=3)
    rows.append(
        (
            "sdxl-base totals at 5 sizes (256-1280 px, one process) / one 1024 px trace",
            f"{sweep:.2f} s / {one:.2f} s = {sweep / one:.2f}x",
            "(the API spreads the sizes over 2 workers)",
        )
    )
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT], capture_output=True, text=True, check=True).stdout
    rss_mb = int(out.strip().splitlines()[-1]) / 1024
    rows.append(("peak RSS: import + trace sdxl-base 1024x1024 + exit", f"{rss_mb:.0f} MB", "<= 700 MB"))
    for name, size, repeats in (("tiny", (16, 16), 20), ("sd1", (32, 32), 3)):
        plain, hooked = _hook_overhead(name, size, repeats)
        rows.append(
            (
                f"CPU timing hooks, {name} latent {size[0]}x{size[1]} (median of {repeats})",
                f"{plain:.1f} ms -> {hooked:.1f} ms (+{100 * (hooked / plain - 1):.1f}%)",
                "<= +10%",
            )
        )
    return rows


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
