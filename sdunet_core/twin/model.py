"""The twin model: the `twin` preset's UNet, its text encoder, SD's noise schedule, and the shipped weights.

The UNet is our `UNetModel` built from the `twin` preset (data/presets.json): SD's architecture (ResBlocks,
SpatialTransformers with cross-attention to the text tokens, skips, the time embedding), small, in pixel space.
SD works in the latent space of a VAE (8x smaller per side, 4 channels); the twin's pictures are 32x32 already, so
it denoises the pixels themselves (3 channels in [-1, 1]) and has no VAE.

Weights: one safetensors file, `unet.*` and `text.*` keys, with the training record beside it as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..imports import from_diffusers
from ..model.unet import UNetModel
from ..presets import load_preset
from .text import TextEncoder, WordTokenizer

PRESET = "twin"
WEIGHTS = Path(__file__).parent / "data" / "twin.safetensors"
RECORD = WEIGHTS.with_suffix(".json")

# SD's training schedule: 1000 steps, scaled-linear betas from 0.00085 to 0.012, the model predicts the noise.
SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}


class Twin(nn.Module):
    """The UNet and the text encoder, trained together; `context()` turns captions into what the UNet attends to."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer = WordTokenizer()
        self.unet = UNetModel(load_preset(PRESET).config)
        self.text = TextEncoder(len(self.tokenizer.tokens))
        # The noise schedule it was trained with (diffusers' arguments); a weights file's record says which.
        self.schedule: dict[str, Any] = dict(SCHEDULE)

    def context(self, captions: list[str]) -> torch.Tensor:
        return self.text(self.tokenizer.batch(captions))

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, context)


def alphas_cumprod(schedule: dict[str, Any] | None = None) -> torch.Tensor:
    """alpha_bar_t for t = 0..999 of a schedule (SD's by default), as diffusers computes it."""
    DDPMScheduler = from_diffusers("DDPMScheduler")

    return DDPMScheduler(**(schedule or SCHEDULE)).alphas_cumprod


def state(model: Twin) -> dict[str, torch.Tensor]:
    return {f"unet.{k}": v for k, v in model.unet.state_dict().items()} | {
        f"text.{k}": v for k, v in model.text.state_dict().items()
    }


def save(model: Twin, path: Path, record: dict[str, Any] | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().clone() for k, v in state(model).items()}
    save_file(tensors, str(path), metadata={"format": "sdunet-explorer twin"})
    if record is not None:
        path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")


def load_weights(model: Twin, path: Path) -> Twin:
    """Load a twin file with every key and shape checked (strict)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    model.unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")}, strict=True)
    model.text.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("text.")}, strict=True)
    record = path.with_suffix(".json")
    if record.is_file():
        model.schedule = dict(json.loads(record.read_text()).get("schedule", SCHEDULE))
    return model.eval()


@dataclass(frozen=True)
class Shipped:
    model: Twin
    record: dict[str, Any]


def weights_shipped() -> bool:
    return WEIGHTS.is_file() and RECORD.is_file()


@lru_cache(maxsize=1)
def shipped() -> Shipped:
    """The trained twin shipped with the package, in eval mode (loaded once per process)."""
    model = load_weights(Twin(), WEIGHTS)
    for p in model.parameters():
        p.requires_grad_(False)
    return Shipped(model, json.loads(RECORD.read_text()))
