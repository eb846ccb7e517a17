"""The UNet's inputs for a capture: the latent at a timestep, the context, and `y`.

- Latent: an image is resized to cover the chosen size, centre-cropped, scaled to [-1, 1] and encoded with the
  checkpoint's VAE (the mean of its latent distribution, times the VAE's scaling factor), then noised to the
  timestep with SD's training schedule (DDPM, 1000 steps, scaled-linear betas 0.00085 -> 0.012, diffusers'
  `DDPMScheduler.add_noise`): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, eps from the seed. Without
  an image the latent is seeded standard-normal noise, used as x_t at any timestep (where sampling starts).
- Without a VAE (random weights, a UNet-only file) an image still gives a stand-in latent: the image averaged down
  to the latent grid, its R, G, B and their mean as four channels in [-1, 1] (repeated for wider inputs). It keeps
  the picture's layout; it is not what a VAE would give.
- SDXL's `y`: the pooled bigG embedding, then the original size, the crop's top-left corner and the target size
  (base) or the original size, the crop and an aesthetic score of 6 (refiner), each number as a 256-wide
  sinusoidal embedding, as sgm's `ConcatTimestepEmbedderND` makes them. Sizes are the image size; the crop is (0, 0).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..imports import from_diffusers
from ..model.config import UNetConfig
from ..model.unet import timestep_embedding

TIMESTEPS = 1000
BETA_START, BETA_END = 0.00085, 0.012
SIZE_EMBED = 256
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")


class InputError(ValueError):
    """A capture input that cannot be used; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple:
        return (type(self), (self.field, self.reason))


def scheduler(schedule: dict | None = None):  # type: ignore[no-untyped-def]
    """SD's training schedule, or a model's own (diffusers' scheduler arguments: the twin states its own)."""
    DDPMScheduler = from_diffusers("DDPMScheduler")

    if schedule is not None:
        return DDPMScheduler(**schedule)
    return DDPMScheduler(
        num_train_timesteps=TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END, beta_schedule="scaled_linear"
    )


def add_noise(x0: torch.Tensor, noise: torch.Tensor, timestep: int, schedule: dict | None = None) -> torch.Tensor:
    return scheduler(schedule).add_noise(x0, noise, torch.tensor([timestep]))


def decode_image(data: bytes, max_side: int, field: str = "image") -> torch.Tensor:
    """Image bytes -> RGB float tensor [3, H, W] in [0, 1]; InputError for what is not a small image."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        if fmt not in IMAGE_FORMATS:
            raise InputError(field, f"{fmt} images are not read; send one of {', '.join(IMAGE_FORMATS)}")
        if max(img.size) > max_side:
            raise InputError(field, f"{img.size[0]}x{img.size[1]} is over the limit of {max_side} pixels per side")
        img = img.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(field, f"not a readable image ({type(exc).__name__})") from None
    import numpy as np

    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def fit(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize [3, h, w] to cover height x width (bicubic, antialiased), then centre-crop to it."""
    _, h, w = image.shape
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    resized = F.interpolate(image[None], size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)[0]
    top, left = (nh - height) // 2, (nw - width) // 2
    return resized[:, top : top + height, left : left + width].clamp(0, 1)


@torch.inference_mode()
def vae_latent(vae, image: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """[3, H, W] in [0, 1] -> the VAE's scaled latent mean [1, C, H/8, W/8]."""
    x = image[None] * 2 - 1
    return vae.encode(x).latent_dist.mean * vae.config.scaling_factor


def standin_latent(image: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """An image averaged down to the latent grid as channels (R, G, B, mean) in [-1, 1]: no VAE involved."""
    small = F.adaptive_avg_pool2d(image[None], (height, width))[0] * 2 - 1
    four = torch.cat([small, small.mean(dim=0, keepdim=True)])
    return four.repeat((channels + 3) // 4, 1, 1)[:channels][None]


def noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def sdxl_y(pooled: torch.Tensor, image_size: tuple[int, int], adm_in: int) -> torch.Tensor:
    """SDXL's vector conditioning for an uncropped image of `image_size` pixels (base: 2816 wide, refiner 2560)."""
    h, w = image_size
    numbers = [h, w, 0, 0, h, w] if adm_in - pooled.shape[1] == 6 * SIZE_EMBED else [h, w, 0, 0, 6.0]
    emb = timestep_embedding(torch.tensor(numbers, dtype=torch.float32), SIZE_EMBED).reshape(1, -1)
    y = torch.cat([pooled.float(), emb], dim=1)
    if y.shape[1] != adm_in:
        raise InputError("weights", f"the pooled text and size embeddings make {y.shape[1]} values, y needs {adm_in}")
    return y


@dataclass
class LatentChoice:
    x: torch.Tensor  # the UNet's input at the timestep
    x0: torch.Tensor | None  # the clean latent, when there is one (noised again at a second timestep)
    noise: torch.Tensor
    source: str  # "vae", "stand-in" or "noise"


def make_latent(
    config: UNetConfig,
    sample: tuple[int, int],
    image: torch.Tensor | None,
    vae,  # type: ignore[no-untyped-def]
    seed: int,
    timestep: int,
    schedule: dict | None = None,
) -> LatentChoice:
    """The noised latent for one capture (see the module docstring)."""
    shape = (1, config.in_channels, *sample)
    eps = noise(shape, seed)
    if image is None:
        return LatentChoice(eps, None, eps, "noise")
    if vae is not None:
        x0 = vae_latent(vae, image)
        if x0.shape[1] != config.in_channels:
            # An inpainting or upscaling UNet takes more than the VAE latent: the rest stays zero.
            x0 = torch.cat([x0, x0.new_zeros(1, config.in_channels - x0.shape[1], *sample)], dim=1)
        source = "vae"
    else:
        x0 = standin_latent(image, config.in_channels, *sample)
        source = "stand-in"
    return LatentChoice(add_noise(x0, eps, timestep, schedule), x0, eps, source)


def class_y(config: UNetConfig) -> torch.Tensor | None:
    """y for class-conditional LDMs: class 0 (or 0.0): the capture does not choose a class."""
    if config.num_classes is None or config.num_classes == "sequential":
        return None
    if config.num_classes == "continuous":
        return torch.zeros(1, 1)
    return torch.zeros(1, dtype=torch.long)
