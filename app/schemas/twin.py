"""Request and response bodies of /api/twin and /api/generate: every field typed for /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdunet_core.twin.sampling import DEFAULT_GUIDANCE, DEFAULT_STEPS

StepTensor = Literal["x_t", "eps", "x0"]


class GenerateRequest(BaseModel):
    """One picture from the twin, with the denoising loop's steps."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field("", max_length=400, description="a caption in the twin's words (GET /api/twin lists them)")
    negative: str = Field("", max_length=400, description="the caption guidance moves away from (default empty)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the starting noise")
    steps: int = Field(DEFAULT_STEPS, ge=1, le=200, description="sampling steps")
    guidance: float = Field(
        DEFAULT_GUIDANCE, ge=0, le=20, description="classifier-free guidance scale (1: the caption alone)"
    )
    sampler: Literal["ddim", "euler"] = Field("ddim", description="diffusers' DDIMScheduler or EulerDiscreteScheduler")
    return_: list[StepTensor] = Field(
        ["x_t", "eps", "x0"], alias="return", max_length=3, description="which per-step tensors to return"
    )
    arrays: bool = Field(False, description="also return the per-step tensors as float32 arrays (base64)")
    interventions: list[dict[str, Any]] = Field(
        [],
        max_length=8,
        description="knobs on the running UNet, each {kind, from_step?, to_step?, ...}: scale {blocks, weight}, "
        "cut_skip {blocks, mode}, token_weight {word, weight}, swap_prompt {prompt}, cache {every}, guidance "
        "{scale}, negative {prompt}; with any, `image` is the knob run and `experiment` holds the baseline",
    )


class StepOut(BaseModel):
    index: int = Field(description="0 for the first (noisiest) step")
    t: int = Field(description="the timestep of SD's 1000-step schedule the UNet is called at")
    x_t: str | None = Field(None, description="the noisy picture the step starts from (PNG data URL)")
    eps: str | None = Field(None, description="the guided predicted noise ε̂, -3..3 as 0..255 (PNG data URL)")
    x0: str | None = Field(None, description="the predicted clean picture x̂₀ (PNG data URL)")
    arrays: dict[str, str] | None = Field(None, description="float32 [3, 32, 32] little-endian, base64, by tensor")


class SeenObject(BaseModel):
    colour: str
    shape: str
    size: str
    position: str


class Reading(BaseModel):
    """What the attribute reader sees in the picture (from its pixels alone)."""

    ground: str
    objects: list[SeenObject]
    text: str = Field(description="the reading in words")


class Experiment(BaseModel):
    """The same seed without the knobs, and what changed (POST /api/generate with `interventions`)."""

    interventions: list[dict[str, Any]] = Field(description="the knobs as checked (block factors, token positions)")
    baseline: str = Field(description="the picture without the knobs (PNG data URL)")
    baseline_reading: Reading
    baseline_unet_calls: int = Field(description="UNet calls of the baseline's loop")
    batched: bool = Field(
        description="the baseline rode in the knob run's batch, one UNet call a step for both; false for the "
        "twin, whose baseline runs beside the knob run on a second thread"
    )
    difference: str = Field(description="|knobs - baseline| per channel, doubled (PNG data URL)")
    mse: float = Field(description="mean squared error, pixel values 0..1")
    ssim: float = Field(description="structural similarity (Wang et al. 2004, 11x11 Gaussian window); 1: identical")
    same_reading: bool = Field(description="whether the reader sees the same ground and objects in both")
    macs: dict[str, Any] | None = Field(None, description="with a cache knob: UNet MACs spent and saved (trace)")


class GenerateResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    prompt: str
    negative: str
    seed: int
    steps: int
    guidance: float
    sampler: str
    tokens: list[str] = Field(description="the 16 tokens the text encoder reads (padding included)")
    image: str = Field(description="the picture, 32x32 (PNG data URL)")
    reading: Reading
    unet_calls: int = Field(description="UNet evaluations (one batch of two per step with guidance, else one)")
    per_step: list[StepOut]
    timings: dict[str, float]
    experiment: Experiment | None = Field(None, description="with interventions: the baseline and the change")


class TwinInfo(BaseModel):
    preset: str
    image_size: list[int]
    context_tokens: int
    vocabulary: dict[str, list[str]] = Field(description="the words by role")
    examples: dict[str, list[str]] = Field(description="captions with one object and with two")
    samplers: list[str]
    defaults: dict[str, Any]
    training: dict[str, Any] = Field(description="the training record shipped with the weights")
    loaded: bool = Field(
        description="the generation process holds the twin now: a first picture costs only its steps "
        "(the server loads it in the background at start; SDUNET_WARM_TWIN=0 turns that off)"
    )
