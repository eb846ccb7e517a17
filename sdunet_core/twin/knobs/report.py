"""An experiment as plain data: the knob run in /api/generate's fields, and beside it the baseline, the
difference picture, MSE, SSIM, both readings and, for the cache, the MACs it saved (counted from the trace)."""

from __future__ import annotations

import time
from typing import Any

from ..model import shipped
from ..report import data_url, reading_dict, render
from ..sampling import one_thread
from .run import as_generation, experiment, macs_report, same_reading
from .specs import parse_knobs


def experiment_dict(job: dict[str, Any]) -> dict[str, Any]:
    """Run a checked request with `interventions` (already validated by the API; checked again here)."""
    started = time.perf_counter()
    model = shipped().model
    knobs = parse_knobs(job["interventions"], prompt=job["prompt"], steps=job["steps"], config=model.unet.config)
    with one_thread():
        base, run, cmp, timings = experiment(model, job["prompt"], job["seed"], knobs, steps=job["steps"],
                                             guidance=job["guidance"], negative=job["negative"],
                                             sampler=job["sampler"])  # fmt: skip
    gen = as_generation(run, job["prompt"], job["negative"], job["seed"], job["guidance"], job["sampler"])
    out = render(gen, job, timings, started)
    base_reading, knob_reading = reading_dict(cmp.baseline), out["reading"]
    out["experiment"] = {
        "interventions": [k.to_dict() for k in knobs],
        "baseline": data_url(cmp.baseline),
        "baseline_reading": base_reading,
        "baseline_unet_calls": base.unet_calls,
        "batched": False,  # the twin runs them side by side on two threads (run.sample_beside)
        "difference": data_url(cmp.difference),
        "mse": round(cmp.mse, 6),
        "ssim": round(cmp.ssim, 6),
        "same_reading": same_reading(base_reading, knob_reading),
        "macs": macs_report(run) if any(k.kind == "cache" for k in knobs) else None,
    }
    return out
