"""sdunet_core: the Stable Diffusion UNet family (LDM, SD 1.x, SD 2.x, SDXL), its presets, and the tracer.

A library with no web imports: the FastAPI app and the CLI are built on it. Its rooms, each a subpackage that says
what it holds and exports:

- `model/`: `UNetConfig`, its checks and plan, and `UNetModel` built from its block classes;
- `tracer/`: `trace_unet()`, the hooked meta forward, and what is read off a trace (comparisons, summaries, cost);
- `checkpoint/`: a checkpoint's architecture from its tensor table, the diffusers names, the weights on demand;
- `control/`: the ControlNet, its presets and trace, and the detection of control models' files;
- `names/`, `lora/`, `activations/`: the community's names, LoRA files, and one captured forward;
- `probes/`: which activations are discriminative (linear probes, correspondence), measured on the twin.

Beside them: `schema.py` (the typed trace every room writes and the API serves), `presets.py` (the named models),
`errors.py` (`ConfigError`) and `schema_doc.py` (docs/trace-schema.md rendered from the schema).
"""

from .errors import ConfigError
from .model import UNetConfig, UNetModel, plan_blocks
from .presets import PRESETS, Preset, load_preset
from .schema import Trace
from .tracer import trace_unet

__all__ = [
    "PRESETS",
    "ConfigError",
    "Preset",
    "Trace",
    "UNetConfig",
    "UNetModel",
    "load_preset",
    "plan_blocks",
    "trace_unet",
]
