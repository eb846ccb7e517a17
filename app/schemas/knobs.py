"""Request and response bodies of /api/ablation (the sweep that removes each block or skip in turn) and of
/api/interventions (knobs on the server's checkpoint, a job)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


class AblationRequest(BaseModel):
    """Each top-level block (or each skip) of the twin's U removed in turn, over captions and seeds."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompts: list[str] = Field(
        ["a large red circle at the top left on a black background"],
        min_length=1,
        max_length=8,
        description="captions in the twin's words; every caption runs with every seed",
    )
    seeds: list[Seed] = Field([0, 1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=32, description="noise seeds")
    steps: int = Field(20, ge=1, le=100, description="DDIM steps per picture")
    guidance: float = Field(3.0, ge=0, le=20, description="classifier-free guidance scale")
    what: Literal["blocks", "skips"] = Field("blocks", description="ablate blocks (output x0) or skips (zeros)")


class Effect(BaseModel):
    target: str = Field(description="the block removed (or the output block whose skip was cut)")
    ssim_drop: float = Field(description="mean 1 - SSIM against the baseline")
    mse: float = Field(description="mean squared error against the baseline, pixel values 0..1")
    verdict_change: float = Field(description="share of pictures whose reading changed")


class AblationResult(BaseModel):
    what: str
    pictures: int
    steps: int
    effects: list[Effect]
    ranking: list[str] = Field(description="targets by SSIM drop, largest first")


class AblationJob(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    progress: dict[str, Any] = Field(description="{done, total}: the baseline, then one per target")
    error: str | None = None
    result: AblationResult | None = None


class InterventionRequest(BaseModel):
    """One caption and seed on the server's checkpoint, without and with the knobs (POST /api/generate's
    `interventions`, in CLIP's words)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: Literal["checkpoint"] = Field("checkpoint", description="the server's checkpoint (--weights FILE)")
    prompt: str = Field("a photograph of an astronaut riding a horse", max_length=2000)
    negative: str = Field("", max_length=2000, description="the caption guidance moves away from")
    seed: Seed = 0
    steps: int = Field(20, ge=1, le=50, description="DDIM steps (a step is seconds of CPU on a real checkpoint)")
    guidance: float = Field(7.5, ge=0, le=20, description="classifier-free guidance scale")
    image_size: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        [256, 256], min_length=2, max_length=2, description="[height, width] in pixels, multiples of 8"
    )
    interventions: list[dict[str, Any]] = Field(min_length=1, max_length=8, description="as /api/generate's")


class InterventionResult(BaseModel):
    interventions: list[dict[str, Any]] = Field(description="the knobs as checked")
    image: str = Field(description="the picture with the knobs (PNG data URL)")
    baseline: str = Field(description="the same seed without the knobs (PNG data URL)")
    difference: str = Field(description="|knobs - baseline| per channel, doubled (PNG data URL)")
    mse: float = Field(description="mean squared error, pixel values 0..1")
    ssim: float = Field(description="structural similarity (Wang et al. 2004, 11x11 Gaussian window); 1: identical")
    same_reading: None = Field(description="always null: the attribute reader reads only the twin's world")
    verdict: None = Field(description="always null (see verdict_reason)")
    verdict_reason: str
    batched: bool = Field(description="baseline and knob run in one batch (every knob but the cache)")
    unet_calls: dict[str, int] = Field(description="UNet calls of the baseline's and the knob run's loops; full and "
                                       "shallow calls of the knob run (a cache knob)")  # fmt: skip
    image_size: list[int]
    steps: int
    sampler: str
    prediction: str
    timings: dict[str, float]


class InterventionJob(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: dict[str, Any] = Field(description="{phase, done, total}: steps run of all (two loops with a cache)")
    error: str | None = None
    result: InterventionResult | None = None
