"""The activation catalog: names in the study's scheme, module paths, shapes, groups and published uses."""

from __future__ import annotations

import re

import pytest
import torch

from sdunet_core import PRESETS, UNetModel
from sdunet_core.activations import catalog, resolve_points


@pytest.fixture(scope="module")
def sd1():
    return {p.name: p for p in catalog(PRESETS["sd1"].config, (64, 64), 77)}


def test_sd1_counts_and_numbering(sd1) -> None:
    # The study's SD 1.5 list has 197 points; we add cross-k and cross-v to each of the 16 transformers.
    assert len(sd1) == 197 + 32
    for level in range(4):
        for r in range(3):  # up-level L repeat R is output_blocks[3L + R] (diffusers' up_blocks order)
            assert sd1[f"up-level{level}-repeat{r}-res-out"].module == f"output_blocks.{3 * level + r}.0"
        for r in range(2):  # down-level L repeat R is input_blocks[1 + 3L + R]
            assert sd1[f"down-level{level}-repeat{r}-res-out"].module == f"input_blocks.{1 + 3 * level + r}.0"
    assert sd1["down-level0-downsampler-out"].module == "input_blocks.3.0"
    assert "down-level3-downsampler-out" not in sd1 and "up-level3-upsampler-out" not in sd1
    assert sd1["up-level1-upsampler-out"].module == "output_blocks.5.2"
    assert sd1["mid-vit-block0-cross-q"].module == "middle_block.1.transformer_blocks.0.attn2.to_q"
    assert sd1["mid-repeat1-res-increment"].module == "middle_block.2.out_layers.3"
    assert sd1["unet-after-conv-in"].module == "input_blocks.0.0" and sd1["unet-out"].module == "out"


def test_sd1_shapes(sd1) -> None:
    assert sd1["unet-in"].shape == (1, 4, 64, 64)
    assert sd1["up-level1-repeat1-vit-block0-cross-q"].shape == (1, 256, 1280)  # 16 x 16 pixels, 1280 wide
    assert sd1["up-level1-repeat1-vit-block0-cross-k"].shape == (1, 77, 1280)
    assert sd1["up-level3-repeat0-vit-block0-self-map"].shape == (1, 8, 4096, 4096)
    assert sd1["down-level0-repeat0-vit-block0-cross-map"].shape == (1, 8, 4096, 77)
    assert sd1["down-level0-repeat0-vit-block0-ffn-inner"].shape == (1, 4096, 1280)
    assert sd1["up-level0-upsampler-out"].shape == (1, 1280, 16, 16) and sd1["up-level0-upsampler-out"].factor == 4
    assert sd1["up-level0-repeat2-res-out"].factor == 8  # before the upsampler


def test_every_module_exists_and_block_outputs_are_marked(sd1) -> None:
    with torch.device("meta"):
        model = UNetModel(PRESETS["sd1"].config)
    for p in sd1.values():
        if p.module:
            model.get_submodule(p.module)
    outputs = [p for p in sd1.values() if p.block_output]
    # One output per top-level block: 12 input blocks, the middle block, 12 output blocks, the head.
    assert len(outputs) == 12 + 1 + 12 + 1


def test_sdxl_numbering() -> None:
    points = {p.name: p for p in catalog(PRESETS["sdxl-base"].config, (128, 128), 77)}
    assert len(points) == 612 + 140  # the study's SDXL list, plus cross-k/v for 70 transformer blocks
    assert not any(re.match(r"down-level0-repeat\d-vit", n) for n in points)  # no attention at full resolution
    assert "down-level2-downsampler-out" not in points
    assert points["up-level0-repeat2-vit-block9-out"].module == "output_blocks.2.1.transformer_blocks.9"
    assert points["up-level2-repeat0-res-out"].module == "output_blocks.6.0"
    for name in ("up-level0-repeat0-vit-block5-out", "up-level1-repeat0-vit-block0-cross-q"):
        assert any("recommends for sdxl-base" in u for u in points[name].used_by)


def test_published_uses() -> None:
    sd2 = {p.name: p for p in catalog(PRESETS["sd2"].config, (96, 96), 77)}
    assert any(u.startswith("DIFT up_ft_index=1") for u in sd2["up-level1-upsampler-out"].used_by)
    sd1 = {p.name: p for p in catalog(PRESETS["sd1"].config, (64, 64), 77)}
    assert (
        "DeepCache cache_branch_id=0: the skip recomputed on every step" in sd1["down-level0-repeat0-vit-out"].used_by
    )
    cached = "DeepCache cache_branch_id=0: the feature cached and reused between full steps"
    assert cached in sd1["up-level3-repeat1-vit-out"].used_by  # output_blocks.10
    assert any(u.startswith("DAAM") for u in sd1["mid-vit-block0-cross-map"].used_by)
    picks = resolve_points(tuple(sd1.values()), ["@recommended"])
    assert [p.name for p in picks] == [
        "up-level1-repeat1-vit-block0-cross-q",
        "up-level1-repeat2-res-out",
        "up-level2-repeat1-vit-block0-cross-q",
        "up-level3-repeat0-vit-block0-self-k",
    ]


def test_groups_and_unknown_names() -> None:
    points = catalog(PRESETS["tiny"].config, (16, 16), 77)
    outputs = resolve_points(points, ["@outputs"])
    assert {p.kind for p in outputs} >= {"unet-in", "res-out", "vit-out", "downsampler-out", "upsampler-out"}
    assert all(p.kind == "cross-map" for p in resolve_points(points, ["@cross-maps"]))
    with pytest.raises(KeyError):
        resolve_points(points, ["up-level9-repeat0-res-out"])


def test_plain_attention_models_offer_vit_out_only() -> None:
    points = {p.name: p for p in catalog(PRESETS["ldm-celebahq"].config, (64, 64), 77)}
    assert any(n.endswith("vit-out") for n in points)
    assert not any("vit-block" in n for n in points)
