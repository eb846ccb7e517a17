"""Bodies of POST /api/names and /api/names/block-weights: typed, so that /openapi.json describes every field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.schemas.trace import TraceRequest
from sdunet_core.names.block_weights import MAX_SPEC_CHARS

Layout = Literal["sd1", "sdxl"]


class Labels(BaseModel):
    """One place's name in every scheme (null where the scheme has none for it)."""

    original: str = Field(description="the original module path (input_blocks.4.1)")
    diffusers: str | None = Field(description="UNet2DConditionModel's path; a block may be several, comma-separated")
    lora_diffusers: str | None = Field(description="LoRA key stem in diffusers spelling (kohya's SD 1.x/2.x files)")
    lora_original: str = Field(description="LoRA key stem in the original spelling (kohya's SDXL files)")
    block_id: str | None = Field(description="LoRA block-weight ID: IN04, M00, OUT05")
    merge: str | None = Field(description="merge block weight: IN00…OUT11, or BASE for the base alpha")
    kohya: str | None = Field(description="kohya sd-scripts' block index (a slot number, or a span)")


class BlockNames(BaseModel):
    path: str
    stage: Literal["embed", "down", "mid", "up", "out"]
    level: int | None
    category: str = Field(description="what the block is (a top-level node category of the trace)")
    attention: bool = Field(description="the block holds attention (the blocks a plain LoRA touches)")
    labels: Labels


class ModuleNames(BaseModel):
    path: str
    block: str = Field(description="the top-level block it belongs to")
    class_name: str
    kind: Literal["linear", "conv", "norm", "embedding", "container"]
    kohya_target: Literal["lora", "locon"] | None = Field(
        description="kohya's plain LoRA trains it (attention layers), or only LoCon (conv_dim; ResBlocks, resamplers)"
    )
    labels: Labels


class Scheme(BaseModel):
    key: Literal["original", "diffusers", "lora_diffusers", "lora_original", "block_id", "merge", "kohya"]
    title: str
    description: str
    available: bool
    reason: str | None = Field(description="why the scheme has no names for this model")


class IdList(BaseModel):
    name: str = Field(description="the list's length as the block-weight tool names it: 17, 26, 12, 20")
    title: str
    ids: list[str]


class KohyaSlot(BaseModel):
    index: int
    covers: list[str] = Field(description="the top-level blocks (or SDXL middle-block parts) in this slot")
    note: str | None


class KohyaOption(BaseModel):
    length: int = Field(description="how many values the network_arg takes")
    slots: list[int] = Field(description="the slots its values fill, in order")


class Kohya(BaseModel):
    spelling: Literal["diffusers", "original"] = Field(description="the LoRA key spelling kohya writes here")
    slots: list[KohyaSlot]
    options: dict[str, KohyaOption]


class WeightPreset(BaseModel):
    name: str
    values: list[float] = Field(description="17 values over the 17-ID list")
    source: str = Field(description="a key of `sources`")


class NamesTable(BaseModel):
    layout: Layout | None = Field(description="the community layout the model has, if any")
    layout_title: str | None
    schemes: list[Scheme]
    ids: list[str] = Field(description="BASE and every block's ID, in the tools' order")
    id_lists: list[IdList]
    kohya: Kohya | None
    presets: list[WeightPreset]
    sources: dict[str, str]
    blocks: list[BlockNames]
    modules: list[ModuleNames]


class BlockWeightsRequest(TraceRequest):
    spec: str = Field(
        max_length=MAX_SPEC_CHARS,
        description="a preset (ALL, INS, MIDD, ...), IDs and ranges (IN05,OUT05 / IN04-OUT05 / NOT ...) or a vector",
    )


class BlockWeight(BaseModel):
    path: str
    id: str | None
    weight: float | None = Field(description="null: this spec does not set it (the merge vector's base alpha)")


class BlockWeights(BaseModel):
    spec: str
    kind: Literal["preset", "vector", "ids"]
    scheme: Literal["lora_block_weight", "merge"]
    id_list: str | None = Field(description="the ID list a vector or preset was read against")
    text_encoder: float | None = Field(description="BASE's weight")
    ids: dict[str, float | None]
    blocks: list[BlockWeight]
    untouched: list[str] = Field(description="blocks no ID names: the tool leaves them at 1")
    ignored: list[str] = Field(description="IDs the spec sets that this model does not have")
    accepted_lengths: list[int]
    notes: list[str]
