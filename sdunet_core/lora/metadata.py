"""What a LoRA file's safetensors metadata says: the training network, its base model, and each module's alpha.

kohya-ss/sd-scripts writes `ss_network_module`, `ss_network_dim`, `ss_network_alpha`, `ss_network_args` (JSON of
the `--network_args`: `conv_dim`, `conv_alpha`, `algo` for LyCORIS, `block_alphas`, ...), `ss_base_model_version`
(`sd_v1`, `sd_v2`, `sd_v2_v`, `sdxl_base_v1-0`; `train_network.py`, `library/model_util.py`) and the SAI model
spec's `modelspec.architecture` (`stable-diffusion-v1/lora`, `stable-diffusion-v2-512/lora`,
`stable-diffusion-v2-768-v/lora`, `stable-diffusion-xl-v1-base/lora`; `library/sai_model_spec.py`).

A module's alpha is a scalar tensor in the file's data, not in the header. Without its value, kohya's own rules
give it: `network_alpha` for Linear and 1x1 convs, `conv_alpha` for the larger convs, or the per-slot
`block_alphas` / `conv_block_alphas` (`networks/lora.py`, `create_modules`). A resized file says "Dynamic": then
the alpha is unknown until its value is read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Literal

from ..checkpoint.header import printable

Family = Literal["sd1", "sd2", "sdxl"]
AlphaSource = Literal["tensor", "metadata", "none", "unknown"]

# Metadata is echoed back cut to this many entries of this length (a training log can be megabytes).
METADATA_CHARS = 200
METADATA_ENTRIES = 64


@dataclass(frozen=True)
class Network:
    """The training network the metadata describes (every field None when the file does not say)."""

    module: str | None = None
    dim: float | None = None
    alpha: float | None = None
    conv_dim: float | None = None
    conv_alpha: float | None = None
    algo: str | None = None
    block_alphas: tuple[float, ...] | None = None
    conv_block_alphas: tuple[float, ...] | None = None
    base_model_version: str | None = None
    architecture: str | None = None
    args: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "module": self.module,
            "dim": self.dim,
            "alpha": self.alpha,
            "conv_dim": self.conv_dim,
            "conv_alpha": self.conv_alpha,
            "algo": self.algo,
            "base_model_version": self.base_model_version,
            "architecture": self.architecture,
            "args": self.args,
        }


def _number(value: object) -> float | None:
    try:
        x = float(str(value))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _numbers(value: object) -> tuple[float, ...] | None:
    parts = [_number(v) for v in str(value).split(",")]
    return None if not parts or any(p is None for p in parts) else tuple(p for p in parts if p is not None)


def read_network(metadata: dict[str, str]) -> Network:
    args: dict[str, str] = {}
    raw = metadata.get("ss_network_args")
    if raw:
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            # The arguments are JSON inside a string: a lone surrogate escaped in them comes out only here.
            args = {
                printable(str(k)[:METADATA_CHARS]): printable(str(v)[:METADATA_CHARS])
                for k, v in list(parsed.items())[:64]
            }
    block_alphas = _numbers(args["block_alphas"]) if "block_alphas" in args else None
    conv_block_alphas = _numbers(args["conv_block_alphas"]) if "conv_block_alphas" in args else None
    return Network(
        module=metadata.get("ss_network_module"),
        dim=_number(metadata.get("ss_network_dim")),
        alpha=_number(metadata.get("ss_network_alpha")),
        conv_dim=_number(args.get("conv_dim")),
        conv_alpha=_number(args.get("conv_alpha")),
        algo=args.get("algo"),
        block_alphas=block_alphas,
        conv_block_alphas=conv_block_alphas,
        base_model_version=metadata.get("ss_base_model_version"),
        architecture=metadata.get("modelspec.architecture"),
        args=args,
    )


def family_hint(metadata: dict[str, str]) -> tuple[Family | None, str | None]:
    """The base family the metadata names, and which key said it."""
    version = (metadata.get("ss_base_model_version") or "").lower()
    arch = (metadata.get("modelspec.architecture") or "").lower()
    if version.startswith("sdxl") or arch.startswith("stable-diffusion-xl"):
        return "sdxl", "ss_base_model_version" if version.startswith("sdxl") else "modelspec.architecture"
    if version.startswith("sd_v2") or arch.startswith("stable-diffusion-v2"):
        return "sd2", "ss_base_model_version" if version.startswith("sd_v2") else "modelspec.architecture"
    if version.startswith("sd_v1") or arch.startswith("stable-diffusion-v1"):
        return "sd1", "ss_base_model_version" if version.startswith("sd_v1") else "modelspec.architecture"
    if metadata.get("ss_v2", "").lower() == "true":
        return "sd2", "ss_v2"
    return None, None


def v_parameterization(metadata: dict[str, str]) -> bool:
    """An SD 2.x v-model (trained at 768 px): `sd_v2_v` or `stable-diffusion-v2-768-v`."""
    version = (metadata.get("ss_base_model_version") or "").lower()
    return version.endswith("_v") or "768-v" in (metadata.get("modelspec.architecture") or "").lower()


def module_alpha(
    network: Network, *, has_alpha: bool, value: float | None, large_conv: bool, slot: int | None
) -> tuple[float | None, AlphaSource]:
    """A module's alpha and where it comes from: its tensor's value, kohya's rules over the metadata, or none."""
    if not has_alpha:
        return None, "none"
    if value is not None:
        return value, "tensor"
    per_slot = network.conv_block_alphas if large_conv else network.block_alphas
    if per_slot is not None:
        if slot is not None and slot < len(per_slot):
            return per_slot[slot], "metadata"
        return None, "unknown"
    alpha = network.conv_alpha if large_conv else network.alpha
    if large_conv and alpha is None and network.conv_dim is not None and network.module == "networks.lora":
        alpha = 1.0  # kohya's default conv_alpha when conv_dim is given without one
    return (alpha, "metadata") if alpha is not None else (None, "unknown")


def echo_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The metadata to show: training keys first, each entry cut to a readable length, at most 64 of them."""
    ordered = sorted(metadata.items(), key=lambda kv: not kv[0].startswith(("ss_network", "ss_base", "modelspec.")))
    return {k[:METADATA_CHARS]: v[:METADATA_CHARS] for k, v in ordered[:METADATA_ENTRIES]}
