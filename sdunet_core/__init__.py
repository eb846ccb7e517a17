"""sdunet_core: the Stable Diffusion UNet family (LDM, SD 1.x, SD 2.x, SDXL), its presets, and the tracer.

A library with no web imports: the FastAPI app and the CLI are built on it.
"""

from .config import ConfigError, UNetConfig, plan_blocks
from .presets import PRESETS, Preset, load_preset
from .unet import UNetModel

__all__ = ["PRESETS", "ConfigError", "Preset", "UNetConfig", "UNetModel", "load_preset", "plan_blocks"]
