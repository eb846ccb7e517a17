"""The diffusers key map: both ways, round trips, and equal to a real UNet2DConditionModel's state dict."""

from __future__ import annotations

from functools import cache

import pytest
import torch

from sdunet_core import PRESETS
from sdunet_core.checkpoint.detect import detect_unet
from sdunet_core.checkpoint.diffusers_keys import from_diffusers_name, keymap_for, to_diffusers_name
from tests.checkpoint_headers import (
    DIFFUSERS_PRESETS,
    Shapes,
    diffusers_shapes,
    make_header,
    preset_shapes,
)
from tests.diffusers_configs import DIFFUSERS_CONFIGS


# ---- the diffusers key map -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "original", "diffusers"),
    [
        ("sd1", "input_blocks.1.1.transformer_blocks.0.attn1", "down_blocks.0.attentions.0.transformer_blocks.0.attn1"),
        ("sd1", "input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"),
        ("sd1", "input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"),
        ("sd1", "input_blocks.0.0", "conv_in"),
        ("sd1", "output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"),  # no attention: index 1
        ("sd1", "output_blocks.5.2.conv", "up_blocks.1.upsamplers.0.conv"),  # after an attention: index 2
        ("sd1", "output_blocks.11.1.proj_in.weight", "up_blocks.3.attentions.2.proj_in.weight"),
        ("sd1", "output_blocks.3.0.emb_layers.1.weight", "up_blocks.1.resnets.0.time_emb_proj.weight"),
        ("sd1", "middle_block", "mid_block"),
        ("sd1", "middle_block.2.out_layers.3", "mid_block.resnets.1.conv2"),
        ("sd1", "time_embed", "time_embedding"),
        ("sd1", "time_embed.2.bias", "time_embedding.linear_2.bias"),
        ("sd1", "out.0.weight", "conv_norm_out.weight"),
        ("sdxl-base", "label_emb.0.0.weight", "add_embedding.linear_1.weight"),
        ("sdxl-base", "input_blocks.7.1.transformer_blocks.9.ff", "down_blocks.2.attentions.0.transformer_blocks.9.ff"),
        ("sd2-unclip-h", "label_emb.0.2.bias", "class_embedding.linear_2.bias"),
        ("sd-x4-upscaler", "label_emb.weight", "class_embedding.weight"),
    ],
)  # fmt: skip
def test_key_map_both_ways(name: str, original: str, diffusers: str) -> None:
    config = PRESETS[name].config
    assert to_diffusers_name(original, config) == diffusers
    assert from_diffusers_name(diffusers, config) == original


def test_key_map_has_no_name_where_there_is_no_one_to_one_module() -> None:
    sd1 = PRESETS["sd1"].config
    for path in ("input_blocks.1", "input_blocks.1.0.in_layers", "input_blocks.1.0.in_layers.1", "time_embed.1", "out"):
        assert to_diffusers_name(path, sd1) is None, path
    assert from_diffusers_name("down_blocks.0", sd1) is None
    assert from_diffusers_name("time_proj", sd1) is None
    assert to_diffusers_name("input_blocks.1.0.in_layers.0.weight", PRESETS["ldm-celebahq"].config) is None


@pytest.mark.parametrize("name", DIFFUSERS_PRESETS)
def test_key_map_round_trips_every_key(name: str) -> None:
    keymap = keymap_for(PRESETS[name].config)
    assert keymap is not None
    names = [keymap.to_diffusers(k) for k in preset_shapes(name)]
    assert None not in names and len(set(names)) == len(names)
    assert [keymap.from_diffusers(n) for n in names] == list(preset_shapes(name))


@cache
def real_diffusers_shapes(name: str) -> Shapes:
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):  # no weights, nothing downloaded: the model is built from the config dict
        model = diffusers.UNet2DConditionModel(**DIFFUSERS_CONFIGS[name])
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(DIFFUSERS_CONFIGS))
def test_key_map_equals_real_diffusers_state_dict(name: str) -> None:
    assert diffusers_shapes(name) == real_diffusers_shapes(name)


@pytest.mark.parametrize("name", ["sd1", "sd2", "sdxl-base"])
def test_real_diffusers_state_dict_detects_its_preset(name: str) -> None:
    d = detect_unet(make_header(real_diffusers_shapes(name), "unet.", dtype="BF16"))
    assert (d.format, d.preset, d.exact) == ("diffusers", name, True)


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.variant_of])
def test_real_diffusers_state_dicts_of_the_variants_detect_them(name: str) -> None:
    diffusers = pytest.importorskip("diffusers")
    raw = {k: v for k, v in (PRESETS[name].diffusers_config or {}).items() if not k.startswith("_")}
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in diffusers.UNet2DConditionModel(**raw).state_dict().items()}
    for prefix in ("", "unet."):
        d = detect_unet(make_header(shapes, prefix, dtype="BF16"))
        assert (d.format, d.preset, d.exact) == ("diffusers", name, True)
        assert d.to_dict()["ldm_params"] == PRESETS[name].config.to_ldm_or_none()
