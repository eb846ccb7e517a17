"""Pooled features of every chosen point, from one forward per batch of images and timestep.

The hooks are the Activations view's (`activations.capture.Capture`: the same modules, the same q/k pairing for
attention maps); only the reduction differs. Instead of statistics and a preview, each point is pooled on the spot
into two vectors per image, and the tensor is dropped:

- global: the mean over the point's pixels (conv maps, token features), over its context tokens (cross-attention
  k and v, which come from the text alone), or for attention maps the attention each key receives, averaged over
  heads and query pixels (self: one value per pixel; cross: one per text token);
- mask: the same mean weighted by the object's mask at the point's resolution (the 32x32 mask averaged down to the
  point's grid, so a pixel half covered counts half); for attention maps, over the object's query pixels only.
  Cross-attention k and v have no pixels: their masked pool is their global one.

The UNet sees x_t = sqrt(ᾱ_t) x₀ + sqrt(1 − ᾱ_t) ε (SD's schedule, ε from the image's seed, the same ε at every t)
and the empty caption, so what a probe finds comes from the picture, never from a caption that names it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..activations.capture import Capture, attention_chunks
from ..activations.catalog import ActivationPoint
from ..imports import from_diffusers
from ..twin.model import SCHEDULE, Twin
from ..twin.world import IMAGE_SIZE

BATCH = 64  # images per forward: big enough to amortise the small ops, small enough for a self-map's chunks
# Hooks are registered on the model itself: two hooked forwards of one model at once (a probe job's thread and a
# correspondence request in a server) would each see the other's activations. One hooked forward at a time.
HOOKED_FORWARD = threading.Lock()


@dataclass
class Pooled:
    """Per point: global [N, D] and masked [N, D] features (float32)."""

    glob: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]


class PoolingCapture(Capture):
    """`Capture`'s hooks with a pooling reduction; `weights[factor]` is the batch's mask weights [B, h·w].
    `latent`: the UNet input's height and width (the twin's 32x32 pixels, or a checkpoint's latent)."""

    def __init__(
        self, model: nn.Module, points: list[ActivationPoint], latent: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)
    ) -> None:
        super().__init__(model, points, latent, previews=False)  # type: ignore[arg-type]
        self.weights: dict[int, torch.Tensor] = {}
        self.glob: dict[str, list[torch.Tensor]] = {p.name: [] for p in points}
        self.mask: dict[str, list[torch.Tensor]] = {p.name: [] for p in points}

    def set_masks(self, masks: torch.Tensor) -> None:
        """masks [B, H, W] in [0, 1] on the UNet input's grid: the weights at every factor the points use, each row
        summing to 1."""
        self.weights = {}
        for f in {p.factor for p in self.points}:
            w = F.avg_pool2d(masks[:, None].float(), f)[:, 0].flatten(1) if f > 1 else masks.float().flatten(1)
            self.weights[f] = w / w.sum(1, keepdim=True).clamp_min(1e-8)

    def _reduce_outputs(self, points: list[ActivationPoint], out: torch.Tensor) -> None:
        x = out.detach().float()
        for p in points:
            # BCHW -> [B, H·W, C]; BNC is pixels x channels already, BTC context tokens x channels.
            tokens = x.flatten(2).transpose(1, 2) if p.layout == "BCHW" else x
            g = tokens.mean(1)
            m = g if p.layout == "BTC" else torch.einsum("bn,bnc->bc", self.weights[p.factor], tokens)
            self.glob[p.name].append(g)
            self.mask[p.name].append(m)

    def _reduce_maps(self, attn: nn.Module, points: list[ActivationPoint], k: torch.Tensor) -> None:
        q = self._pending_q.pop(next(iter(points)).module)
        heads = attn.heads
        b, n, m = q.shape[0], q.shape[1], k.shape[1]
        weights = self.weights[points[0].factor]
        g = torch.zeros(b, m)
        w = torch.zeros(b, m)
        for start, probs in attention_chunks(q, k, heads):  # probs [B, heads, n_chunk, M]
            per_query = probs.float().mean(1)  # over heads
            g += per_query.sum(1)
            w += torch.einsum("bn,bnm->bm", weights[:, start : start + per_query.shape[1]], per_query)
        for p in points:
            self.glob[p.name].append(g / n)
            self.mask[p.name].append(w)


