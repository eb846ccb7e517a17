"""Our UNet's real forward against diffusers' UNet2DConditionModel built from the same SD 1.x architecture
(random weights, nothing downloaded), side by side in one run, on the CPU here and on CUDA when there is one.

Run: `python -m bench.speed_bench`; `run()` returns the rows for `python -m bench`. Needs the `bench` extra
(`pip install -e '.[bench]'`, which brings diffusers).
"""

from __future__ import annotations

import statistics
import time

import torch

from bench.common import machine, table
from sdunet_core import PRESETS, UNetModel
from sdunet_core.tracer.trace import make_inputs
from tests.diffusers_configs import DIFFUSERS_CONFIGS


def _time_pair(calls: list, device: torch.device, repeats: int) -> list[float]:
    """Median ms of each call, run alternately so that both see the same machine state."""
    samples: list[list[float]] = [[] for _ in calls]
    with torch.inference_mode():
        for call in calls:
            call()  # warm-up
        for _ in range(repeats):
            for i, call in enumerate(calls):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                call()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                samples[i].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(s) for s in samples]


def run(repeats: int = 3) -> list[tuple[str, str, str]]:
    try:
        from diffusers import UNet2DConditionModel
    except ImportError:
        return [("our UNet vs diffusers", "skipped: diffusers is not installed (pip install -e '.[bench]')", "<= 1.0")]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    cfg = PRESETS["sd1"].config
    rows = []
    for device in devices:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        torch.manual_seed(0)
        ours = UNetModel(cfg).eval().to(device=device, dtype=dtype)
        theirs = UNet2DConditionModel(**DIFFUSERS_CONFIGS["sd1"]).eval().to(device=device, dtype=dtype)
        assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in ours.parameters())
        for latent in (32, 64):
            inputs = make_inputs(cfg, (latent, latent), 1, 77, device, dtype, torch.Generator().manual_seed(0))
            t_ours, t_theirs = _time_pair(
                [
                    lambda i=inputs, m=ours: m(**i),
                    lambda i=inputs, m=theirs: m(i["x"], i["timesteps"], encoder_hidden_states=i["context"]),
                ],
                device,
                repeats,
            )
            rows.append(
                (
                    f"sd1 forward, {latent * 8}x{latent * 8}, {device.type} {str(dtype).removeprefix('torch.')} "
                    f"(median of {repeats})",
                    f"ours {t_ours:.0f} ms, diffusers {t_theirs:.0f} ms, ratio {t_ours / t_theirs:.2f}",
                    "<= 1.0",
                )
            )
        del ours, theirs
    return rows


if __name__ == "__main__":
    print(f"Machine: {machine()}\n")
    print(table(run()))
