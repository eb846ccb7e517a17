"""The named models: every released SD / LDM UNet we know, plus a tiny teaching model.

Each preset is the original yaml's `unet_config.params` taken verbatim (see `data/presets.json`), with the
exact parameter count of the original model and the input it is traced with by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, UNetConfig

_DATA = Path(__file__).parent / "data" / "presets.json"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    family: str  # "ldm", "sd1", "sd2", "sdxl" or "tiny"
    source: dict[str, str]  # the repository and yaml the parameters come from
    ldm_params: dict[str, Any]
    config: UNetConfig
    num_parameters: int | None  # the original model's exact count (None for our own tiny model)
    latent_factor: int  # image pixels per latent pixel
    # Shapes of the reference input at batch 1: x [1, C, H, W], context [1, tokens, width], y.
    reference_input: dict[str, list[int] | None]

    @property
    def sample_size(self) -> tuple[int, ...]:
        return tuple(self.reference_input["x"][2:])  # type: ignore[index]

    @property
    def context_tokens(self) -> int | None:
        ctx = self.reference_input.get("context")
        return ctx[1] if ctx else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "family": self.family,
            "num_parameters": self.num_parameters,
            "reference_input": self.reference_input,
            "latent_factor": self.latent_factor,
        }


def _load() -> dict[str, Preset]:
    raw = json.loads(_DATA.read_text())
    return {
        name: Preset(
            name=name,
            title=p["title"],
            family=p["family"],
            source=p["source"],
            ldm_params=p["unet_params"],
            config=UNetConfig.from_ldm(p["unet_params"]),
            num_parameters=p["num_parameters"],
            latent_factor=p["latent_factor"],
            reference_input=p["reference_input"],
        )
        for name, p in raw.items()
    }


PRESETS: dict[str, Preset] = _load()


def load_preset(name: str) -> UNetConfig:
    """The config of a named preset; an unknown name is a ConfigError naming the known ones."""
    try:
        return PRESETS[name].config
    except KeyError:
        raise ConfigError("preset", f"unknown preset {name!r}; known: {sorted(PRESETS)}") from None
