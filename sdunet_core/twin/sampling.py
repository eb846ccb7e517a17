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


@dataclass
class Lane:
    """A group of `n` pictures in one step's batch: the captions they see and the guidance that combines them.

    Its rows are the negatives' (when `uncond`) and then the captions' (when `cond`), n each, as classifier-free
    guidance batches them; `context` holds exactly those rows. Two lanes in one batch are two experiments' pictures
    (a baseline and its intervened twin) sharing every UNet call."""

    n: int
    context: torch.Tensor  # [rows, tokens, width]
    uncond: bool
    cond: bool
    guidance: float

    @property
    def rows(self) -> int:
        return self.n * (int(self.uncond) + int(self.cond))

    def combine(self, out: torch.Tensor) -> torch.Tensor:
        """The guided output of the lane's pictures from its rows' outputs: ε̂_u + g (ε̂_c − ε̂_u), or one half
        alone where g is 0 or 1 (so a step at g = 1 is the caption's output exactly, not a rounded blend)."""
        if not (self.uncond and self.cond):
            return out
        uncond, cond = out[: self.n], out[self.n :]
        g = self.guidance
        return uncond if g == 0.0 else cond if g == 1.0 else uncond + g * (cond - uncond)


@dataclass
class Denoised:
    images: torch.Tensor  # [N, 3, 32, 32]: every lane's pictures, in lane order
    steps: list[Step] = field(default_factory=list)  # the kept picture's steps
    unet_calls: int = 0


def denoise(
    sched: Any,
    x: torch.Tensor,
    lanes: Callable[[int], list[Lane]],
    call: UNetCall,
    *,
    keep: int | None = None,
    stop_after: int | None = None,
) -> Denoised:
    """The denoising loop every sampler here runs: per step, every lane's rows in one UNet call, each lane's
    guidance, one scheduler step for all pictures. `x` is the starting noise (already times `init_noise_sigma`),
    `lanes(i)` says what step i feeds the UNet, `keep` which picture's steps to record (None: none)."""
    out = Denoised(x)
    for latest in denoise_steps(sched, x, lanes, call, keep=keep, stop_after=stop_after):
        out = latest
    return out


def denoise_steps(
    sched: Any,
    x: torch.Tensor,
    lanes: Callable[[int], list[Lane]],
    call: UNetCall,
    *,
    keep: int | None = None,
    stop_after: int | None = None,
) -> Iterator[Denoised]:
    """`denoise` one step at a time: the state after each step (its `images` are the latest x). A caller that
    must report progress or be cancelled between steps (a checkpoint's run, seconds a step) drives it."""
    prediction = sched.config.prediction_type
    out = Denoised(x)
    for i, t in enumerate(sched.timesteps):
        plan = lanes(i)
        scaled = sched.scale_model_input(x, t)
        parts, at = [], 0
        for lane in plan:  # each picture once per half it is guided with
            parts.append(scaled[at : at + lane.n].repeat(lane.rows // lane.n, 1, 1, 1))
            at += lane.n
        x_in = parts[0] if len(parts) == 1 else torch.cat(parts)
        context = plan[0].context if len(plan) == 1 else torch.cat([lane.context for lane in plan])
        # DDIM's timesteps are whole numbers (int64) and Euler's are not: each goes to the UNet as it is.
        raw = call(i, round(float(t)), x_in, t.expand(x_in.shape[0]), context)
        out.unet_calls += 1
        guided, at = [], 0
        for lane in plan:
            guided.append(lane.combine(raw[at : at + lane.rows]))
            at += lane.rows
        eps = guided[0] if len(guided) == 1 else torch.cat(guided)
        result = sched.step(eps, t, x)
        if keep is not None:  # eps is the guided output; ε̂ is what it implies (itself for an ε-prediction model)
            k = slice(keep, keep + 1)
            abar_t = float(sched.alphas_cumprod[round(float(t))])
            noise = noise_of(eps[k], scaled[k], abar_t, prediction)
            out.steps.append(Step(i, round(float(t)), scaled[k], x[k], noise, eps[k], result.pred_original_sample[k]))
        x = result.prev_sample
        out.images = x
        yield out
        if stop_after is not None and i >= stop_after:
            break


def halves(guidance: float) -> tuple[bool, bool]:
    """Which captions the UNet must see for a guidance scale: both, or only the one whose weight is not zero."""
    return guidance != 1.0, guidance != 0.0


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
    # Both halves at every scale, as the gates were measured (at guidance 1 with empty captions, as
    # `evaluate.unconditional` asks, both halves are the same rows and the guided output is either).
    lane = Lane(len(prompts), model.context([""] * len(prompts) + list(prompts)), True, True, guidance)
    x = torch.cat([initial_noise(s) for s in seeds]) * sched.init_noise_sigma
    return denoise(sched, x, lambda _i: [lane], lambda _i, _t, xin, tt, ctx: model.unet(xin, tt, ctx)).images


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
    uncond, cond = halves(guidance)
    lane = Lane(1, model.context([negative] * uncond + [prompt] * cond), uncond, cond, guidance)
    call = unet_call or (lambda _i, _t, xin, tt, ctx: model.unet(xin, tt, ctx))
    x = initial_noise(seed) * sched.init_noise_sigma
    run = denoise(sched, x, lambda _i: [lane], call, keep=0 if keep_steps else None, stop_after=stop_after)
    return Generation(prompt, negative, seed, guidance, sampler, run.images, run.steps, run.unet_calls)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] in [-1, 1] -> uint8 [H, W, 3] (values outside are clipped)."""
    return ((x[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def noise_picture(eps: torch.Tensor) -> np.ndarray:
    """ε̂ as a picture: its values (about standard normal) from -3..3 to 0..255."""
    return ((eps[0].permute(1, 2, 0) / 3).clamp(-1, 1).add(1).mul(127.5)).round().to(torch.uint8).numpy()
