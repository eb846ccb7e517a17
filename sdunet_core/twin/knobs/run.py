"""One experiment: the same seed sampled without and with the knobs, and what changed between them.

`sample` runs sampling.denoise (the one loop, diffusers' schedulers) for a batch of pictures, with the knobs able to
change, per step, the guidance scale, the captions each half of the batch sees, and the UNet call itself. The UNet
sees the negative (or empty) captions in the first half of the batch and the captions in the second, as `generate`
batches them; a run whose guidance is 1 on every step sees the captions only, 0 the negatives only. Every
caption's context is encoded on its own, so a knob that changes nothing (a caption swapped for itself) leaves
every number as it was.

`sample_pair` runs the baseline and the knob run of one seed as two lanes of one batch (one UNet call a step
instead of two); `experiment` uses it for every knob but the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..model import Twin
from ..sampling import Generation, Lane, Sampler, Step, denoise, initial_noise, scheduler, to_uint8
from .hooks import Knobs, macs_per_call
from .metrics import difference_picture, mse, ssim
from .specs import Knob


@dataclass
class Run:
    images: torch.Tensor  # [N, 3, 32, 32] in [-1, 1]
    steps: list[Step] = field(default_factory=list)  # the first picture's steps (when kept)
    unet_calls: int = 0
    full_calls: int = 0
    shallow_calls: int = 0
    rows: int = 1  # UNet rows per picture a step: 2 with guidance (negative and caption), else 1


class Captions:
    """What one lane of pictures sees on each step under its knobs: the captions (swapped from a step on, or not),
    the negatives, the guidance scale. Every caption's context is encoded on its own and kept, so a knob that
    changes nothing (a caption swapped for itself) gives the same numbers."""

    def __init__(self, model: Twin, state: Knobs, prompts: list[str], negative: str, guidance: float,
                 steps: int) -> None:  # fmt: skip
        self.model, self.state, self.prompts, self.negative = model, state, prompts, negative
        self.contexts: dict[str, torch.Tensor] = {}
        self.scales = []
        for i in range(steps):
            state.step = i
            found = state.active("guidance")
            self.scales.append(found[-1].scale if found else guidance)

    def halves(self) -> tuple[bool, bool]:
        """Whether any step needs the negatives' rows, the captions' rows (fixed for the run: the rows stay put)."""
        return any(g != 1.0 for g in self.scales), any(g != 0.0 for g in self.scales)

    def _ctx(self, caption: str) -> torch.Tensor:
        if caption not in self.contexts:
            self.contexts[caption] = self.model.context([caption])
        return self.contexts[caption]

    def lane(self, i: int, uncond: bool, cond: bool) -> Lane:
        self.state.step = i
        n = len(self.prompts)
        swapped, negatived = self.state.active("swap_prompt"), self.state.active("negative")
        captions = [swapped[-1].prompt] * n if swapped else self.prompts
        negatives = [negatived[-1].prompt if negatived else self.negative] * n
        rows = (negatives if uncond else []) + (captions if cond else [])
        return Lane(n, torch.cat([self._ctx(c) for c in rows]), uncond, cond, self.scales[i])


@torch.inference_mode()
def sample(
    model: Twin,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int = 50,
    guidance: float = 3.0,
    negative: str = "",
    sampler: Sampler = "ddim",
    knobs: list[Knob] | None = None,
    keep_steps: bool = False,
) -> Run:
    """Sample one picture per (prompt, seed) with the knobs applied on their steps (sampling.denoise's loop)."""
    n = len(prompts)
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    state = Knobs(model.unet, knobs or [])
    lanes = Captions(model, state, prompts, negative, guidance, steps)
    uncond, cond = lanes.halves()
    # The rows whose caption a token_weight knob reweights: the second half with guidance, else all or none.
    state.cond_rows = slice(n, 2 * n) if uncond and cond else slice(None) if cond else slice(0)
    x = torch.cat([initial_noise(s) for s in seeds]) * sched.init_noise_sigma
    with state.installed():
        done = denoise(sched, x, lambda i: [lanes.lane(i, uncond, cond)], state.unet_call,
                       keep=0 if keep_steps else None)  # fmt: skip
    return Run(done.images, done.steps, done.unet_calls, state.full_calls, state.shallow_calls, int(uncond) + int(cond))


def batchable(knobs: list[Knob]) -> bool:
    """Whether the baseline can ride in the knob run's batch: every knob but the cache acts on chosen rows; the
    cache replaces whole UNet calls by shallow ones, which cannot be done for half a batch."""
    return not any(k.kind == "cache" for k in knobs)


@torch.inference_mode()
def sample_pair(
    model: Twin,
    prompt: str,
    seed: int,
    knobs: list[Knob],
    *,
    steps: int = 50,
    guidance: float = 3.0,
    negative: str = "",
    sampler: Sampler = "ddim",
) -> tuple[Run, Run]:
    """(baseline, knob run) of one seed in one loop: each step is one UNet call on the batch [baseline's rows,
    knob run's rows], the hooks acting on the second lane's rows only, each lane with its own captions and
    guidance. A row's numbers depend on the batch it runs in only through float rounding (the kernels may block a
    batch of four differently from a batch of two), so the knob picture equals `sample`'s to rounding; the two
    lanes of one batch run the same kernels, so a neutral knob gives the baseline lane bit for bit."""
    if not batchable(knobs):
        raise ValueError("a cache knob skips whole UNet calls: run the baseline on its own (`sample`)")
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    state = Knobs(model.unet, knobs)
    base = Captions(model, Knobs(model.unet, []), [prompt], negative, guidance, steps)
    knob = Captions(model, state, [prompt], negative, guidance, steps)
    # One row layout for both lanes (the union of what either needs), so a lane's rows stay put from step to step.
    (bu, bc), (ku, kc) = base.halves(), knob.halves()
    uncond, cond = bu or ku, bc or kc
    per = int(uncond) + int(cond)
    state.rows = slice(per, 2 * per)  # the knob lane's rows: the hooks leave the baseline's alone
    state.cond_rows = slice(2 * per - 1, 2 * per) if cond else slice(0)
    x = initial_noise(seed).repeat(2, 1, 1, 1) * sched.init_noise_sigma
    with state.installed():
        done = denoise(sched, x, lambda i: [base.lane(i, uncond, cond), knob.lane(i, uncond, cond)],
                       state.unet_call, keep=1)  # fmt: skip
    calls = done.unet_calls
    return Run(done.images[:1], [], calls, calls, 0, per), Run(done.images[1:], done.steps, calls, calls, 0, per)


def same_reading(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the reader sees the same ground and the same objects (colour, shape, size, position) in both."""
    return a["ground"] == b["ground"] and a["objects"] == b["objects"]


@dataclass
class Comparison:
    baseline: np.ndarray  # uint8 [32, 32, 3]
    result: np.ndarray
    difference: np.ndarray
    mse: float
    ssim: float


def compare(baseline: np.ndarray, result: np.ndarray) -> Comparison:
    return Comparison(baseline, result, difference_picture(baseline, result), mse(baseline, result),
                      ssim(baseline, result))  # fmt: skip


def macs_report(run: Run) -> dict[str, Any]:
    """MACs of the run's UNet calls (per picture) against the same calls all full forwards (from the trace)."""
    full, shallow = macs_per_call()
    spent = run.rows * (run.full_calls * full + run.shallow_calls * shallow)
    every = run.rows * (run.full_calls + run.shallow_calls) * full
    return {
        "full_calls": run.full_calls,
        "shallow_calls": run.shallow_calls,
        "macs_per_full_call": full,
        "macs_per_shallow_call": shallow,
        "macs": spent,
        "macs_without_cache": every,
        "saved_fraction": round(1 - spent / every, 4) if every else 0.0,
    }


def experiment(
    model: Twin,
    prompt: str,
    seed: int,
    knobs: list[Knob],
    *,
    steps: int = 50,
    guidance: float = 3.0,
    negative: str = "",
    sampler: Sampler = "ddim",
) -> tuple[Run, Run, Comparison, dict[str, float]]:
    """(baseline run, knob run with its first picture's steps, their comparison, timings in ms). The baseline
    rides in the knob run's batch (`sample_pair`) unless a cache knob forbids it; then it runs first, alone."""
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"steps": steps, "guidance": guidance, "negative": negative, "sampler": sampler}
    if batchable(knobs):
        base, run = sample_pair(model, prompt, seed, knobs, **kwargs)
        timings = {"sampling_ms": round((time.perf_counter() - started) * 1e3, 1)}
    else:
        base = sample(model, [prompt], [seed], **kwargs)
        mid = time.perf_counter()
        run = sample(model, [prompt], [seed], knobs=knobs, keep_steps=True, **kwargs)
        done = time.perf_counter()
        timings = {"baseline_ms": round((mid - started) * 1e3, 1), "intervention_ms": round((done - mid) * 1e3, 1),
                   "sampling_ms": round((done - started) * 1e3, 1)}  # fmt: skip
    return base, run, compare(to_uint8(base.images), to_uint8(run.images)), timings


def as_generation(run: Run, prompt: str, negative: str, seed: int, guidance: float, sampler: str) -> Generation:
    """The knob run in `generate`'s shape, so the report code that renders a generation renders it too."""
    gen = Generation(prompt, negative, seed, guidance, sampler, run.images[:1], run.steps, run.unet_calls)
    return gen
