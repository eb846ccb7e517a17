"""Open a control model's file: a ControlNet (both layouts), a T2I-Adapter or a control-LoRA, from its header alone.

`detect_control(header)` answers None for a file that holds none of them (a UNet, a LoRA, a VAE), and otherwise a
`ControlDetectionReport`: what kind of control model it is, its layout and prefix, the family of the UNet it steers,
where it injects into that UNet (`InjectionPoint`s), and its size. What the names and shapes say:

- **ControlNet**, original layout (lllyasviel/ControlNet `cldm/cldm.py`): `input_hint_block.0.weight` beside
  `zero_convs.0.0.weight`, under `control_model.` (a ControlLDM checkpoint) or no prefix; diffusers' layout
  (`ControlNetModel`): `controlnet_cond_embedding.conv_in.weight` beside `controlnet_down_blocks.0.weight`. The
  tensors are compared with `ControlNetModel` of the ControlNet preset they fit (hint and latent channels read
  from the file), as `detect_unet` compares a UNet: missing, unexpected and mismatched keys in the file's names.
- **T2I-Adapter** (TencentARC/T2I-Adapter `ldm/modules/encoders/adapter.py` and `Adapter/models/adapters.py`;
  diffusers `T2IAdapter`): the full adapter (`conv_in`, `body.N.block1/block2`, `body.N.in_conv` where the width
  changes; diffusers `adapter.conv_in`, `adapter.body.I.resnets.J.block1`, `adapter.body.I.in_conv`), the light
  one (`body.I.in_conv`, `body.I.body.J.block1`, `body.I.out_conv`; diffusers `adapter.body.I.resnets.J`) and the
  SDXL one (pixel-unshuffle by 16, one downsampling block). Four feature maps, added to the UNet's encoder: for
  SD 1.x after `input_blocks.2, 5, 8, 11` (image / 8, 16, 32, 64; the original adds them where `(i + 1) % 3 == 0`);
  for SDXL after `input_blocks.3, 5, 8` and the middle block (image / 16, 16, 32, 32; diffusers'
  `down_intrablock_additional_residuals`).
- **control-LoRA** (Stability AI's control-LoRAs, read by ComfyUI `comfy/controlnet.py` `ControlLora`): a
  `lora_controlnet` marker, the ControlNet's own parts as full tensors (hint encoder, zero convs, norms, biases) and
  every large weight of the encoder copy as a low-rank pair `<module>.up` / `<module>.down`, added to the base
  UNet's weight when the ControlNet is built. It injects where a ControlNet of its family does.

This module decides which of them a file holds; each kind has its own detector (`controlnet_detect`,
`adapter_detect`, `lora_detect`), and the report's models live in `report` (importable from here
too). Nothing here reads tensor data, and nothing imports the web app.
"""

from __future__ import annotations

from typing import Any

from ..checkpoint.detect import clip_metadata
from ..checkpoint.header import validate_header
from .adapter_detect import detect_adapter, find_adapter
from .controlnet_detect import detect_controlnet, find_controlnet
from .lora_detect import detect_control_lora
from .report import (
    AdapterFacts,
    ControlDetectionReport,
    ControlKind,
    ControlLoraFacts,
    ControlMismatch,
    Family,
    InjectionPoint,
    Layout,
)

__all__ = [
    "AdapterFacts",
    "ControlDetectionReport",
    "ControlKind",
    "ControlLoraFacts",
    "ControlMismatch",
    "Family",
    "InjectionPoint",
    "Layout",
    "detect_control",
]


def detect_control(header: dict[str, Any]) -> ControlDetectionReport | None:
    """The control model in a safetensors-style header, or None when the file holds none."""
    tensors, metadata = validate_header(header)
    meta = clip_metadata(metadata)
    if any(name.rpartition(".")[2] == "lora_controlnet" for name in tensors):
        return detect_control_lora(tensors, meta)
    found = find_controlnet(tensors)
    if found is not None:
        prefix, layout = found
        # A control-LoRA saved without its marker still gives its low-rank pairs away.
        if layout == "ldm" and any(n.startswith(prefix) and n.endswith((".up", ".down")) for n in tensors):
            return detect_control_lora(tensors, meta, prefix)
        return detect_controlnet(tensors, prefix, layout, meta)
    found_adapter = find_adapter(tensors)
    if found_adapter is not None:
        return detect_adapter(tensors, *found_adapter, meta)
    return None
