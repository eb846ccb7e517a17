"""Request and response bodies of /api/activations: every field typed, so /openapi.json describes them all."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.trace import Size

MAX_POINTS = 1024
# A base64 image of up to 16 MiB (the request body limit is larger).
MAX_IMAGE_CHARS = 16 * 2**20 * 4 // 3 + 64


class ModelChoice(BaseModel):
    """Which UNet (a preset, our config fields, the original yaml params, or the server's weights) and input size."""

    # The same strictness and bounds as /api/trace's body (app.schemas.trace), whose fields these are.
    model_config = ConfigDict(extra="forbid", strict=True)

    preset: str | None = Field(None, max_length=64, description="a preset name from /api/presets (random weights)")
    config: dict[str, Any] | None = Field(None, description="a UNetConfig in our field names (random weights)")
    ldm_params: dict[str, Any] | None = Field(None, description="the original yaml's unet_config.params")
    use_weights: bool = Field(False, description="the checkpoint the server was started with (serve --weights)")
    image_size: list[Size] | None = Field(None, min_length=1, max_length=3, description="image size in pixels [H, W]")
    sample_size: list[Size] | None = Field(None, min_length=1, max_length=3, description="latent size [H, W]")


class CatalogRequest(ModelChoice):
    pass


class GenerationStep(BaseModel):
    """A step of a twin generation (POST /api/generate's fields): the capture sees that step's x_t at its t."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int = Field(50, ge=1, le=200)
    guidance: float = Field(3.0, ge=0, le=20)
    sampler: Literal["ddim", "euler"] = "ddim"
    negative: str = Field("", max_length=400)
    step: int = Field(0, ge=0, le=199, description="0 for the first (noisiest) step")


class CaptureRequest(ModelChoice):
    """One forward captured: the input (an image or a seeded noise latent), the timestep, the prompt, the points."""

    image: str | None = Field(
        None,
        max_length=MAX_IMAGE_CHARS,
        description="a PNG, JPEG, WebP, BMP or GIF (its first frame) image, base64 or a data: URL; none: noise",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the noise (and of the random context)")
    prompt: str = Field("", max_length=4000, description="the text prompt (at most 77 CLIP tokens)")
    timestep: int = Field(261, ge=0, le=999, description="DDPM timestep, 0 (clean) to 999 (pure noise)")
    compare_timestep: int | None = Field(
        None, ge=0, le=999, description="a second timestep: each point's cosine similarity between the two"
    )
    points: list[str] = Field(
        ["@outputs"],
        max_length=MAX_POINTS,
        description="catalog names, or the groups @outputs, @cross-maps, @recommended, @all",
    )
    encoding: Literal["png", "array"] = Field("png", description="images as base64 PNG or as float arrays")
    generation: GenerationStep | None = Field(
        None, description="the twin only: capture at a step of this generation (its x_t and t) instead of `image`"
    )


class ExportRequest(CaptureRequest):
    """Full tensors of chosen points for one or more images, as a .safetensors file."""

    points: list[str] = Field([], max_length=MAX_POINTS, description="not used by export")
    export: list[str] = Field(..., min_length=1, max_length=MAX_POINTS, description="the points to write")
    images: list[str] | None = Field(
        None, max_length=16, description="several images (base64 or data: URLs), stacked on the first axis"
    )


# ---- responses ------------------------------------------------------------------------------------------------
class PointInfo(BaseModel):
    name: str
    kind: str
    description: str
    stage: Literal["in", "down", "mid", "up", "out"]
    level: int | None = Field(description="down: 0 = full resolution; up: 0 = lowest resolution (diffusers order)")
    repeat: int | None
    transformer_block: int | None
    block_path: str = Field(description="the top-level block: input_blocks.N, middle_block, output_blocks.N, out")
    module: str = Field(description="the module read (its output; for maps, the attention whose q and k are used)")
    source: Literal["input", "output", "attention-map"]
    layout: Literal["BCHW", "BNC", "BTC", "BHNM"]
    shape: list[int]
    factor: int = Field(description="latent pixels per pixel of this point")
    block_output: bool
    spatial: bool
    used_by: list[str]


class ModelInfo(BaseModel):
    preset: str | None
    config: dict[str, Any]
    weights: str | None = Field(description="the checkpoint's file name, null with random weights")


class CatalogResponse(BaseModel):
    model: ModelInfo
    sample_size: list[int]
    image_size: list[int]
    context_tokens: int | None
    count: int
    groups: dict[str, list[str]]
    points: list[PointInfo]


class Histogram(BaseModel):
    edges: list[float]
    counts: list[int]


class Stats(BaseModel):
    count: int
    mean: float
    std: float
    min: float
    max: float
    histogram: Histogram


class Image(BaseModel):
    height: int
    width: int
    channels: int
    encoding: Literal["png", "array"]
    png: str | None = Field(description="base64 PNG (encoding png)")
    values: list[float] | None = Field(description="row-major [height, width, channels] (encoding array)")


class PreviewImage(Image):
    kind: Literal["pca-rgb", "heat"]
    explained_variance: list[float] | None = Field(description="share of the variance of each principal component")
    scale: float | None = Field(description="heat: the value that 1.0 (or 255) stands for")


class Activation(BaseModel):
    name: str
    kind: str
    module: str
    shape: list[int]
    layout: str
    stats: Stats | None
    preview: PreviewImage | None
    cosine_to_compare: float | None


class Token(BaseModel):
    index: int = Field(description="position in the 77 context tokens; -1 for the padding entry")
    id: int
    text: str


class HeatMap(Image):
    max: float = Field(description="the largest value; a PNG's 255 stands for it")


class HeatMapSet(BaseModel):
    name: str
    layers: list[str]
    height: int
    width: int
    maps: list[HeatMap] = Field(description="one per token entry, in the order of heatmaps.tokens")


class HeatMaps(BaseModel):
    tokens: list[Token]
    normalisation: str
    layers: list[HeatMapSet]
    resolutions: list[HeatMapSet]
    overall: HeatMapSet | None


class CaptureInputs(BaseModel):
    timestep: int
    compare_timestep: int | None
    seed: int
    prompt: str
    image_size: list[int]
    sample_size: list[int]
    latent_source: Literal["vae", "stand-in", "noise", "pixels", "generation"] = Field(
        description="how the UNet's input was made: the VAE's latent of the image, a stand-in latent (no VAE), seeded "
        "noise, the image's own pixels (the twin, in pixel space), or the x_t of a twin generation's step"
    )
    context_source: Literal["text encoder", "noise", "none"]


class Timings(BaseModel):
    prepare_ms: float
    forward_ms: float = Field(description="the first forward, hooks and their reductions included")
    reduce_ms: float = Field(description="the part of forward_ms spent reducing activations in the hooks")
    total_ms: float


class CaptureResponse(BaseModel):
    random_weights: bool
    notice: str | None = Field(description="with random weights: what the pictures do and do not show")
    model: ModelInfo
    inputs: CaptureInputs
    tokens: list[Token]
    activations: list[Activation]
    heatmaps: HeatMaps | None
    timings: Timings
