"""The named ControlNets: SD 1.5, SD 2.1 and SDXL as released, plus a tiny teaching one.

Each is `cldm.ControlNet`'s keyword arguments taken verbatim from its source (`data/controlnet_presets.json`: the
yaml's `control_stage_config.params` for lllyasviel/ControlNet's SD 1.5 and 2.1 models; for SDXL, whose ControlNets
ship in diffusers' layout, the SDXL base UNet's parameters, the network of diffusers/controlnet-canny-sdxl-1.0),
with the exact parameter count of the reference implementation and the UNet preset it steers. They are apart
from `PRESETS` because they are not UNets: no output stage, and a second input (the control image).

The SDXL "small" and "mid" ControlNets (diffusers/controlnet-canny-sdxl-1.0-small, -mid) are not here: we could
not read their published config.json, and the one statement of them we found, a third-party training config
(okotaku/diffengine `configs/stable_diffusion_xl_controlnet_small/`: `transformer_layers_per_block` [0, 0, 0] and
[0, 0, 1]), has transformers with no blocks (diffusers still builds their norm and projections), which a
`UNetConfig` cannot say today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError, quote
from ..presets import PRESETS, Preset
from .controlnet import ControlNetConfig

_DATA = Path(__file__).resolve().parent.parent / "data" / "controlnet_presets.json"


@dataclass(frozen=True)
class ControlNetPreset:
    name: str
    title: str
    family: str  # the family of the UNet it steers: "sd1", "sd2", "sdxl" or "tiny"
    base_preset: str  # the UNet preset it steers (its reference input is the ControlNet's)
    source: dict[str, str]
    control_params: dict[str, Any]
    config: ControlNetConfig
    num_parameters: int | None  # the reference implementation's exact count (None for our tiny one)

    @property
    def base(self) -> Preset:
        return PRESETS[self.base_preset]

    @property
    def latent_factor(self) -> int:
        return self.base.latent_factor

    @property
    def sample_size(self) -> tuple[int, ...]:
        return self.base.sample_size

    @property
    def context_tokens(self) -> int | None:
        return self.base.context_tokens


def _load() -> dict[str, ControlNetPreset]:
    raw = json.loads(_DATA.read_text())
    return {
        name: ControlNetPreset(
            name=name,
            title=p["title"],
            family=p["family"],
            base_preset=p["base_preset"],
            source=p["source"],
            control_params=p["control_params"],
            config=ControlNetConfig.from_ldm(p["control_params"]),
            num_parameters=p["num_parameters"],
        )
        for name, p in raw.items()
    }


CONTROLNET_PRESETS: dict[str, ControlNetPreset] = _load()


def load_controlnet_preset(name: str) -> ControlNetPreset:
    preset = CONTROLNET_PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ConfigError("preset", f"unknown ControlNet preset {quote(name)}; known: {sorted(CONTROLNET_PRESETS)}")
    return preset


class ControlNetPresetSummary(BaseModel):
    """A ControlNet preset as GET /api/controlnet/presets lists it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the name to ask /api/trace for (`controlnet-sd15`, ...)")
    title: str = Field(description="what the model is, in words")
    family: str = Field(description="the family of the UNet it steers: `sd1`, `sd2`, `sdxl` or `tiny`")
    base_preset: str = Field(description="the UNet preset it steers")
    num_parameters: int | None = Field(description="the reference implementation's exact count (null for ours)")
    hint_channels: int = Field(description="channels of the control image")
    hint_factor: int = Field(description="control image pixels per latent pixel")
    num_injections: int = Field(description="its outputs, each added to a skip or the middle block of the UNet")
    reference_input: dict[str, list[int] | None] = Field(
        description="shapes it is traced with at batch 1: `x`, `hint`, `context`, `y`"
    )
    latent_factor: int = Field(description="image pixels per latent pixel")
    source: dict[str, str] = Field(description="where its parameters come from")
    ldm_params: dict[str, Any] = Field(description="cldm.ControlNet's keyword arguments")


def summary(preset: ControlNetPreset) -> ControlNetPresetSummary:
    config = preset.config
    ref = dict(preset.base.reference_input)
    x = ref["x"]
    assert x is not None
    ref["hint"] = [x[0], config.hint_channels, *(s * config.hint_factor for s in x[2:])]
    return ControlNetPresetSummary(
        name=preset.name,
        title=preset.title,
        family=preset.family,
        base_preset=preset.base_preset,
        num_parameters=preset.num_parameters,
        hint_channels=config.hint_channels,
        hint_factor=config.hint_factor,
        num_injections=config.num_injections,
        reference_input=ref,
        latent_factor=preset.latent_factor,
        source=preset.source,
        ldm_params=config.to_ldm(),
    )
