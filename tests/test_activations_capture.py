"""Captures on tiny models: hooked values equal a plain forward, maps and heat maps sum as documented, previews,
the export round trip, a whole tiny checkpoint (VAE, CLIP, UNet), and inputs that are refused."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from sdunet_core import PRESETS
from sdunet_core.activations import reduce
from sdunet_core.activations.capture import ForwardInputs
from sdunet_core.activations.conditioning import InputError
from sdunet_core.activations.export import export_activations, to_bytes
from sdunet_core.activations.session import CaptureSpec, Explorer
from tests.activation_fixtures import png_bytes, write_checkpoint

SAMPLE = (16, 16)


@pytest.fixture(scope="module")
def tiny() -> Explorer:
    return Explorer.random(PRESETS["tiny"].config)


def _plain_block_outputs(ex: Explorer, inputs: ForwardInputs) -> dict[str, torch.Tensor]:
    """Every top-level block's output by walking the UNet by hand, with no hook registered."""
    m = ex.unet
    from sdunet_core.model.unet import timestep_embedding

    with torch.inference_mode():
        emb = m.time_embed(timestep_embedding(torch.tensor([float(inputs.timestep)]), m.config.model_channels))
        if inputs.y is not None:
            emb = emb + m.label_emb(inputs.y)
        out, skips, h = {}, [], inputs.x
        for i, block in enumerate(m.input_blocks):
            h = block(h, emb, inputs.context)
            out[f"input_blocks.{i}"] = h
            skips.append(h)
        h = out["middle_block"] = m.middle_block(h, emb, inputs.context)
        for i, block in enumerate(m.output_blocks):
            h = out[f"output_blocks.{i}"] = block(torch.cat([h, skips.pop()], 1), emb, inputs.context)
        out["out"] = m.out(h)
    return out


