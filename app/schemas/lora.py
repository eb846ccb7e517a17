"""The body of POST /api/lora/detect: typed, so that /openapi.json describes every field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Algo = Literal["lora", "loha", "lokr", "full", "norm"]
AlphaSource = Literal["tensor", "metadata", "none", "unknown"]


class LoraModuleOut(BaseModel):
    path: str = Field(description="our (the original) module path")
    diffusers: str | None = Field(description="UNet2DConditionModel's path")
    lora_key: str = Field(description="the stem the file names the module by")
    spelling: Literal["original", "diffusers"] = Field(description="which naming the file's stem uses")
    kind: Literal["linear", "conv", "norm", "embedding", "container"]
    algo: Algo
    rank: int | None = Field(description="null for full weights and whole LoKr factors")
    alpha: float | None = Field(description="null when unknown from the header (see alpha_source)")
    alpha_source: AlphaSource = Field(
        description="tensor: read from the file; metadata: kohya's rule over ss_network_alpha; none: the file has "
        "no alpha (scale 1); unknown: only in the tensor data"
    )
    scale: float | None = Field(description="alpha / rank, what the delta is multiplied by")
    params: int = Field(description="parameters the module adds (every tensor but alpha)")
    block: str = Field(description="the top-level block")
    block_id: str | None = Field(description="the block-weight ID: IN04, M00, OUT05")
    kohya_slot: int | None
    kohya_target: Literal["lora", "locon"] | None
    tucker: bool = Field(description="a CP / Tucker core (lora_mid, hada_t1, lokr_t2)")
    dora: bool = Field(description="DoRA's dora_scale")
    flops: int | None = Field(description="FLOPs the unmerged module adds to one forward")


class TextEncoderModuleOut(BaseModel):
    lora_key: str
    encoder: str | None = Field(description="lora_te, lora_te1, lora_te2, text_encoder or text_encoder_2")
    algo: Algo
    rank: int | None
    alpha: float | None
    alpha_source: AlphaSource
    scale: float | None
    params: int


class TextEncoderPart(BaseModel):
    name: str
    modules: int
    params: int
    width: int | None = Field(description="hidden width, the narrowest side of its modules")
    model: str | None = Field(description="the text encoder of that width")


class TextEncoderOut(BaseModel):
    params: int
    encoders: list[TextEncoderPart]
    modules: list[TextEncoderModuleOut]


class Unmatched(BaseModel):
    key: str
    reason: str


class UnetBlock(BaseModel):
    path: str
    id: str | None
    modules: int
    params: int
    rank_min: int | None
    rank_max: int | None
    flops: int | None


class NetworkOut(BaseModel):
    module: str | None = Field(description="ss_network_module")
    dim: float | None = Field(description="ss_network_dim")
    alpha: float | None = Field(description="ss_network_alpha")
    conv_dim: float | None
    conv_alpha: float | None
    algo: str | None = Field(description="the LyCORIS algorithm of ss_network_args")
    base_model_version: str | None = Field(description="ss_base_model_version")
    architecture: str | None = Field(description="modelspec.architecture")
    args: dict[str, str] = Field(description="ss_network_args")


class FlopsInfo(BaseModel):
    preset: str | None
    image_size: list[int] | None
    sample_size: list[int]
    batch: int
    counted: str


class LoraDetection(BaseModel):
    format: Literal["lora", "locon", "loha", "lokr", "full", "norm", "peft", "diffusers-attn-procs", "diffusers-lora"]
    format_title: str
    key_style: Literal["kohya", "diffusers", "mixed"]
    spelling: Literal["original", "diffusers", "mixed"] | None
    family: Literal["sd1", "sd2", "sdxl"] | None = Field(description="null when a preset of another family was given")
    family_title: str | None
    family_evidence: list[str]
    preset: str = Field(description="the model the modules were matched against and traced")
    layout: Literal["sd1", "sdxl"] | None
    metadata: dict[str, str]
    network: NetworkOut
    algos: dict[str, int] = Field(description="modules per algorithm")
    modules: list[LoraModuleOut]
    text_encoder: TextEncoderOut
    unmatched: list[Unmatched] = Field(description="tensors that patch no module, with the reason")
    blocks: dict[str, int] = Field(description="parameters added per block-weight ID (BASE: the text encoders)")
    block_ids: list[str] = Field(description="the IDs it touches")
    id_list: str | None = Field(description="the smallest ID list (vector length) that names every touched ID")
    unet_blocks: list[UnetBlock] = Field(description="every top-level block with what the LoRA adds there")
    ranks: dict[str, int] = Field(description="UNet modules per rank")
    rank_min: int | None
    rank_max: int | None
    unet_params: int
    text_encoder_params: int
    params_added: int
    flops_added: int | None = Field(description="FLOPs the unmerged UNet modules add to one forward")
    flops: FlopsInfo | None
    notes: list[str]
