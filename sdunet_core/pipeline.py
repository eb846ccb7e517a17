"""Where the UNet sits: the sampling pipeline around it, stage by stage, as the trace states it (issue 24).

A text-to-image model is a prompt → a text encoder → the UNet, called once per sampling step (twice with
classifier-free guidance) → the autoencoder's decoder → the picture; the twin works in pixels and has no decoder;
a class-conditional model starts from a class label, an unconditional one from noise alone. Each stage carries one
sentence that says what it does, with the numbers of this trace (the context's width, the latent's shape, the
picture's size), so that the page shows what the server states and restates nothing.

What is not in the UNet's config comes from here, once: which text encoder a released model uses and how many
steps its reference sampler takes by default. Where no source is named the field is null and the page says less.
The disk cache keys traces on SCHEMA_VERSION: a change to what a stage says needs it raised, as a new field does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from .model.config import UNetConfig

if TYPE_CHECKING:  # the schema and the presets import this module's models
    from .presets import Preset
    from .schema import TraceInput

StageId = Literal["prompt", "class_label", "noise", "text_encoder", "class_embedding", "unet", "decoder", "image"]

# The text encoder a released model was trained with, by preset name, then by family. A custom config or a family
# not named here gets "text encoder" and the width its context has.
_TEXT_ENCODERS: dict[str, str] = {
    "sd1": "CLIP ViT-L/14's text encoder",
    "sd2": "OpenCLIP ViT-H/14's text encoder",
    "sdxl": "the pair CLIP ViT-L/14 (768 wide) and OpenCLIP ViT-bigG/14 (1280 wide), side by side,",
    "sdxl-refiner": "OpenCLIP ViT-bigG/14's text encoder",
    "ldm-txt2img": "a text transformer trained with the model",
    "twin": "the twin's own small text encoder (CLIP's kind, trained here)",
}
# Class-conditional models: the context is one learned embedding of an ImageNet class label.
_CLASS_CONDITIONED = frozenset({"ldm-cin256", "ldm-cin256-f8"})
# Sampling steps by default, with where that default is from. The text-to-image pipelines of diffusers (SD 1.x,
# SD 2.x, SDXL and their inpainting pipeline) take 50; models whose usual sampler differs are left out.
_DIFFUSERS_STEPS = (50, "diffusers' default")
_STEPS: dict[str, tuple[int, str]] = {
    "sd1": _DIFFUSERS_STEPS,
    "sd2": _DIFFUSERS_STEPS,
    "sd2-v": _DIFFUSERS_STEPS,
    "sd2-inpaint": _DIFFUSERS_STEPS,
    "sdxl-base": _DIFFUSERS_STEPS,
}


class PipelineStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StageId = Field(description="which stage: `unet` is the model this trace draws")
    label: str = Field(description="its name, short (`text encoder`, `UNet × 50 steps`)")
    note: str | None = Field(None, description="a short mark shown beside the label (`×2`)")
    note_says: str | None = Field(None, description="what the mark means")
    says: str = Field(description="what it does, in one sentence with this trace's numbers")


class Pipeline(BaseModel):
    """The sampling pipeline the UNet is part of, in the order data flows through it."""

    model_config = ConfigDict(extra="forbid")

    space: Literal["latent", "pixel"] = Field(
        description="`latent`: the UNet denoises an autoencoder's latent and a decoder makes the picture; "
        "`pixel`: it denoises the picture itself (the twin)"
    )
    conditioning: Literal["text", "class", "none"] = Field(description="what the model is told to draw")
    steps: int | None = Field(description="sampling steps by default; null where no reference default is named")
    steps_source: str | None = Field(description="where that default is from")
    guidance: bool = Field(
        description="sampled with classifier-free guidance: a conditioned model is run with its condition and "
        "without, and the two predictions are mixed"
    )
    unet_calls_per_step: int = Field(description="UNet forwards per sampling step: 2 with guidance, else 1")
    stages: list[PipelineStage] = Field(description="the stages in order, the UNet among them")


def _lookup(table: dict[str, str] | dict[str, tuple[int, str]], preset: Preset | None, *, family: bool = True):  # type: ignore[no-untyped-def]
    """A preset's entry by its name, else the model it was made from, else (with `family`) its family's."""
    if preset is None:
        return None
    for key in (preset.name, preset.variant_of, preset.family if family else None):
        if key is not None and key in table:
            return table[key]
    return None


def _dims(shape: list[int]) -> str:
    return "×".join(str(v) for v in shape)


def pipeline_for(preset: Preset | None, config: UNetConfig, given: TraceInput) -> Pipeline:
    """The pipeline of a traced UNet: `preset` names the released model (None for a custom config), `given` is
    the trace's input (latent shape, context, y, image size). A config traced without a preset's name (a diffusers
    config, a checkpoint's) gets the pipeline of the released models whose UNet config it is, where they agree."""
    if preset is None:
        from .presets import PRESETS

        alike = [pipeline_for(p, config, given) for p in PRESETS.values() if p.config == config]
        if alike and all(a == alike[0] for a in alike):
            return alike[0]
    pixel = given.latent_factor == 1
    x = given.x.shape[1:]
    # The prediction has the latent's channels; more input channels than that are a conditioning image stacked on
    # (inpainting's mask and masked picture, the upscaler's low-resolution picture).
    latent_channels = min(config.in_channels, config.out_channels)
    stacked = config.in_channels - latent_channels
    latent = _dims([latent_channels, *x[1:]])
    image = _dims(given.image_size)
    name = preset.name if preset else None
    conditioning: Literal["text", "class", "none"] = "none"
    if given.context is not None:
        conditioning = "class" if name in _CLASS_CONDITIONED else "text"
    guidance = given.context is not None or given.y is not None
    calls = 2 if guidance else 1
    steps_entry = _lookup(_STEPS, preset, family=False)  # a family's models sample differently
    if preset is not None and preset.family == "twin":
        from .twin.sampling import DEFAULT_STEPS  # the twin's own sampler: its default is the API's

        steps_entry = (DEFAULT_STEPS, "the twin's default")
    steps, steps_source = steps_entry if steps_entry else (None, None)

    stages: list[PipelineStage] = []
    # One short sentence a stage: the strip shows it in the band above the U, which holds about three lines.
    if conditioning == "text":
        tokens, width = given.context.shape[1:]  # type: ignore[union-attr]
        encoder = _lookup(_TEXT_ENCODERS, preset) or "a text encoder"
        stages.append(
            PipelineStage(
                id="prompt",
                label="caption" if pixel else "prompt",
                says=f"The text to draw, split into {tokens} tokens (padded or cut to that length).",
            )
        )
        stages.append(
            PipelineStage(
                id="text_encoder",
                label="text encoders" if encoder.startswith("the pair") else "text encoder",
                says=f"{encoder[0].upper()}{encoder[1:]} makes the context once per picture: {tokens} vectors of "
                f"{width} numbers, which every cross-attention of the UNet reads.",
            )
        )
    elif conditioning == "class":
        width = given.context.shape[2]  # type: ignore[union-attr]
        stages.append(PipelineStage(id="class_label", label="class label", says="Which ImageNet class to draw."))
        stages.append(
            PipelineStage(
                id="class_embedding",
                label="class embedding",
                says=f"A learned table turns the label into one vector of {width} numbers, the context the UNet's "
                "cross-attention reads.",
            )
        )
    else:
        stages.append(
            PipelineStage(
                id="noise",
                label="noise",
                says=f"Random noise of {latent}: nothing says what to draw, so the model draws what its training "
                "pictures were like.",
            )
        )

    what = "picture" if pixel else "latent"
    extra = f" (+{stacked} channels of the image it is conditioned on)" if stacked else ""
    at = f"at each of {steps} steps ({steps_source})" if steps else "at every sampling step"
    guided = ""
    if guidance:
        passes = f"{calls * steps} forward passes" if steps else f"{calls} forward passes a step"
        told = {"text": "caption" if pixel else "prompt", "class": "class"}.get(conditioning, "condition")
        guided = f", twice a step with guidance (with the {told} and without): {passes}"
    stages.append(
        PipelineStage(
            id="unet",
            label=f"UNet × {steps} steps" if steps else "UNet loop",
            note=f"×{calls}" if guidance else None,
            note_says=f"{calls} UNet forwards a step: classifier-free guidance runs it with the condition and without "
            "and mixes the two predictions"
            if guidance
            else None,
            says=f"This diagram: from pure noise it predicts the noise (or v) in the {what} {latent}{extra} {at}"
            f"{guided}.",
        )
    )
    if not pixel:
        decoder = "VQ decoder" if preset and "VQ" in preset.title else "VAE decoder"
        stages.append(
            PipelineStage(
                id="decoder",
                label=decoder,
                says=f"After the last step the autoencoder's decoder turns the {latent} latent into the {image} "
                f"picture, {given.latent_factor} pixels per latent pixel each way.",
            )
        )
    stages.append(
        PipelineStage(
            id="image",
            label="image",
            says=f"The {image} picture: the twin works in pixels, so the UNet's last output is the picture itself."
            if pixel
            else f"The {image} picture.",
        )
    )
    return Pipeline(
        space="pixel" if pixel else "latent",
        conditioning=conditioning,
        steps=steps,
        steps_source=steps_source,
        guidance=guidance,
        unet_calls_per_step=calls,
        stages=stages,
    )
