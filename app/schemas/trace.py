"""Request bodies of the API, validated by pydantic in strict mode: unknown fields are refused, no value is
coerced ("2" is not 2, "yes" is not true), every number has a range and every list a length."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Size = Annotated[int, Field(ge=1, le=2**20)]
ControlScale = Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)]


class ControlNetRequest(BaseModel):
    """A ControlNet built on the UNet the request names (its preset, config or ldm_params)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    hint_channels: int = Field(3, ge=1, le=64, description="channels of the control image")
    hint_block_channels: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        [16, 32, 96, 256], min_length=1, max_length=8, description="widths of the hint encoder's stages"
    )


class TraceRequest(BaseModel):
    """Which model (a preset, our config fields, the original yaml params or a diffusers config.json) and which
    input to trace."""

    model_config = ConfigDict(extra="forbid", strict=True)

    preset: str | None = Field(None, max_length=64, description="a preset name from /api/presets")
    config: dict[str, Any] | None = Field(None, description="a UNetConfig in our field names")
    ldm_params: dict[str, Any] | None = Field(None, description="the original yaml's unet_config.params")
    diffusers_config: dict[str, Any] | None = Field(
        None, description="a diffusers UNet2DConditionModel config.json (the block types the family covers)"
    )
    image_size: list[Size] | None = Field(
        None, min_length=1, max_length=3, description="image size in pixels [H, W]; divided by the latent factor"
    )
    sample_size: list[Size] | None = Field(None, min_length=1, max_length=3, description="latent size [H, W]")
    batch: int = Field(1, ge=1, le=2**20, description="batch size")
    context_tokens: int | None = Field(None, ge=1, le=2**20, description="context tokens (77 for CLIP text)")
    controlnet: ControlNetRequest | None = Field(
        None, description="trace a ControlNet that copies this UNet's encoder instead of the UNet itself"
    )
    control_scales: list[ControlScale] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="ControlNets only: one scale per injection (13 for SD 1.x/2.x, 10 for SDXL), "
        "0 to 10; 1.0 each by default",
    )


class ProfileRequest(TraceRequest):
    """A trace with a timed run on a real device."""

    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    repeats: int = Field(3, ge=1, le=50, description="timed forwards (the median is reported)")
    warmup: int = Field(1, ge=0, le=10, description="untimed forwards first")
    use_weights: bool = Field(False, description="run with the weights file the server was started with")
