"""Checkpoint files read from their tensor table: the architecture named from the shapes, the weights on demand.

`header` reads a safetensors header (or a `.ckpt`'s table) without the tensors; `detect` finds the UNet in it and
names its architecture (`detect_unet`, `inspect_file`), reading the U's skeleton (`infer_shapes`), then where its
attention sits and how deep (`infer_attention`), then the choices the shapes do not show (`infer_config`).
`diffusers_keys` maps the original module names to diffusers' both ways; `weights` reads a local file's UNet
tensors lazily, for per-module statistics.

Exports `CheckpointError`, `read_header`, `detect_unet`, `inspect_file`, `Detection`, `DetectionReport`,
`keymap_for`, `to_diffusers_name` and `open_weights`.
"""

from .detect import Detection, DetectionReport, detect_unet, inspect_file
from .diffusers_keys import keymap_for, to_diffusers_name
from .header import CheckpointError, read_header
from .weights import open_weights

__all__ = [
    "CheckpointError",
    "Detection",
    "DetectionReport",
    "detect_unet",
    "inspect_file",
    "keymap_for",
    "open_weights",
    "read_header",
    "to_diffusers_name",
]
