"""Knobs on the server's checkpoint: the twin's interventions (sdunet_core.twin.knobs) run on a real SD model.

The same experiment as the twin's, with the checkpoint's own parts: the caption goes through its text encoder
(`components.TextConditioner`), the same loop runs (`knobs.pair.PairRun` on `sampling.denoise`: the baseline and
the knob run as two lanes of one batch, or one after the other for the cache) with diffusers' DDIM scheduler on
SD's training schedule, and the VAE decodes both latents. The result is the two pictures, their difference, MSE and
SSIM. There is no verdict: the attribute reader knows only the twin's drawn world, so it is null with the reason.

It runs in the capture process, which holds the checkpoint's model, one step per message (`child_step`): a step
of a real model takes seconds on a CPU, so the job reports progress after each and can be cancelled between two.

What it does not do: SDXL's size conditioning and class-conditional models (the UNet's `y`) are refused, and the
prediction is taken to be ε (a single file does not say; SD 2's 768-v models predict v and would come out wrong).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ..twin.knobs.metrics import difference_picture, mse, ssim
from ..twin.knobs.pair import PairRun
from ..twin.knobs.specs import Knob, KnobError, parse_knobs
from ..twin.sampling import scheduler, to_uint8
from . import conditioning as cond
from .tokenizer import MAX_TOKENS, tokenize

MAX_STEPS = 50  # a step of SD 1.5 at 512 x 512 is seconds on a CPU, and a batched step runs four UNet rows
MAX_PIXELS = 512 * 512  # SD 1.x's own size; larger is minutes a step here
NO_VERDICT = (
    "the attribute reader reads only the twin's drawn world (coloured shapes on a ground); a checkpoint's pictures "
    "have no reader, so compare them by eye, MSE and SSIM"
)


class ClipWords:
    """Captions as a checkpoint's CLIP tokenizer reads them: at most 77 tokens; a word is where a token is it."""

    def check(self, caption: str) -> None:
        ids, _ = tokenize(caption)
        if len(ids) > MAX_TOKENS:
            raise ValueError(f"{len(ids)} tokens (start and end included), over CLIP's limit of {MAX_TOKENS}")

    def positions(self, prompt: str, word: str) -> tuple[int, ...]:
        _, texts = tokenize(prompt)
        return tuple(i for i, t in enumerate(texts) if t.strip().lower() == word)


def check(config: Any, job: dict[str, Any]) -> list[Knob]:
    """The knobs of a request against the checkpoint's UNet config (KnobError naming the field); the captions
    against CLIP's limit (InputError naming `prompt` or `negative`)."""
    words = ClipWords()
    for name in ("prompt", "negative"):
        try:
            words.check(job[name])
        except ValueError as exc:
            raise cond.InputError(name, str(exc)) from None
    return parse_knobs(job["interventions"], prompt=job["prompt"], steps=job["steps"], config=config, words=words)


@dataclass
class Experiment:
    """One run in the capture process: the pair of loops, the VAE to decode with, when it started."""

    pair: PairRun
    vae: Any
    knobs: list[Knob]
    job: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)


def start(explorer: Any, job: dict[str, Any]) -> Experiment:
    """Encode the captions, make the noise and the loops (InputError naming the field for what cannot run)."""
    config, parts = explorer.config, explorer.components
    if parts.text is None or parts.vae is None:
        missing = "text encoder" if parts.text is None else "VAE"
        raise cond.InputError("model", f"the server's weights file holds no {missing}: interventions need a whole "
                                       "checkpoint (UNet, VAE and text encoder)")  # fmt: skip
    if config.num_classes is not None:
        raise cond.InputError("model", "this UNet takes a class or size vector (y, as SDXL's does); interventions "
                                       "run on SD 1.x and 2.x checkpoints")  # fmt: skip
    try:
        knobs = check(config, job)
    except KnobError as exc:
        raise cond.InputError(exc.field, exc.reason) from None
    height, width = job["image_size"]
    f = explorer.latent_factor
    noise = cond.noise((1, config.in_channels, height // f, width // f), job["seed"])

    def make_scheduler():  # type: ignore[no-untyped-def]
        sched = scheduler("ddim")  # SD's training schedule, as SD 1.x's DDIM sampler is configured
        sched.set_timesteps(job["steps"])
        return sched

    def encode(caption: str) -> torch.Tensor:
        return parts.text.encode(caption)[0]

    pair = PairRun(explorer.unet, encode, make_scheduler, noise, prompt=job["prompt"], negative=job["negative"],
                   guidance=job["guidance"], steps=job["steps"], knobs=knobs)  # fmt: skip
    return Experiment(pair, parts.vae, knobs, job)


@torch.inference_mode()
def decode(vae: Any, latent: torch.Tensor) -> Any:
    """A latent -> uint8 [H, W, 3] through the VAE (the latent divided by its scaling factor first, as SD does)."""
    return to_uint8(vae.decode(latent / vae.config.scaling_factor).sample)


def finish(run: Experiment) -> dict[str, Any]:
    """The two pictures decoded and compared."""
    from ..twin.report import data_url

    base, knob = run.pair.finish()
    sampled = time.perf_counter()
    before, after = decode(run.vae, base.images), decode(run.vae, knob.images)
    state = run.pair.state
    done = time.perf_counter()
    return {
        "interventions": [k.to_dict() for k in run.knobs],
        "image": data_url(after),
        "baseline": data_url(before),
        "difference": data_url(difference_picture(before, after)),
        "mse": round(mse(before, after), 6),
        "ssim": round(ssim(before, after), 6),
        "same_reading": None,
        "verdict": None,
        "verdict_reason": NO_VERDICT,
        "batched": run.pair.batched,
        "unet_calls": {
            "baseline": base.unet_calls,
            "knobs": knob.unet_calls,
            "full": state.full_calls,
            "shallow": state.shallow_calls,
        },
        "image_size": list(run.job["image_size"]),
        "steps": run.job["steps"],
        "sampler": "ddim",
        "prediction": "epsilon (assumed: a single-file checkpoint does not say)",
        "timings": {
            "sampling_ms": round((sampled - run.started) * 1e3, 1),
            "decode_ms": round((done - sampled) * 1e3, 1),
            "total_ms": round((done - run.started) * 1e3, 1),
        },
    }


_RUNS: dict[str, Experiment] = {}  # the run under way in this (capture) process, by job id: at most one


def child_step(explorer: Any, job: dict[str, Any]) -> dict[str, Any]:
    """One message of a run as a job: phase "start" builds it, "step" runs one step, "finish" decodes and answers.
    Replies {done, total} until the finish, which replies the result."""
    phase, key = job["phase"], job["id"]
    if phase == "start":
        _RUNS.clear()  # a run left by a cancelled job goes
        _RUNS[key] = start(explorer, job)
    run = _RUNS.get(key)
    if run is None:
        raise RuntimeError("this run's state is gone (the capture process restarted meanwhile); run it again")
    if phase == "step":
        run.pair.advance()
    if phase == "finish":
        del _RUNS[key]
        return finish(run)
    return {"done": run.pair.done, "total": run.pair.total}