SIMPLE_KEYS = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type"}


def schedule(model: Twin | None = None) -> torch.Tensor:
    """ᾱ_t for t = 0..999 of the schedule the model was trained with (its `schedule` where it has one, else SD's)."""
    chosen = getattr(model, "schedule", None) or SCHEDULE
    return _alphas(tuple(sorted(chosen.items())))


@lru_cache(maxsize=4)
def _alphas(items: tuple) -> torch.Tensor:
    """Linear and scaled-linear betas computed here as diffusers' DDPMScheduler does (float32; tested equal), not
    through diffusers: its lazy module is not safe to import from a worker thread while another thread imports it
    (a probe job failed with "cannot import name 'DDPMScheduler'" while the page loaded). Other schedules: diffusers."""
    s = dict(items)
    if s["beta_schedule"] in ("linear", "scaled_linear") and set(s) <= SIMPLE_KEYS:
        n, b0, b1 = s["num_train_timesteps"], s["beta_start"], s["beta_end"]
        if s["beta_schedule"] == "linear":
            betas = torch.linspace(b0, b1, n, dtype=torch.float32)
        else:
            betas = torch.linspace(b0**0.5, b1**0.5, n, dtype=torch.float32) ** 2
        return torch.cumprod(1.0 - betas, dim=0)
    DDPMScheduler = from_diffusers("DDPMScheduler")

    return DDPMScheduler(**s).alphas_cumprod


def noised(x0: torch.Tensor, seeds: list[int], t: int, abar: torch.Tensor) -> torch.Tensor:
    """x_t for pictures x0 [B, 3, H, W] in [-1, 1], each with its own seed's ε."""
    eps = torch.cat([torch.randn((1, *x0.shape[1:]), generator=torch.Generator().manual_seed(s)) for s in seeds])
    a = abar[t].float()
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


Forward = Callable[[torch.Tensor, int], object]  # (x_t [B, C, H, W], t) -> the UNet's output (hooks read it)


@torch.inference_mode()
def pool_batches(
    unet: nn.Module,
    forward: Forward,
    points: list[ActivationPoint],
    x0: torch.Tensor,
    masks: torch.Tensor,
    seeds: list[int],
    t: int,
    abar: torch.Tensor,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> Pooled:
    """Global and masked features of every point for clean inputs x0 [N, C, H, W] (pixels or latents) noised to t,
    masks [N, H, W] on the same grid; `forward` runs the hooked `unet` on one batch."""
    cap = PoolingCapture(unet, points, (x0.shape[-2], x0.shape[-1]))
    for start in range(0, len(seeds), batch):
        stop = min(start + batch, len(seeds))
        cap.set_masks(masks[start:stop])
        x = noised(x0[start:stop], seeds[start:stop], t, abar)
        with HOOKED_FORWARD, cap:  # the hooks live for this batch's forward only (see HOOKED_FORWARD)
            forward(x, t)
        if progress is not None:
            progress(stop - start)
    return Pooled(
        {k: torch.cat(v).numpy() for k, v in cap.glob.items()},
        {k: torch.cat(v).numpy() for k, v in cap.mask.items()},
    )


@torch.inference_mode()
def pooled_features(
    model: Twin,
    points: list[ActivationPoint],
    images: np.ndarray,
    masks: np.ndarray,
    seeds: list[int],
    t: int,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> Pooled:
    """Global and masked features of every point of the twin for pictures [N, 32, 32, 3] uint8 at timestep t."""
    empty = model.context([""])

    def forward(x: torch.Tensor, t: int) -> object:
        b = x.shape[0]
        return model.unet(x, torch.full((b,), t, dtype=torch.long), empty.expand(b, -1, -1))

    x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return pool_batches(model.unet, forward, points, x0, torch.from_numpy(masks), seeds, t, schedule(model),
                        batch=batch, progress=progress)  # fmt: skip
