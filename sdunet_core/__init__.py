"""sdunet_core: the Stable Diffusion UNet family (LDM, SD 1.x, SD 2.x, SDXL), its presets, and the tracer.

A library with no web imports: the FastAPI app and the CLI are built on it.
"""

from .config import ConfigError, UNetConfig
from .plan import plan_blocks
from .presets import PRESETS, Preset, load_preset
from .schema import Trace
from .trace import trace_unet
from .unet import UNetModel

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
