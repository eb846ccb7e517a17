"""The denoising loop, opened: every step's x_t, predicted noise ε̂ and predicted clean image x̂₀.

The step itself is diffusers' (`DDIMScheduler.step`, `EulerDiscreteScheduler.step`), configured as SD 1.x's
schedulers are (SD's training schedule, `steps_offset` 1, no alpha set to one, no clipping), so a timestep and a
step mean here what they mean in SD. Classifier-free guidance runs the UNet on the empty (or negative) caption and
on the caption in one batch of two and moves along their difference: ε̂ = ε̂_uncond + g (ε̂_cond − ε̂_uncond).
Guidance 1 is the caption alone and 0 the empty caption alone; either runs one UNet pass a step, not two.

`hooks` lets a caller wrap each UNet call (the activation views capture at a chosen step; interventions will).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from ..imports import from_diffusers
from .model import SCHEDULE, Twin
from .world import IMAGE_SIZE

Sampler = Literal["ddim", "euler"]
SAMPLERS: tuple[str, ...] = ("ddim", "euler")
# The defaults of a generation (the API's, the CLI's and the pipeline the trace describes): 50 DDIM steps as SD's
# scripts take, and a guidance scale the twin's gates were measured at.
DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 3.0


def scheduler(sampler: Sampler, schedule: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """diffusers' sampler for a training schedule (SD 1.x's by default; a model's own is `model.schedule`)."""
    DDIMScheduler = from_diffusers("DDIMScheduler")
    EulerDiscreteScheduler = from_diffusers("EulerDiscreteScheduler")

    schedule = schedule or SCHEDULE
    if sampler == "ddim":
        return DDIMScheduler(**schedule, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    if sampler == "euler":
        return EulerDiscreteScheduler(**schedule, steps_offset=1)
    raise ValueError(f"unknown sampler {sampler!r}; known: {SAMPLERS}")


def noise_of(output: torch.Tensor, x_t: torch.Tensor, abar_t: float, prediction: str) -> torch.Tensor:
    """The predicted noise ε̂ a model output implies at x_t: the output itself for ε-prediction; for
    v-prediction (v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x₀), ε̂ = sqrt(ᾱ) v + sqrt(1 - ᾱ) x_t."""
    if prediction == "epsilon":
        return output
    return abar_t**0.5 * output + (1 - abar_t) ** 0.5 * x_t


@dataclass
class Step:
    index: int
    t: int
    x_t: torch.Tensor  # [1, 3, 32, 32], the noisy picture in SD's sense: sqrt(ᾱ) x₀ + sqrt(1 − ᾱ) ε
    sample: torch.Tensor  # the scheduler's own state (Euler's is x_t scaled by sqrt(σ² + 1); DDIM's is x_t)
    eps: torch.Tensor  # the guided predicted noise ε̂
    output: torch.Tensor  # what the UNet's guided output was (ε̂ itself for an ε-prediction model, else v̂)
    x0: torch.Tensor  # the scheduler's predicted clean image


@dataclass
class Generation:
    prompt: str
    negative: str
    seed: int
    guidance: float
    sampler: str
    image: torch.Tensor  # [1, 3, 32, 32] in [-1, 1]
    steps: list[Step] = field(default_factory=list)
    unet_calls: int = 0


# Called around each UNet evaluation: (step index, t, x_in, t tensor, context) -> ε̂ for the batch.
UNetCall = Callable[[int, int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def initial_noise(seed: int) -> torch.Tensor:
    return torch.randn((1, 3, IMAGE_SIZE, IMAGE_SIZE), generator=torch.Generator().manual_seed(seed))


@torch.inference_mode()
def generate_many(
    model: Twin,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
    sampler: Sampler = "ddim",
) -> torch.Tensor:
    """Pictures [N, 3, 32, 32] for many captions at once (one batch: the gates and benches sample this way).

    Each picture starts from its own seed's noise, as `generate` does; only the batching differs, so a picture
    equals `generate`'s to float rounding, not bit for bit.
    """
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    n = len(prompts)
    context = model.context(["" for _ in prompts] + list(prompts))
    x = torch.cat([initial_noise(s) for s in seeds]) * sched.init_noise_sigma
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t).repeat(2, 1, 1, 1)
        eps_all = model.unet(x_in, t.expand(2 * n), context)
        eps = eps_all[:n] + guidance * (eps_all[n:] - eps_all[:n])
        x = sched.step(eps, t, x).prev_sample
    return x


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the twin on one thread: its ops are small, and two threads stall at every op whenever anything else
    runs on the second core (a 10-step generation took 27 s on two threads beside a test run, 0.4 s on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def generate(
    model: Twin,
    prompt: str,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    guidance: float = DEFAULT_GUIDANCE,
    sampler: Sampler = "ddim",
    negative: str = "",
    keep_steps: bool = True,
    unet_call: UNetCall | None = None,
    stop_after: int | None = None,
) -> Generation:
    """Sample one picture for `prompt` (every step recorded when `keep_steps`)."""
    sched = scheduler(sampler, model.schedule)
    sched.set_timesteps(steps)
    prediction = sched.config.prediction_type
    # Which captions the UNet sees each step: both for guidance, else only the one whose weight is not zero.
    if guidance == 1.0:
        captions = [prompt]
    elif guidance == 0.0:
        captions = [negative]
    else:
        captions = [negative, prompt]
    context = model.context(captions)
    x = initial_noise(seed) * sched.init_noise_sigma
    out = Generation(prompt, negative, seed, guidance, sampler, x)
    call = unet_call or (lambda _i, _t, xin, tt, ctx: model.unet(xin, tt, ctx))
    for i, t in enumerate(sched.timesteps):
        x_in = sched.scale_model_input(x, t).expand(len(captions), -1, -1, -1)
        tt = t.expand(len(captions)).to(torch.long) if sampler == "ddim" else t.expand(len(captions))
        eps_all = call(i, round(float(t)), x_in, tt, context)
        out.unet_calls += 1
        guided = eps_all[-1:] if len(captions) == 1 else eps_all[:1] + guidance * (eps_all[1:] - eps_all[:1])
        result = sched.step(guided, t, x)
        if keep_steps:
            abar_t = float(sched.alphas_cumprod[round(float(t))])
            eps = noise_of(guided, x_in[:1], abar_t, prediction)
            out.steps.append(Step(i, round(float(t)), x_in[:1], x, eps, guided, result.pred_original_sample))
        x = result.prev_sample
        if stop_after is not None and i >= stop_after:
            break
    out.image = x
    return out


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [-1, 1] -> uint8 [H, W, 3] (values outside are clipped)."""
    return ((x[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def noise_picture(eps: torch.Tensor) -> np.ndarray:
    """ε̂ as a picture: its values (about standard normal) from -3..3 to 0..255."""
    return ((eps[0].permute(1, 2, 0) / 3).clamp(-1, 1).add(1).mul(127.5)).round().to(torch.uint8).numpy()
