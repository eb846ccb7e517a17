"""What a control model's file holds, as `detect_control` reports it: `ControlDetectionReport` and its parts.

The models here are what /api/checkpoint/detect serves for a ControlNet, a T2I-Adapter or a control-LoRA (the API's
OpenAPI schema is built from them). `control_report()` fills in what every detector reports alike: the parameters
and bytes of the control model's own tensors, and empty values for the fields only another kind of control model
has. The detectors themselves are `controlnet_detect`, `adapter_detect` and `lora_detect`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..checkpoint.detect import Mismatch
from ..checkpoint.header import TensorInfo
from ..model.plan import top_level_of
from ..schema import UNetConfigModel

ControlKind = Literal["controlnet", "t2i_adapter", "control_lora"]
Layout = Literal["ldm", "diffusers"]
Family = Literal["ldm", "sd1", "sd2", "sdxl", "tiny", "twin"]


class InjectionPoint(BaseModel):
    """Where one output of the control model is added to the UNet it steers."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="its position among the control model's outputs")
    target: str = Field(description="the UNet block whose output it is added to (`input_blocks.4`, `middle_block`)")
    added_to: Literal["skip", "middle", "encoder"] = Field(
        description="`skip`: a ControlNet residual added to the skip the up stage concatenates; `middle`: added to "
        "the middle block's output; `encoder`: a T2I-Adapter feature added to the down stage's running tensor "
        "after that block (which the skip keeps too)"
    )
    factor: int = Field(description="downsample factor relative to the latent")
    image_factor: int = Field(description="downsample factor relative to the image (the latent's times 8)")
    channels: int = Field(description="channels of the tensor added")


class AdapterFacts(BaseModel):
    """A T2I-Adapter's settings, read from its shapes."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["full_adapter", "full_adapter_xl", "light_adapter"] = Field(
        description="diffusers' `adapter_type`: the full adapter (SD 1.x), its SDXL form, or the light one"
    )
    in_channels: int = Field(description="channels of the control image (3 RGB, 1 for sketches and edges)")
    unshuffle_factor: int = Field(description="the pixel-unshuffle that opens the adapter (8, or 16 for SDXL)")
    channels: list[int] = Field(description="widths of its blocks, one feature map each")
    num_res_blocks: int = Field(description="residual blocks per block")


class ControlLoraFacts(BaseModel):
    """A control-LoRA's low-rank part."""

    model_config = ConfigDict(extra="forbid")

    ranks: list[int] = Field(description="the distinct ranks of its up/down pairs")
    lora_modules: int = Field(description="modules given as a low-rank pair (added to the base UNet's weight)")
    full_tensors: int = Field(description="tensors given in full (hint encoder, zero convs, norms, biases, ...)")
    lora_parameters: int = Field(description="parameters in the up/down pairs")


class ControlMismatch(Mismatch):
    # The checkpoint reader's mismatch, against ControlNetModel(config) instead of UNetModel(config); an overridden
    # field keeps its place, so the schema reads key, expected, found as before.
    expected: list[int] = Field(description="its shape in ControlNetModel(config)")


class ControlDetectionReport(BaseModel):
    """What /api/checkpoint/detect says of a ControlNet, T2I-Adapter or control-LoRA file."""

    model_config = ConfigDict(extra="forbid")

    kind: ControlKind = Field(description="`controlnet`, `t2i_adapter` or `control_lora`")
    layout: Layout = Field(description="`ldm`: the original names; `diffusers`: diffusers' names")
    prefix: str = Field(description="what the control model's tensor names start with (`control_model.`, ``, ...)")
    family: Family | None = Field(description="the family of the UNet it steers; null when the shapes cannot tell")
    base_preset: str | None = Field(description="the UNet preset of that family it steers")
    preset: str | None = Field(
        description="ControlNets: the ControlNet preset whose state dict has exactly these shapes"
    )
    exact: bool | None = Field(
        description="ControlNets: loads into ControlNetModel(config) with strict=True once the prefix is dropped"
    )
    config: UNetConfigModel | None = Field(  # type: ignore[valid-type]
        description="ControlNets and control-LoRAs: the UNet whose encoder it copies, in our field names"
    )
    hint_channels: int | None = Field(description="channels of the control image (ControlNets, control-LoRAs)")
    missing: list[str] = Field(description="ControlNets: tensors ControlNetModel(config) has and the file lacks")
    unexpected: list[str] = Field(description="ControlNets: tensors of the file that ControlNetModel(config) lacks")
    mismatched: list[ControlMismatch] = Field(description="ControlNets: tensors of both whose shapes differ")
    adapter: AdapterFacts | None = Field(description="T2I-Adapters: the adapter's settings")
    lora: ControlLoraFacts | None = Field(description="control-LoRAs: the low-rank part")
    injections: list[InjectionPoint] = Field(description="where each of its outputs lands in the UNet")
    num_parameters: int = Field(description="parameters of the control model's tensors in the file")
    bytes_by_part: dict[str, dict[str, int]] = Field(description="top-level part -> dtype -> bytes in the file")
    bytes_by_dtype: dict[str, int] = Field(description="dtype -> bytes of the control model's tensors")
    total_bytes: int = Field(description="bytes of the control model's tensors")
    notes: list[str] = Field(description="what the shapes could not decide, and how it was decided")
    other_keys: dict[str, int] = Field(description="tensors beside the control model, counted by their first name part")
    metadata: dict[str, str] = Field(description="the header's __metadata__, cut to 64 entries of 200 characters")


def control_report(
    kind: ControlKind,
    layout: Layout,
    prefix: str,
    own: dict[str, TensorInfo],
    other: dict[str, int],
    metadata: dict[str, str],
    **fields: Any,
) -> ControlDetectionReport:
    """The report of a control model whose own tensors (without the prefix) are `own`; `fields` are the rest of
    what its detector found, and what it does not give is left empty."""
    parts, dtypes = _sizes(own)
    defaults: dict[str, Any] = {
        "preset": None,
        "exact": None,
        "config": None,
        "hint_channels": None,
        "missing": [],
        "unexpected": [],
        "mismatched": [],
        "adapter": None,
        "lora": None,
        "notes": [],
    }
    return ControlDetectionReport(
        **{
            **defaults,
            "kind": kind,
            "layout": layout,
            "prefix": prefix,
            **fields,
            "other_keys": other,
            "metadata": metadata,
            "num_parameters": sum(i.numel for i in own.values()),
            "bytes_by_part": parts,
            "bytes_by_dtype": dtypes,
            "total_bytes": sum(dtypes.values()),
        }
    )


def other_tensors_note(other: dict[str, int]) -> list[str]:
    """The note that a file holds tensors beside the control model (none when it holds no others)."""
    if not other:
        return []
    return [f"the file holds other tensors too: {', '.join(f'{k} ({n})' for k, n in other.items())}"]


def _sizes(tensors: dict[str, TensorInfo]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """(top-level part -> dtype -> bytes, dtype -> bytes) of the control model's tensors."""
    parts: dict[str, dict[str, int]] = {}
    dtypes: dict[str, int] = defaultdict(int)
    for key, info in tensors.items():
        part = top_level_of(key) or key
        per = parts.setdefault(part, {})
        per[info.dtype] = per.get(info.dtype, 0) + info.nbytes
        dtypes[info.dtype] += info.nbytes
    return parts, dict(dtypes)