def test_captured_block_outputs_equal_a_plain_forward(tiny: Explorer) -> None:
    spec = CaptureSpec(points=["@outputs"], keep=["@outputs"], timestep=400, prompt="a cat", sample_size=SAMPLE)
    outcome = tiny.run(spec)
    # The same seeded inputs the session draws: the noise latent (seed), then context and y (seed + 1).
    x = torch.randn(1, 4, *SAMPLE, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    context, y = torch.randn(1, 77, 32, generator=gen), torch.randn(1, 16, generator=gen)
    plain = _plain_block_outputs(tiny, ForwardInputs(x, 400, context, y))
    checked = 0
    for p in outcome.points:
        if p.block_output:
            assert torch.equal(outcome.results[p.name].tensor, plain[p.block_path]), p.name
            checked += 1
    assert checked == len(plain)
    assert torch.equal(outcome.results["unet-in"].tensor, x)


def test_res_increment_adds_up_to_res_out(tiny: Explorer) -> None:
    names = ["down-level0-repeat0-res-out", "down-level0-repeat1-res-increment", "down-level0-repeat1-res-out"]
    out = tiny.run(CaptureSpec(points=names, keep=names, timestep=10, sample_size=SAMPLE)).results
    # Level 0 has no attention and equal widths: repeat 1's input is repeat 0's output, its skip the identity.
    total = out[names[0]].tensor + out[names[1]].tensor
    assert torch.allclose(total, out[names[2]].tensor, atol=1e-6)


def test_attention_maps_are_probabilities_that_reproduce_the_attention(tiny: Explorer) -> None:
    base = "down-level1-repeat0-vit-block0-"
    names = [base + "self-map", base + "self-v", base + "cross-map"]
    seen = {}
    attn = tiny.unet.get_submodule("input_blocks.4.1.transformer_blocks.0.attn1")
    hook = attn.to_out[0].register_forward_pre_hook(lambda _m, args: seen.setdefault("o", args[0].clone()))
    try:
        out = tiny.run(CaptureSpec(points=names, keep=names, timestep=500, sample_size=SAMPLE)).results
    finally:
        hook.remove()
    probs, v = out[base + "self-map"].tensor, out[base + "self-v"].tensor
    assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    b, heads, n, _ = probs.shape
    vh = v.reshape(b, n, heads, -1).transpose(1, 2)
    rebuilt = (probs @ vh).transpose(1, 2).reshape(b, n, -1)
    assert torch.allclose(rebuilt, seen["o"], atol=1e-4)  # map @ v is what attn1 hands to to_out
    stats = out[base + "cross-map"].stats
    assert stats.mean == pytest.approx(1 / 77, rel=1e-5)  # every row of a softmax over 77 tokens sums to 1
    assert sum(stats.counts) == stats.count == b * heads * n * 77


def test_heat_maps_sum_to_one_at_every_pixel(tiny: Explorer) -> None:
    out = tiny.run(CaptureSpec(points=["@cross-maps"], timestep=300, prompt="a red cat", sample_size=SAMPLE))
    hm = out.heatmaps
    assert [t["text"] for t in hm.tokens] == ["<|startoftext|>", "a", "red", "cat", "<|endoftext|>", "<padding>"]
    sets = [*hm.layers, *hm.resolutions, hm.overall]
    # Every cross-attention: down 2 + 2 x 2 (depth 2), middle 2, up 3 + 3 x 2.
    assert len(hm.layers) == 17
    for s in sets:
        assert s.maps.shape[0] == len(hm.tokens)
        assert torch.allclose(s.maps.sum(0), torch.ones(()), atol=1e-5), s.name
    assert hm.overall.maps.shape[1:] == (8, 8)  # the finest resolution with attention (level 1 of 16 x 16)


def test_pca_preview_finds_the_planted_components() -> None:
    gen = torch.Generator().manual_seed(0)
    h = w = 12
    a, b = torch.randn(h * w, generator=gen), torch.randn(h * w, generator=gen)
    dirs = torch.linalg.qr(torch.randn(40, 2, generator=gen))[0]
    tokens = 5 * a[:, None] * dirs[:, 0] + 2 * b[:, None] * dirs[:, 1] + 0.01 * torch.randn(h * w, 40, generator=gen)
    preview = reduce.pca_preview(tokens, h, w)
    assert preview.values.shape == (h, w, 3) and preview.values.min() >= 0 and preview.values.max() <= 1
    red = torch.from_numpy(preview.values[..., 0]).reshape(-1)
    assert abs(torch.corrcoef(torch.stack([red, a]))[0, 1]) > 0.95
    assert preview.explained_variance[0] > preview.explained_variance[1] > preview.explained_variance[2]
    assert sum(preview.explained_variance) == pytest.approx(1.0, abs=1e-3)
    assert reduce.pca_preview(tokens, h, w).png() == preview.png()  # the same colours every time
    png = Image.open(io.BytesIO(preview.png()))
    assert png.size == (w, h) and png.mode == "RGB"


def test_low_rank_pca_matches_the_exact_one(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = torch.randn(64, 30, generator=torch.Generator().manual_seed(3))
    tokens[:, 0] *= 10
    exact = reduce.pca_preview(tokens, 8, 8)
    monkeypatch.setattr(reduce, "EXACT_PCA_WORK", 0)
    approx = reduce.pca_preview(tokens, 8, 8)
    assert np.abs(exact.values[..., 0] - approx.values[..., 0]).max() < 0.05


def test_cosine_between_timesteps(tiny: Explorer) -> None:
    image = png_bytes(64, 64)
    same = tiny.run(
        CaptureSpec(points=["@outputs"], timestep=200, compare_timestep=200, image=image, sample_size=SAMPLE)
    )
    assert all(r.cosine == pytest.approx(1.0, abs=1e-6) for r in same.results.values())
    apart = tiny.run(
        CaptureSpec(points=["@outputs"], timestep=200, compare_timestep=900, image=image, sample_size=SAMPLE)
    )
    assert apart.results["unet-in"].cosine < 0.99  # the stand-in latent noised to two levels


def test_export_round_trip(tiny: Explorer) -> None:
    from safetensors import safe_open
    from safetensors.torch import load

    keep = ["up-level1-repeat0-vit-block0-cross-q", "unet-out"]
    spec = CaptureSpec(points=[], keep=keep, timestep=261, sample_size=SAMPLE)
    images = [("a.png", png_bytes(32, 32, 1)), ("b.png", png_bytes(48, 40, 2))]
    tensors, metadata = export_activations(tiny, spec, images)
    data = to_bytes(tensors, metadata)
    loaded = load(data)
    assert set(loaded) == set(keep) and loaded["unet-out"].shape == (2, 4, 16, 16)
    assert json.loads(metadata["points"]) == keep  # forward order (the file itself sorts its tensors)
    single = tiny.run(CaptureSpec(points=[], keep=keep, timestep=261, image=images[1][1], sample_size=SAMPLE))
    assert torch.equal(loaded["unet-out"][1:], single.results["unet-out"].tensor)
    path = "/tmp/_sdunet_export_test.safetensors"
    with open(path, "wb") as f:
        f.write(data)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    assert meta["timestep"] == "261" and meta["random_weights"] == "true" and '"a.png"' in meta["images"]


def test_refused_inputs(tiny: Explorer) -> None:
    cases = [
        (CaptureSpec(points=["@outputs"], timestep=1000), "timestep"),
        (CaptureSpec(points=["down-level7-repeat0-res-out"], timestep=1), "points"),
        (CaptureSpec(points=[], keep=["nope"], timestep=1), "export"),
        (CaptureSpec(points=["@outputs"], timestep=1, prompt="cat " * 80), "prompt"),
        (CaptureSpec(points=["@outputs"], timestep=1, sample_size=(15, 16)), "image_size"),
        (CaptureSpec(points=["@outputs"], timestep=1, image=b"GIF89a not really"), "image"),
        (CaptureSpec(points=["@outputs"], timestep=1, image=png_bytes(8, 40), max_image_side=32), "image"),
    ]
    for spec, field in cases:
        with pytest.raises(InputError) as info:
            tiny.run(spec)
        assert info.value.field == field


def test_a_whole_checkpoint_encodes_image_and_prompt(tmp_path) -> None:
    from sdunet_core.activations.conditioning import fit, vae_latent
    from sdunet_core.activations.tokenizer import pad, tokenize

    models = write_checkpoint(tmp_path / "tiny.safetensors")
    ex = Explorer.from_checkpoint(tmp_path / "tiny.safetensors")
    assert not ex.random_weights and ex.components.family == "sd1"
    image = png_bytes(80, 64)
    out = ex.run(CaptureSpec(points=["@outputs", "@cross-maps"], timestep=0, prompt="a cat", image=image,
                             sample_size=(8, 8), keep=["unet-in"]))  # fmt: skip
    assert out.inputs["latent_source"] == "vae" and out.inputs["context_source"] == "text encoder"
    assert out.notice is None and out.heatmaps is not None
    # At t = 0 the noised latent is the clean one: the checkpoint's VAE gives what diffusers' own model gives.
    from sdunet_core.activations.conditioning import decode_image

    pixels = fit(decode_image(image, 4096), 64, 64)
    expected = vae_latent(models["vae"], pixels)
    sqrt_ab = float(torch.cumprod(1 - torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2, 0)[0]) ** 0.5
    assert torch.allclose(out.results["unet-in"].tensor, sqrt_ab * expected + (1 - sqrt_ab**2) ** 0.5 *
                          torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), atol=1e-5)  # fmt: skip
    ids, _ = tokenize("a cat")
    context, _ = ex.components.text.encode("a cat")
    with torch.inference_mode():
        reference = models["clip"](input_ids=torch.tensor([pad(ids, 49407)])).last_hidden_state
    assert torch.allclose(context, reference, atol=1e-5)


def test_features_command(tmp_path, capsys) -> None:
    from safetensors.torch import load_file

    from app.cli import main

    image = tmp_path / "in.png"
    image.write_bytes(png_bytes(50, 70))
    out = tmp_path / "f.safetensors"
    argv = ["features", "--preset", "tiny", "--image", str(image), "--t", "261", "--size", "128", "128",
            "--points", "up-level1-repeat1-vit-block0-cross-q", "unet-out", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    tensors = load_file(str(out))
    assert set(tensors) == {"up-level1-repeat1-vit-block0-cross-q", "unet-out"}
    assert tensors["unet-out"].shape == (1, 4, 16, 16)
    assert "unet-out: [1, 4, 16, 16]" in capsys.readouterr().out
    assert main(["features", "--points", "unet-out"]) == 2  # neither weights nor a preset
    assert main(["features", "--preset", "tiny", "--points", "nope", "--out", str(out)]) == 2
