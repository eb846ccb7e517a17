"""Which model a LoRA was made for: its stems looked up in each candidate UNet, and its shapes checked there.

Both spellings of the kohya stems are looked up (ComfyUI `comfy/lora.py` `model_lora_keys_unet` maps
`lora_unet_` + the original path and `lora_unet_` + the diffusers path to the same weight; kohya's SDXL loader
converts one into the other, `networks/lora.py` `convert_diffusers_to_sai_if_needed`), and so are dotted diffusers
and original paths. A stem matches a module when the module holds a weight; it fits when the LoRA's shapes are
those of that weight (SD 1.x and SD 2.x share every name: SD 2.x's cross-attention reads 1024 channels instead of
768 and projects in and out with Linear layers instead of 1x1 convs, so the shapes tell them apart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from ..model.config import UNetConfig
from ..names.modules import ModuleInfo, unet_names
from ..names.table import lora_stem
from .algos import ModuleTensors

Spelling = Literal["original", "diffusers"]

# The candidates a LoRA's family is chosen from, each with the preset that stands for it.
CANDIDATES: dict[str, str] = {"sd1": "sd1", "sd2": "sd2", "sdxl": "sdxl-base"}


@lru_cache(maxsize=16)
def module_index(config: UNetConfig) -> dict[str, tuple[ModuleInfo, Spelling]]:
    """Every name of a module with a weight -> (the module, which spelling the name is): kohya stems in both
    spellings and dotted paths in both namings (the original's first, where a name is both)."""
    index: dict[str, tuple[ModuleInfo, Spelling]] = {}
    leaves = [m for m in unet_names(config).modules if m.leaf]
    for m in leaves:
        index[lora_stem(m.path) or ""] = (m, "original")
        index[m.path] = (m, "original")
    for m in leaves:
        if m.diffusers is not None:
            index.setdefault(lora_stem(m.diffusers) or "", (m, "diffusers"))
            index.setdefault(m.diffusers, (m, "diffusers"))
    return index


def find_module(config: UNetConfig, stem: str, dotted: str | None) -> tuple[ModuleInfo | None, Spelling | None]:
    """The module a UNet stem names (a kohya stem, or a `dotted` path in either naming) in this config."""
    return module_index(config).get(stem if dotted is None else dotted, (None, None))


@dataclass
class Match:
    """How one candidate model takes a LoRA's UNet stems."""

    config: UNetConfig
    fits: dict[str, tuple[ModuleInfo, Spelling]] = field(default_factory=dict)  # stem -> its module
    misfits: dict[str, ModuleInfo] = field(default_factory=dict)  # named, but the shapes do not fit
    missing: list[str] = field(default_factory=list)  # names no module of this model

    @property
    def score(self) -> tuple[int, int]:
        return len(self.fits), -len(self.misfits)


def match_unet(config: UNetConfig, groups: dict[str, tuple[ModuleTensors, str | None]]) -> Match:
    """Look every UNet stem up in one model; `groups` maps stem -> (its tensors, its dotted path or None)."""
    match = Match(config)
    for stem, (tensors, dotted) in groups.items():
        module, spelling = find_module(config, stem, dotted)
        if module is None or spelling is None:
            match.missing.append(stem)
        elif module.weight_shape is not None and tensors.fits(module.weight_shape):
            match.fits[stem] = (module, spelling)
        else:
            match.misfits[stem] = module
    return match
