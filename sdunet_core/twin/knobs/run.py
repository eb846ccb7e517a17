"""One experiment: the same seed sampled without and with the knobs, and what changed between them.

`sample` runs sampling.denoise (the one loop, diffusers' schedulers) for a batch of pictures, with the knobs able to
change, per step, the guidance scale, the captions each half of the batch sees, and the UNet call itself. The UNet
sees the negative (or empty) captions in the first half of the batch and the captions in the second, as `generate`
batches them; a run whose guidance is 1 on every step sees the captions only, 0 the negatives only. Every
caption's context is encoded on its own, so a knob that changes nothing (a caption swapped for itself) leaves
every number as it was.

`experiment` runs the baseline and the knob run of one seed side by side on two threads (`sample_beside`), each
picture exactly `sample`'s; `sample_pair` runs them as two lanes of one batch (one UNet call a step instead of two,
as a checkpoint's job does: pair.PairRun). On a small CPU the threads are the faster way: one thread computes a
batch of four rows in about the time of two batches of two, while two threads use two cores (bench/knobs_bench.py).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..model import Twin
from ..sampling import Generation, Sampler, Step, denoise, initial_noise, scheduler, to_uint8
from .hooks import Knobs, macs_per_call
from .metrics import difference_picture, mse, ssim
from .pair import Captions, PairRun, cond_rows
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
    installed: Knobs | None = None,
) -> Run:
    """Sample one picture per (prompt, seed) with the knobs applied on their steps (sampling.denoise's loop).
    `installed`: the knobs' state with its hooks already on the UNet (sample_beside), in place of `knobs`."""
    n = len(prompts)
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    state = installed or Knobs(model.unet, knobs or [])
    lanes = Captions(lambda c: model.context([c]), state, prompts, negative, guidance, steps)
    uncond, cond = lanes.halves()
    state.cond_rows = cond_rows(uncond, cond, n)
    x = torch.cat([initial_noise(s) for s in seeds]) * sched.init_noise_sigma
    with nullcontext() if installed else state.installed():
        done = denoise(sched, x, lambda i: [lanes.lane(i, uncond, cond)], state.unet_call,
                       keep=0 if keep_steps else None)  # fmt: skip
    return Run(done.images, done.steps, done.unet_calls, state.full_calls, state.shallow_calls, int(uncond) + int(cond))


def sample_beside(
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
    """(baseline, knob run with its picture's steps) of one seed, each `sample`'s exactly, the baseline on a second
    thread beside the knob run. Each runs on one torch thread (the twin's ops are small: see sampling.one_thread),
    so together they use the two cores of a small machine without the stalls of two threads inside one op; on a
    busy machine they share what there is. The hooks go on before the baseline starts and come off after it ends
    (so no forward sees the hook tables change) and act only on the knob run's thread (`Knobs.owner`)."""
    kw: dict[str, Any] = {"steps": steps, "guidance": guidance, "negative": negative, "sampler": sampler}

    def baseline() -> Run:
        torch.set_num_threads(1)  # this thread's own setting: OpenMP keeps one per thread
        return sample(model, [prompt], [seed], **kw)

    state = Knobs(model.unet, knobs)
    with state.installed(), ThreadPoolExecutor(1, thread_name_prefix="baseline") as pool:
        base = pool.submit(baseline)
        try:
            run = sample(model, [prompt], [seed], keep_steps=True, installed=state, **kw)
        finally:
            wait([base])  # the hooks stay on until the baseline is done with the UNet
        return base.result(), run


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
    """(baseline, knob run with its picture's steps) of one seed (pair.PairRun). Batched, a row's numbers depend
    on the batch it runs in only through float rounding (the kernels may block a batch of four differently from a
    batch of two), so the knob picture equals `sample`'s to rounding; the two lanes of one batch run the same
    kernels, so a neutral knob gives the baseline lane bit for bit. With a cache knob each is `sample`'s exactly."""

    def sched():  # type: ignore[no-untyped-def]
        made = scheduler(sampler, model.schedule)
        made.set_timesteps(steps)
        return made

    pair = PairRun(model.unet, lambda c: model.context([c]), sched, initial_noise(seed), prompt=prompt,
                   negative=negative, guidance=guidance, steps=steps, knobs=knobs)  # fmt: skip
    base, knob = pair.finish()
    plain, state = pair.plain, pair.state
    if pair.batched:  # one loop: every call full, and the same calls for both
        n = knob.unet_calls
        return Run(base.images, [], n, n, 0, pair.rows), Run(knob.images, knob.steps, n, n, 0, pair.rows)
    return (
        Run(base.images, [], base.unet_calls, plain.full_calls, plain.shallow_calls, pair.base_rows),
        Run(knob.images, knob.steps, knob.unet_calls, state.full_calls, state.shallow_calls, pair.rows),
    )


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
    """(baseline run, knob run with its picture's steps, their comparison, timings in ms). The baseline runs beside
    the knob run on a second thread (`sample_beside`): each picture is `sample`'s exactly."""
    started = time.perf_counter()
    base, run = sample_beside(model, prompt, seed, knobs, steps=steps, guidance=guidance, negative=negative,
                              sampler=sampler)  # fmt: skip
    timings = {"sampling_ms": round((time.perf_counter() - started) * 1e3, 1)}
    return base, run, compare(to_uint8(base.images), to_uint8(run.images)), timings


def as_generation(run: Run, prompt: str, negative: str, seed: int, guidance: float, sampler: str) -> Generation:
    """The knob run in `generate`'s shape, so the report code that renders a generation renders it too."""
    gen = Generation(prompt, negative, seed, guidance, sampler, run.images[:1], run.steps, run.unet_calls)
    return gen
