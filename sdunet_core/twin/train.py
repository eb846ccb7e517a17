"""Train the twin: one readable loop, SD's objective on the drawn world, CPU-sized.

The recipe (the defaults of `TrainConfig`) is what made the shipped weights: AdamW, a short warm-up then a cosine
decay, batches of freshly drawn scenes (training seeds start at TRAIN_SEED_BASE: the gates use seeds below it),
ε-prediction with SD's schedule at uniformly drawn timesteps, the caption dropped for 10% of the batch (so the
same network also predicts unconditionally, which classifier-free guidance needs), and an exponential moving
average of the weights, which is what is saved. It runs on one CPU thread in under an hour;
`--steps 40 --batch 8` is a smoke run of seconds.
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import world
from .model import SCHEDULE, WEIGHTS, Twin, alphas_cumprod, save

log = logging.getLogger(__name__)

TRAIN_SEED_BASE = 1_000_000  # seeds below this are never drawn in training: the gates and tests use them


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch: int = 48
    lr: float = 1.5e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1  # the cosine decays to this share of lr
    weight_decay: float = 0.01
    caption_dropout: float = 0.1  # SD 1.x trained with 10% empty captions
    ema: float = 0.999
    # Offset noise (Guttenberg, 2023): a per-picture, per-channel constant added to the training noise, std this.
    # SD's schedule leaves 6.8% of the signal at t = 999, so a model trained on plain noise reads the picture's
    # mean colour off the starting noise instead of the caption; the offset makes that mean part of what it predicts.
    # Measured here: without it the ground was right in 27% of pictures (chance: 33%), with it in most.
    offset_noise: float = 0.1
    # Pyramid noise (Whitaker, 2023; offset noise is its coarsest level): noise drawn at 16x16, 8x8, ... 1x1,
    # upsampled and added with weights discount**level. SD's schedule also leaves the picture's layout readable in
    # the low frequencies of x_999, so a model trained on white noise places the object wherever the starting noise
    # happens to have a blob, and ignores the position words; low-frequency noise in training makes that blob
    # uninformative. 0 turns it off.
    pyramid_noise: float = 0.0
    # The objective: "epsilon" (SD 1.x) or "v_prediction" (SD 2.x's 768-v models), and whether the schedule is
    # rescaled to zero signal at t = 999 (Lin et al., 2024, "Common diffusion noise schedules and sample steps are
    # flawed"). With SD 1.x's schedule x_999 keeps 6.8% of the picture, and the model reads the layout off it.
    objective: str = "epsilon"
    zero_terminal_snr: bool = False
    seed: int = 0
    # One thread: the run is bit-for-bit repeatable, and small ops on two threads stall whenever anything else
    # runs on the second core (measured: 1.5 s a step on one thread, 1.7-6.5 s on two, beside a test run).
    threads: int = 1
    log_every: int = 50
    checkpoint_every: int = 500


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> float [N, 3, 32, 32] in [-1, 1], the twin's x_0."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def draw_batch(cfg: TrainConfig, step: int, rng: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    first = TRAIN_SEED_BASE + cfg.seed * 10**8 + step * cfg.batch
    images, captions = world.batch(list(range(first, first + cfg.batch)))
    drop = torch.rand(cfg.batch, generator=rng) < cfg.caption_dropout
    return to_pixels(images), ["" if d else c for d, c in zip(drop.tolist(), captions, strict=True)]


def schedule_of(cfg: TrainConfig) -> dict[str, Any]:
    """The noise schedule a config trains with (diffusers' scheduler arguments), recorded beside the weights."""
    out = dict(SCHEDULE, prediction_type=cfg.objective)
    if cfg.zero_terminal_snr:
        out |= {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}
    return out


def training_noise(cfg: TrainConfig, shape: torch.Size, rng: torch.Generator) -> torch.Tensor:
    """The noise a training step adds: white, plus the offset and the pyramid's coarser levels when set."""
    n, c, h, w = shape
    eps = torch.randn(shape, generator=rng)
    if cfg.pyramid_noise:
        variance, size, level = 1.0, h // 2, 1
        while size >= 1:
            weight = cfg.pyramid_noise**level
            coarse = torch.randn((n, c, size, size), generator=rng)
            eps = eps + weight * F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
            variance += weight**2  # an upper bound: bilinear upsampling smooths a little
            size, level = size // 2, level + 1
        eps = eps / math.sqrt(variance)
    if cfg.offset_noise:
        eps = eps + cfg.offset_noise * torch.randn((n, c, 1, 1), generator=rng)
    return eps


def versions() -> dict[str, str]:
    import diffusers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "diffusers": diffusers.__version__,
        "pillow": __import__("PIL").__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }


def train(cfg: TrainConfig, out: Path = WEIGHTS) -> dict[str, Any]:
    """Train from scratch with `cfg`, write the EMA weights and the record to `out` (and `out`.json)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = torch.Generator().manual_seed(cfg.seed)
    model = Twin().train()
    ema = Twin().eval()
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    model.schedule = ema.schedule = schedule_of(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = schedule_of(cfg)
    abar = alphas_cumprod(schedule).float()
    timesteps = schedule["num_train_timesteps"]
    curve: list[dict[str, float]] = []
    window: list[float] = []
    start = time.perf_counter()

    def record(step: int) -> dict[str, Any]:
        return {
            "config": asdict(cfg),
            "preset": "twin",
            "schedule": schedule,
            "steps_done": step,
            "images_seen": step * cfg.batch,
            "train_seeds": f"{TRAIN_SEED_BASE + cfg.seed * 10**8} and up",
            "wall_seconds": round(time.perf_counter() - start, 1),
            "loss_curve": curve,
            "versions": versions(),
            "parameters": {
                "unet": sum(p.numel() for p in model.unet.parameters()),
                "text_encoder": sum(p.numel() for p in model.text.parameters()),
            },
        }

    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        x0, captions = draw_batch(cfg, step, rng)
        t = torch.randint(0, timesteps, (cfg.batch,), generator=rng)
        eps = training_noise(cfg, x0.shape, rng)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps  # diffusers' DDPMScheduler.add_noise, written out
        # ε-prediction's target is the noise; v-prediction's is sqrt(ᾱ) ε - sqrt(1 - ᾱ) x_0 (diffusers' get_velocity).
        target = eps if cfg.objective == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        loss = F.mse_loss(model(xt, t, model.context(captions)), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        # The average warms up (as in diffusers' EMAModel) so early weights do not dominate a short run.
        decay = min(cfg.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                pe.lerp_(pm, 1 - decay)
        window.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            mean = sum(window) / len(window)
            curve.append({"step": step + 1, "loss": round(mean, 5), "seconds": round(time.perf_counter() - start, 1)})
            log.info(
                "step %d/%d loss %.4f lr %.2e %.0f s", step + 1, cfg.steps, mean, lr_at(cfg, step), curve[-1]["seconds"]
            )
            window.clear()
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save(ema, out, record(step + 1))
    result = record(cfg.steps)
    save(ema, out, result)
    return result
