"""The model family: a UNet described by its config, checked, planned and built with the original module names.

`config` holds `UNetConfig` (readable names, `from_ldm()` / `to_ldm()` for the original yaml) and `validate` its
checks; `diffusers_config` reads a diffusers `unet/config.json` into one. `plan` walks the U's slots (`walk_u`) and
plans every top-level block (`plan_blocks`); `builder` turns a plan into modules, from the classes of `blocks`
(ResBlock, resamplers, plain attention) and `attention` (the transformer side); `unet` is `UNetModel`. Each block
class states its `category` (one word of `categories`), `facts()` and `flow()` (the steps of its forward, in the
vocabulary of `flow`) for the tracer.

Exports `UNetConfig`, `UNetModel`, `ConfigError`, `plan_blocks`, `walk_u`, `BlockPlan`, `AttentionPlan`,
`CATEGORIES` and `config_from_diffusers`.
"""

from .categories import CATEGORIES
from .config import ConfigError, UNetConfig
from .diffusers_config import config_from_diffusers
from .plan import AttentionPlan, BlockPlan, plan_blocks, walk_u
from .unet import UNetModel

__all__ = [
    "CATEGORIES",
    "AttentionPlan",
    "BlockPlan",
    "ConfigError",
    "UNetConfig",
    "UNetModel",
    "config_from_diffusers",
    "plan_blocks",
    "walk_u",
]
