"""The named models: every released SD / LDM UNet we know, plus a tiny teaching model.

Each released model is the original yaml's `unet_config.params` taken verbatim (see `data/presets.json`), with the
exact parameter count of the original model and the input it is traced with by default. The distilled and pruned
variants (BK-SDM, SSD-1B, Segmind Vega) are published as diffusers models only: their preset is the diffusers
`unet/config.json` (`diffusers_config`, read by `diffusers_config.config_from_diffusers`) and names the preset it
was made from (`variant_of`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError, quote
from .model.config import UNetConfig
from .model.diffusers_config import config_from_diffusers
from .schema import UNetConfigModel

_DATA = Path(__file__).parent / "data" / "presets.json"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    family: str  # "ldm", "sd1", "sd2", "sdxl", "tiny" or "twin"
    source: dict[str, str]  # the repository and yaml the parameters come from
    ldm_params: dict[str, Any] | None  # None for a variant the original code cannot build (see UNetConfig.to_ldm)
    config: UNetConfig
    num_parameters: int | None  # the original model's exact count (None for our own tiny model)
    latent_factor: int  # image pixels per latent pixel
    # Shapes of the reference input at batch 1: x [1, C, H, W], context [1, tokens, width], y.
    reference_input: dict[str, list[int] | None]
    # The released preset a distilled or pruned variant was made from (None for the released models).
    variant_of: str | None = None
    # The diffusers UNet2DConditionModel config a variant is defined by.
    diffusers_config: dict[str, Any] | None = None

    @property
    def sample_size(self) -> tuple[int, ...]:
        return tuple(self.reference_input["x"][2:])  # type: ignore[index]

    @property
    def context_tokens(self) -> int | None:
        ctx = self.reference_input.get("context")
        return ctx[1] if ctx else None

    def summary(self) -> PresetSummary:
        return PresetSummary(
            name=self.name,
            title=self.title,
            family=self.family,
            num_parameters=self.num_parameters,
            reference_input=self.reference_input,
            latent_factor=self.latent_factor,
            variant_of=self.variant_of,
        )

    def detail(self) -> PresetDetail:
        return PresetDetail(
            **self.summary().model_dump(),
            source=self.source,
            config=self.config.to_dict(),
            ldm_params=self.config.to_ldm_or_none(),
            diffusers_config=self.diffusers_config,
        )


class PresetSummary(BaseModel):
    """A preset as /api/presets lists it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the name to ask for (`sd1`, `sdxl-base`, ...)")
    title: str = Field(description="what the model is, in words")
    family: str = Field(description="`ldm`, `sd1`, `sd2`, `sdxl`, `tiny` or `twin`")
    num_parameters: int | None = Field(description="the original model's exact parameter count (null for ours)")
    reference_input: dict[str, list[int] | None] = Field(
        description="shapes of the input it is traced with at batch 1: `x`, `context`, `y`"
    )
    latent_factor: int = Field(description="image pixels per latent pixel")
    variant_of: str | None = Field(
        description="for a distilled or pruned variant (BK-SDM, SSD-1B, Segmind Vega): the preset it was made from"
    )


class PresetDetail(PresetSummary):
    """One preset with where it comes from and its whole config."""

    source: dict[str, str] = Field(description="the repository and file (yaml or config.json) it comes from")
    config: UNetConfigModel = Field(description="the UNetConfig in our field names (as the trace's `config`)")  # type: ignore[valid-type]
    ldm_params: dict[str, Any] | None = Field(
        description="the original constructor's keywords; null where the original cannot build it (a variant)"
    )
    diffusers_config: dict[str, Any] | None = Field(
        description="a variant's diffusers UNet2DConditionModel config, which defines it (null for the others)"
    )


def _preset(name: str, p: dict[str, Any]) -> Preset:
    # A released model by its yaml, a variant by its diffusers config.
    if "diffusers_config" in p:
        config = config_from_diffusers(p["diffusers_config"])
    else:
        config = UNetConfig.from_ldm(p["unet_params"])
    return Preset(
        name=name,
        title=p["title"],
        family=p["family"],
        source=p["source"],
        ldm_params=p.get("unet_params") or config.to_ldm_or_none(),
        config=config,
        num_parameters=p["num_parameters"],
        latent_factor=p["latent_factor"],
        reference_input=p["reference_input"],
        variant_of=p.get("variant_of"),
        diffusers_config=p.get("diffusers_config"),
    )


def _load() -> dict[str, Preset]:
    return {name: _preset(name, p) for name, p in json.loads(_DATA.read_text()).items()}


PRESETS: dict[str, Preset] = _load()


def load_preset(name: str) -> Preset:
    """A named preset (its `.config` is the UNetConfig); an unknown name is a ConfigError naming the known ones.

    The Preset, not only its config, goes on to `trace_unet`: two presets can share one network (sd2 and sd2-v) but
    not their reference input, and the trace is labelled with the name asked for.
    """
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        raise ConfigError("preset", f"unknown preset {quote(name)}; known: {sorted(PRESETS)}")
    return preset
