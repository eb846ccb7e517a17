"""Safetensors headers built from UNetModel on the meta device (shapes only, once per preset), for the checkpoint
detection tests, and the non-UNet parts of a full SD file."""

from __future__ import annotations

import json
import math
import struct
from functools import cache

import torch

from sdunet_core import PRESETS, UNetConfig, UNetModel
from sdunet_core.checkpoint.diffusers_keys import keymap_for

Shapes = dict[str, tuple[int, ...]]


@cache
def shapes_of(config: UNetConfig) -> Shapes:
    with torch.device("meta"):
        model = UNetModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def preset_shapes(name: str) -> Shapes:
    return shapes_of(PRESETS[name].config)


def diffusers_shapes(name: str) -> Shapes:
    keymap = keymap_for(PRESETS[name].config)
    assert keymap is not None
    return {keymap.to_diffusers(k): s for k, s in preset_shapes(name).items()}


def make_header(shapes: Shapes, prefix: str = "", dtype: str = "F16", extra: Shapes | None = None) -> dict:
    """A safetensors header with consecutive data_offsets, UNet tensors under `prefix`, `extra` as they are."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    size = {"F16": 2, "F32": 4, "BF16": 2}[dtype]
    for name, shape in [*((prefix + k, s) for k, s in shapes.items()), *(extra or {}).items()]:
        n = math.prod(shape) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    return header


def without_offsets(header: dict) -> dict:
    """The header with no data_offsets (a header that is edited by hand cannot keep them tiling the data)."""
    return {
        k: {f: v for f, v in e.items() if f != "data_offsets"} if k != "__metadata__" else e for k, e in header.items()
    }


def header_bytes(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


# Parts of a full Stable Diffusion file that are not the UNet (a few tensors each is enough).
VAE = {
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3),
    "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
}
CLIP = {
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
}
DIFFUSERS_EXTRA = {
    "vae.encoder.conv_in.weight": (128, 3, 3, 3),
    "text_encoder.text_model.embeddings.token_embedding.weight": (49408, 768),
}
DIFFUSERS_PRESETS = [name for name, p in PRESETS.items() if keymap_for(p.config) is not None]


def block_of(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] in ("input_blocks", "output_blocks") else parts[0]


def same_config_presets(name: str) -> list[str]:
    return [n for n, p in PRESETS.items() if p.config == PRESETS[name].config]
