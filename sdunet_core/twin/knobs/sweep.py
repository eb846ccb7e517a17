"""The ablation sweep: each top-level block (or each skip) removed in turn, over seeds and captions.

For every (caption, seed) pair the baseline is sampled once; then, per target, the same pairs with the target
ablated (a block's output scaled by 0, or a skip replaced by zeros). The effect of a target is the mean SSIM drop
(1 − SSIM against the baseline), the mean MSE and the share of pictures whose reading (the attribute reader's
ground and objects) changed. Pictures run as one batch per target, as the gates sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ..model import Twin
from ..report import reading_dict
from ..sampling import to_uint8
from .metrics import mse, ssim
from .run import same_reading, sample
from .specs import Knob, block_paths, skip_targets

What = Literal["blocks", "skips"]


def targets(model: Twin, what: What) -> list[str]:
    """What a sweep removes one at a time: the U's top-level blocks, or the output blocks' skips."""
    return block_paths(model.unet.config) if what == "blocks" else skip_targets(model.unet.config)


def ablation(target: str, what: What) -> Knob:
    if what == "blocks":
        return Knob("scale", factors={target: 0.0})
    return Knob("cut_skip", skips=(target,), mode="zero")


def pairs(prompts: list[str], seeds: list[int]) -> tuple[list[str], list[int]]:
    """Every caption with every seed, as two aligned lists."""
    return [p for p in prompts for _ in seeds], [s for _ in prompts for s in seeds]


def pictures(model: Twin, prompts: list[str], seeds: list[int], steps: int, guidance: float,
             knobs: list[Knob] | None = None) -> list[np.ndarray]:  # fmt: skip
    run = sample(model, prompts, seeds, steps=steps, guidance=guidance, knobs=knobs)
    return [to_uint8(run.images[i : i + 1]) for i in range(len(prompts))]


def effect(baseline: list[np.ndarray], ablated: list[np.ndarray]) -> dict[str, float]:
    """Mean SSIM drop, mean MSE and the verdict change rate of ablated pictures against their baselines."""
    drops, errors, changed = [], [], 0
    for a, b in zip(baseline, ablated, strict=True):
        drops.append(1.0 - ssim(a, b))
        errors.append(mse(a, b))
        changed += not same_reading(reading_dict(a), reading_dict(b))
    n = len(baseline)
    return {"ssim_drop": float(np.mean(drops)), "mse": float(np.mean(errors)), "verdict_change": changed / n}


def ablate_one(model: Twin, prompts: list[str], seeds: list[int], steps: int, guidance: float, what: What,
               target: str, baseline: list[np.ndarray]) -> dict[str, Any]:  # fmt: skip
    """One target's effect (prompts and seeds already paired)."""
    ablated = pictures(model, prompts, seeds, steps, guidance, [ablation(target, what)])
    return {"target": target, **effect(baseline, ablated)}


def sweep(
    model: Twin,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int = 20,
    guidance: float = 3.0,
    what: What = "blocks",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Every target's effect over every (caption, seed) pair, largest SSIM drop first in `ranking`."""
    ps, ss = pairs(prompts, seeds)
    base = pictures(model, ps, ss, steps, guidance)
    found = targets(model, what)
    rows = []
    for i, target in enumerate(found):
        rows.append(ablate_one(model, ps, ss, steps, guidance, what, target, base))
        if progress is not None:
            progress(i + 1, len(found))
    return {"what": what, "pictures": len(ps), "steps": steps, "effects": rows,
            "ranking": [r["target"] for r in sorted(rows, key=lambda r: -r["ssim_drop"])]}  # fmt: skip


_BASELINES: dict[str, list[np.ndarray]] = {}  # the last sweep's baseline pictures, in the capture process


def child_step(job: dict[str, Any]) -> Any:
    """One message of a sweep run as a job: target None samples the baseline and returns the targets; a target
    returns its effect against that baseline (sampled again if this process has not kept it)."""
    import json

    from ..model import shipped
    from ..sampling import one_thread

    model = shipped().model
    ps, ss = pairs(job["prompts"], job["seeds"])
    key = json.dumps([ps, ss, job["steps"], job["guidance"]])
    with one_thread():
        if key not in _BASELINES:
            _BASELINES.clear()
            _BASELINES[key] = pictures(model, ps, ss, job["steps"], job["guidance"])
        if job["target"] is None:
            return targets(model, job["what"])
        return ablate_one(model, ps, ss, job["steps"], job["guidance"], job["what"], job["target"], _BASELINES[key])
