"""The trace states where the UNet sits (issue 24): the sampling pipeline around it, stage by stage, each sentence
with the numbers of this trace (context width, latent shape, picture size), the default step count where a source
is named, and the UNet's two forwards a step under classifier-free guidance. Meta traces of the real presets, and
the API's answer."""

from __future__ import annotations

import pytest

from sdunet_core import trace_unet
from sdunet_core.twin.sampling import DEFAULT_STEPS


def _dims(shape: list[int]) -> str:
    return "×".join(map(str, shape))


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base", "sd2-inpaint"])
def test_a_text_to_image_model_sits_between_the_text_encoder_and_the_decoder(preset: str) -> None:
    trace = trace_unet(preset)
    p = trace.pipeline
    assert p is not None
    assert [s.id for s in p.stages] == ["prompt", "text_encoder", "unet", "decoder", "image"]
    assert (p.space, p.conditioning, p.guidance, p.unet_calls_per_step) == ("latent", "text", True, 2)
    assert (p.steps, p.steps_source) == (50, "diffusers' default")
    says = {s.id: s.says for s in p.stages}
    _, tokens, width = trace.input.context.shape
    assert f"{tokens} vectors of {width} numbers" in says["text_encoder"]
    latent = _dims([trace.config.out_channels, *trace.input.sample_size])
    image = _dims(trace.input.image_size)
    assert f"the {latent} latent into the {image} picture" in says["decoder"]
    assert f"{trace.input.latent_factor} pixels per latent pixel" in says["decoder"]
    unet = next(s for s in p.stages if s.id == "unet")
    assert (unet.label, unet.note) == ("UNet × 50 steps", "×2")
    assert f"latent {latent}" in unet.says and "100 forward passes" in unet.says
    # Inpainting's UNet reads 5 channels more than the latent it predicts: the mask and the masked picture's latent.
    stacked = trace.config.in_channels - trace.config.out_channels
    assert (f"+{stacked} channels" in unet.says) == (stacked > 0)


def test_the_twin_works_in_pixels_with_no_decoder() -> None:
    trace = trace_unet("twin")
    p = trace.pipeline
    assert [s.label for s in p.stages] == ["caption", "text encoder", f"UNet × {DEFAULT_STEPS} steps", "image"]
    assert (p.space, p.steps, p.unet_calls_per_step) == ("pixel", DEFAULT_STEPS, 2)
    says = {s.id: s.says for s in p.stages}
    assert "16 vectors of 64 numbers" in says["text_encoder"]
    assert "picture 3×32×32" in says["unet"] and "(the twin's default)" in says["unet"]
    assert says["image"].startswith("The 32×32 picture: the twin works in pixels")


def test_unconditional_and_class_conditional_models() -> None:
    p = trace_unet("ldm-celebahq").pipeline
    assert [s.id for s in p.stages] == ["noise", "unet", "decoder", "image"]
    assert (p.conditioning, p.guidance, p.unet_calls_per_step, p.steps) == ("none", False, 1, None)
    unet = next(s for s in p.stages if s.id == "unet")
    assert (unet.label, unet.note) == ("UNet loop", None)
    assert "guidance" not in unet.says
    assert next(s for s in p.stages if s.id == "decoder").label == "VQ decoder"  # the VQ-f4 autoencoder
    p = trace_unet("ldm-cin256").pipeline
    assert [s.id for s in p.stages] == ["class_label", "class_embedding", "unet", "decoder", "image"]
    assert p.guidance and "one vector of 512 numbers" in p.stages[1].says


def test_no_default_steps_without_a_source() -> None:
    # The upscaler's and the refiner's pipelines sample differently from text-to-image: no number is claimed.
    for preset in ("sd-x4-upscaler", "sdxl-refiner", "ldm-txt2img"):
        p = trace_unet(preset).pipeline
        assert (p.steps, p.steps_source) == (None, None), preset
        assert "2 forward passes a step" in next(s for s in p.stages if s.id == "unet").says


def test_the_api_serves_the_pipeline(client) -> None:
    r = client.post("/api/trace", json={"preset": "sd1"})
    assert r.status_code == 200
    body = r.json()
    assert body["schema_version"] == 4
    assert [s["label"] for s in body["pipeline"]["stages"]] == [
        "prompt",
        "text encoder",
        "UNet × 50 steps",
        "VAE decoder",
        "image",
    ]
    assert body["pipeline"]["stages"][2]["note_says"].startswith("2 UNet forwards a step")
