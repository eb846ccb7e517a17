"""Probes on the server's checkpoint (a single-file SD checkpoint: UNet, VAE, text encoder): the twin's probe,
asked of a real latent-diffusion model.

The world's pictures are 32x32 pixels; a latent model sees them through its VAE. Each picture is enlarged to
IMAGE_SIZE x IMAGE_SIZE by nearest-neighbour (every world pixel becomes a UPSCALE x UPSCALE block: no colour is
invented at the edges, and colour is one of the targets), encoded by the checkpoint's VAE (the mean of its latent
distribution times its scaling factor, once per picture, reused at every timestep) and noised to t with SD's
training schedule, each picture with its own seed's noise, as the twin's pictures are. With SD's 8-pixel VAE the
latent is 32x32: the world's object masks lie on the latent grid pixel for pixel.

The caption is the twin probe's: the empty one, here through the checkpoint's own text encoder, so nothing the
probe finds can come from a caption that names the object. Points are the checkpoint's activation catalog at that
latent size; pooling, the split, the classifier and the control are the twin's (`features`, `linear`, `world`).

A checkpoint's forward is slow on a CPU: a run takes at most MAX_IMAGES pictures (the API answers more with 413).
The model is loaded once per file and kept (one server, one checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from ..activations.catalog import ActivationPoint, catalog
from ..activations.conditioning import InputError
from ..activations.tokenizer import MAX_TOKENS
from ..model.config import UNetConfig
from ..twin.world import IMAGE_SIZE as WORLD_SIZE
from .features import Pooled, pool_batches, schedule
from .world import ProbeSet

IMAGE_SIZE = 256  # pixels the VAE encodes: the world's 32 x 8, so SD's VAE gives a 32x32 latent
UPSCALE = IMAGE_SIZE // WORLD_SIZE
RESIZE = "nearest"
MAX_IMAGES = 256  # per run (413 past it): a checkpoint forward is seconds, not milliseconds, on a CPU
BATCH = 8  # pictures per VAE encode and per UNet forward: a real UNet's activations are large
CAPTION = ""  # the twin probe's caption: the empty one, never one that names the object
VAE_KEY = "first_stage_model.encoder.conv_in.weight"
VAE_DOWN = "first_stage_model.encoder.down."


@dataclass(frozen=True)
class Header:
    """What a checkpoint's header says for a probe, read without loading its tensors (safetensors)."""

    config: UNetConfig
    has_vae: bool
    has_text: bool
    latent: tuple[int, int]  # the grid IMAGE_SIZE pixels become through its VAE


@lru_cache(maxsize=2)
def _header(path: str, mtime: float) -> Header:  # mtime: a file written again under its name is read again
    from ..activations.components import checkpoint_keys, detect_encoders
    from ..checkpoint.weights import WeightsFile

    keys = set(checkpoint_keys(Path(path)))
    # The VAE's encoder levels (first_stage_model.encoder.down.<i>.…): each below the first halves the picture.
    levels = {k.split(".")[3] for k in keys if k.startswith(VAE_DOWN)}
    side = IMAGE_SIZE // 2 ** max(0, len(levels) - 1)
    return Header(WeightsFile(path).config, VAE_KEY in keys, bool(detect_encoders(keys)[1]), (side, side))


def header(path: str | Path) -> Header:
    p = Path(path)
    return _header(str(p), p.stat().st_mtime)


def check_file(path: str | Path) -> None:
    """A checkpoint that can be probed: it holds a VAE (the pictures must be encoded) and a text encoder (the empty
    caption must be encoded); InputError on "model" otherwise."""
    head = header(path)
    if not head.has_vae:
        raise InputError("model", f"{Path(path).name} holds no VAE: the world's pictures cannot be encoded to latents")
    if not head.has_text:
        raise InputError("model", f"{Path(path).name} holds no text encoder: the empty caption cannot be encoded")


