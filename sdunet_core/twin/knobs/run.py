"""One experiment: the same seeds sampled twice, without and with the knobs, and what changed between them.

`sample` is the twin's denoising loop (sampling.generate's steps, diffusers' schedulers) for a batch of pictures,
with the knobs able to change, per step, the guidance scale, the captions each half of the batch sees, and the
UNet call itself. The UNet sees the negative (or empty) captions in the first half of the batch and the captions
in the second, as `generate` batches them; a run whose guidance is 1 on every step sees the captions only, 0 the
negatives only. Every caption's context is encoded on its own, so a knob that changes nothing (a caption swapped
for itself) leaves every number as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..model import Twin
from ..sampling import Generation, Sampler, Step, initial_noise, noise_of, scheduler, to_uint8
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
    """Sample one picture per (prompt, seed) with the knobs applied on their steps."""
    knobs = knobs or []
    n = len(prompts)
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    prediction = sched.config.prediction_type
    state = Knobs(model.unet, knobs)
    contexts: dict[str, torch.Tensor] = {}

    def ctx(caption: str) -> torch.Tensor:
        if caption not in contexts:
            contexts[caption] = model.context([caption])
        return contexts[caption]

    # The guidance on each step, and from it which halves the UNet must see at all.
    scales = []
    for i in range(steps):
        state.step = i
        found = state.active("guidance")
        scales.append(found[-1].scale if found else guidance)
    need_uncond = any(g != 1.0 for g in scales)
    need_cond = any(g != 0.0 for g in scales)
    x = torch.cat([initial_noise(s) for s in seeds]) * sched.init_noise_sigma
    out = Run(x, rows=int(need_uncond) + int(need_cond))
    with state.installed():
        for i, t in enumerate(sched.timesteps):
            state.step = i
            swapped = state.active("swap_prompt")
            negatived = state.active("negative")
            captions = [swapped[-1].prompt] * n if swapped else prompts
            negatives = [negatived[-1].prompt if negatived else negative] * n
            halves = ([negatives] if need_uncond else []) + ([captions] if need_cond else [])
            rows = [c for half in halves for c in half]
            context = torch.cat([ctx(c) for c in rows])
            state.cond_rows = slice(n, 2 * n) if need_uncond and need_cond else slice(None) if need_cond else slice(0)
            x_in = sched.scale_model_input(x, t).repeat(len(halves), 1, 1, 1)
            tt = t.expand(len(rows)).to(torch.long) if sampler == "ddim" else t.expand(len(rows))
            eps_all = state.call(x_in, tt, context)
            out.unet_calls += 1
            g = scales[i]
            if need_uncond and need_cond:
                uncond, cond = eps_all[:n], eps_all[n:]
                eps = uncond if g == 0.0 else cond if g == 1.0 else uncond + g * (cond - uncond)
            else:
                eps = eps_all
            result = sched.step(eps, t, x)
            if keep_steps:  # eps is the guided output; ε̂ is what it implies (itself for an ε-prediction model)
                noise = noise_of(eps[:1], x_in[:1], float(sched.alphas_cumprod[round(float(t))]), prediction)
                out.steps.append(
                    Step(i, round(float(t)), x_in[:1], x[:1], noise, eps[:1], result.pred_original_sample[:1])
                )
            x = result.prev_sample
    out.images = x
    out.full_calls, out.shallow_calls = state.full_calls, state.shallow_calls
    return out


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
    """(baseline run, knob run with its first picture's steps, their comparison, timings in ms)."""
    started = time.perf_counter()
    kwargs: dict[str, Any] = {"steps": steps, "guidance": guidance, "negative": negative, "sampler": sampler}
    base = sample(model, [prompt], [seed], **kwargs)
    mid = time.perf_counter()
    run = sample(model, [prompt], [seed], knobs=knobs, keep_steps=True, **kwargs)
    done = time.perf_counter()
    timings = {"baseline_ms": round((mid - started) * 1e3, 1), "intervention_ms": round((done - mid) * 1e3, 1)}
    return base, run, compare(to_uint8(base.images), to_uint8(run.images)), timings


def as_generation(run: Run, prompt: str, negative: str, seed: int, guidance: float, sampler: str) -> Generation:
    """The knob run in `generate`'s shape, so the report code that renders a generation renders it too."""
    gen = Generation(prompt, negative, seed, guidance, sampler, run.images[:1], run.steps, run.unet_calls)
    return gen