@lru_cache(maxsize=1)
def explorer(path: str, mtime: float):  # type: ignore[no-untyped-def]
    # mtime is part of the cache key only: a file written again under the same name is loaded again.
    from ..activations.session import Explorer

    return Explorer.from_checkpoint(path)


def load(path: str | Path):  # type: ignore[no-untyped-def]
    """The checkpoint's UNet, VAE and text encoder (loaded on the first probe run, then kept)."""
    p = Path(path)
    return explorer(str(p), p.stat().st_mtime)


def points_of(path: str | Path) -> tuple[ActivationPoint, ...]:
    """The checkpoint's activation catalog at the probe's latent size (CLIP's 77 context tokens)."""
    head = header(path)
    return catalog(head.config, head.latent, MAX_TOKENS)


@torch.inference_mode()
def encode(path: str | Path, data: ProbeSet, progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Every picture enlarged and encoded: the clean latents [N, C, h, w]."""
    ex = load(path)
    vae = ex.components.vae
    out = []
    for start in range(0, data.n, BATCH):
        x = torch.from_numpy(data.images[start : start + BATCH]).permute(0, 3, 1, 2).float() / 127.5 - 1
        x = F.interpolate(x, scale_factor=UPSCALE, mode=RESIZE)
        z = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        if z.shape[1] != ex.config.in_channels:  # an inpainting UNet takes more than the latent: the rest zero
            z = torch.cat([z, z.new_zeros(z.shape[0], ex.config.in_channels - z.shape[1], *z.shape[2:])], dim=1)
        out.append(z)
        if progress is not None:
            progress(x.shape[0])
    return torch.cat(out)


def masks_on(latent: torch.Tensor, data: ProbeSet) -> torch.Tensor:
    """The objects' 32x32 masks on the latent grid: the same grid for SD's VAE, else averaged down or enlarged."""
    m = torch.from_numpy(data.masks).float()[:, None]
    h, w = latent.shape[-2:]
    if (h, w) == m.shape[-2:]:
        return m[:, 0]
    return F.interpolate(m, size=(h, w), mode="area" if h < m.shape[-2] else "nearest")[:, 0]


@torch.inference_mode()
def pooled(
    path: str | Path,
    points: list[ActivationPoint],
    latents: torch.Tensor,
    data: ProbeSet,
    t: int,
    progress: Callable[[int], None] | None = None,
) -> Pooled:
    """Global and masked features of every point for the encoded pictures at timestep t."""
    ex = load(path)
    context, y, _ = ex.conditioning(CAPTION, (IMAGE_SIZE, IMAGE_SIZE))

    def forward(x: torch.Tensor, t: int) -> object:
        b = x.shape[0]
        ts = torch.full((b,), float(t))
        return ex.unet(x, ts, None if context is None else context.expand(b, -1, -1),
                       None if y is None else y.expand(b, -1))  # fmt: skip

    # schedule() with no model is SD's training schedule (the one the twin was trained with too).
    return pool_batches(ex.unet, forward, points, latents, masks_on(latents, data), data.seeds, t,
                        schedule(), batch=BATCH, progress=progress)  # fmt: skip


def recipe_input(path: str | Path) -> dict[str, str]:
    h, w = header(path).latent
    return {
        "encoding": f"the world's 32x32 pictures enlarged to {IMAGE_SIZE}x{IMAGE_SIZE} by {RESIZE}-neighbour "
        f"(each pixel a {UPSCALE}x{UPSCALE} block), encoded once by {Path(path).name}'s VAE (latent mean x its "
        f"scaling factor) to {h}x{w} latents",
        "input": "z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps (SD's schedule, eps from the image's seed), the "
        "empty caption through the checkpoint's text encoder",
        "masks": "the objects' masks on the latent grid"
        + (" (pixel for pixel)" if (h, w) == (WORLD_SIZE, WORLD_SIZE) else " (resized)"),
    }
