"""Checkpoint detection: headers of every preset in both key formats detect back to the preset; custom configs
come back; a file that fits only partly is reported. Headers are built from UNetModel on the meta device."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from sdunet_core import PRESETS, UNetConfig
from sdunet_core.checkpoint.detect import detect_unet, inspect_file
from tests.checkpoint_headers import (
    CLIP,
    DIFFUSERS_EXTRA,
    DIFFUSERS_PRESETS,
    VAE,
    block_of,
    diffusers_shapes,
    make_header,
    preset_shapes,
    same_config_presets,
    shapes_of,
    without_offsets,
)
from tests.conftest import DATA


def test_diffusers_map_covers_every_transformer_preset() -> None:
    assert set(PRESETS) - set(DIFFUSERS_PRESETS) == {"ldm-celebahq", "ldm-churches"}  # plain attention blocks


# ---- every preset detects back to itself ---------------------------------------------------------------------
@pytest.mark.parametrize("prefix", ["model.diffusion_model.", "", "unet."])
@pytest.mark.parametrize("name", list(PRESETS))
def test_original_names_detect_their_preset(name: str, prefix: str) -> None:
    d = detect_unet(make_header(preset_shapes(name), prefix, extra={**VAE, **CLIP}))
    assert (d.prefix, d.format) == (prefix, "ldm")
    assert d.matching_presets == same_config_presets(name)  # sd2 and sd2-v: both, sd2 first
    assert d.preset == d.matching_presets[0]
    assert d.config == PRESETS[name].config
    assert (d.missing, d.unexpected, d.mismatched) == ([], [], [])
    assert d.other_keys == {"cond_stage_model": 1, "conditioner": 1, "first_stage_model": 3}
    out = d.to_dict()
    assert out["config"] == PRESETS[name].config.to_dict()
    assert out["ldm_params"] == PRESETS[name].config.to_ldm_or_none()
    assert out["num_parameters"] == sum(math.prod(s) for s in preset_shapes(name).values())
    if PRESETS[name].num_parameters is not None:
        assert out["num_parameters"] == PRESETS[name].num_parameters
    assert out["total_bytes"] == 2 * out["num_parameters"]
    assert out["bytes_by_dtype"] == {"F16": out["total_bytes"]}
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize("prefix", ["", "unet."])
@pytest.mark.parametrize("name", DIFFUSERS_PRESETS)
def test_diffusers_names_detect_their_preset(name: str, prefix: str) -> None:
    d = detect_unet(make_header(diffusers_shapes(name), prefix, extra=DIFFUSERS_EXTRA))
    assert (d.prefix, d.format) == (prefix, "diffusers")
    assert d.matching_presets == same_config_presets(name)
    assert d.config == PRESETS[name].config
    assert (d.missing, d.unexpected, d.mismatched) == ([], [], [])
    assert d.other_keys == {"text_encoder": 1, "vae": 1}
    # Bytes are reported per original top-level block, in the model's order.
    assert list(d.bytes_by_block) == list(dict.fromkeys(map(block_of, preset_shapes(name))))


def test_bytes_by_block_split_by_dtype() -> None:
    header = without_offsets(make_header(preset_shapes("tiny"), "model.diffusion_model."))
    header["model.diffusion_model.time_embed.0.weight"] = {"dtype": "F32", "shape": [128, 32]}
    d = detect_unet(header)
    assert d.bytes_by_block["time_embed"] == {"F32": 128 * 32 * 4, "F16": 2 * (128 + 128 * 128 + 128)}
    assert list(d.bytes_by_block) == list(dict.fromkeys(map(block_of, preset_shapes("tiny"))))  # the model's order
    assert len(d.bytes_by_block) == 2 + 9 + 1 + 9 + 1  # embeddings, 9 input blocks, middle, 9 output blocks, out
    assert d.to_dict()["bytes_by_dtype"] == {"F16": 2 * (d.num_parameters - 128 * 32), "F32": 128 * 32 * 4}


def test_a_preset_with_another_input_is_no_preset_but_borrows_its_heads() -> None:
    # SD 1.5 inpainting: SD 1.x with 9 input channels. Shapes cannot tell heads apart; the closest preset decides.
    shapes = shapes_of(dataclasses.replace(PRESETS["sd1"].config, in_channels=9))
    d = detect_unet(make_header(shapes, "model.diffusion_model."))
    assert d.preset is None and d.matching_presets == []
    assert d.config == dataclasses.replace(PRESETS["sd1"].config, in_channels=9)
    assert d.notes == [
        "heads are invisible in the shapes; took num_heads=8 (as the closest preset, sd1)",
        "transformer_depth at levels without attention is invisible; took 1 (the depth every attended level shares)",
    ]
    sdxl_inpaint = dataclasses.replace(PRESETS["sdxl-base"].config, in_channels=9)
    d = detect_unet(make_header(shapes_of(sdxl_inpaint)))
    assert d.config == sdxl_inpaint  # num_head_channels=64, as SDXL


def test_a_matching_preset_fills_in_what_shapes_cannot_show() -> None:
    d = detect_unet(make_header(preset_shapes("sd-x4-upscaler")))
    assert d.config.disable_self_attentions == (True, True, True, False)  # level 0 has no attention to show it
    assert d.notes == [
        "the shapes equal preset sd-x4-upscaler's; took its settings for what shapes cannot show: "
        "disable_self_attentions=(True, True, True, False)"
    ]


# Configs no preset has: every shape-visible option, each must come back with a strict-loading config.
CUSTOM = {
    "continuous+plain+scale_shift+updown": UNetConfig(
        in_channels=3, out_channels=3, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(2,), num_heads=4, num_classes="continuous", use_scale_shift_norm=True,
        resblock_updown=True, norm_groups=8,
    ),
    "pooling+classes+uneven_res": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=(1, 2, 1),
        attention_resolutions=(4,), num_head_channels=16, conv_resample=False, num_classes=10, norm_groups=8,
    ),
    "1d": UNetConfig(
        in_channels=2, out_channels=2, model_channels=16, channel_mult=(1, 2), num_res_blocks=2,
        attention_resolutions=(2,), num_heads=2, dims=1, norm_groups=8,
    ),
    "3d": UNetConfig(
        in_channels=2, out_channels=2, model_channels=16, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(1,), num_heads=2, dims=3, norm_groups=8,
    ),
    "disabled_self_attn+partial_attention": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=2,
        attention_resolutions=(1, 2), num_head_channels=16, use_spatial_transformer=True,
        use_linear_in_transformer=True, transformer_depth=(2, 3), transformer_depth_middle=1, context_dim=48,
        disable_self_attentions=(True, False), disable_middle_self_attn=True, num_attention_blocks=(1, 2),
        norm_groups=8,
    ),
    "per_block_context": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(1, 2), num_heads=4, use_spatial_transformer=True, transformer_depth=2,
        context_dim=(24, 40), norm_groups=8,
    ),
    "codebook_head": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(2,), num_heads=2, use_spatial_transformer=True, context_dim=16, n_embed=64,
    ),
    "groups_below_32": UNetConfig(
        in_channels=4, out_channels=4, model_channels=48, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(2,), num_head_channels=16, norm_groups=16,
    ),
    # The distilled and pruned relatives: no middle block; a lone middle ResBlock with depths per block.
    "no_middle": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
        attention_resolutions=(1, 2), num_head_channels=8, use_spatial_transformer=True, context_dim=16,
        norm_groups=8, middle_block=None,
    ),
    "lone_middle_resblock+depth_per_block": UNetConfig(
        in_channels=4, out_channels=4, model_channels=32, channel_mult=(1, 2, 2), num_res_blocks=2,
        attention_resolutions=(2, 4), num_head_channels=8, use_spatial_transformer=True, context_dim=16,
        norm_groups=8, middle_block="resblock", transformer_depth=(1, 2, 3),
        transformer_depth_down=((1, 1), (2, 1), (3, 3)), transformer_depth_up=((1, 1, 1), (2, 2, 2), (1, 3, 3)),
    ),
}  # fmt: skip
# Fields the shapes show; the rest (heads, groups, depths where no attention is) are chosen and noted.
VISIBLE = (
    "in_channels", "out_channels", "model_channels", "channel_mult", "num_res_blocks", "attention_resolutions",
    "conv_resample", "dims", "num_classes", "adm_in_channels", "use_scale_shift_norm", "resblock_updown",
    "use_spatial_transformer", "transformer_depth_middle", "context_dim", "use_linear_in_transformer",
    "disable_middle_self_attn", "num_attention_blocks", "n_embed", "middle_block", "transformer_depth_down",
    "transformer_depth_up",
)  # fmt: skip


@pytest.mark.parametrize("case", list(CUSTOM))
def test_custom_configs_come_back(case: str) -> None:
    cfg = CUSTOM[case]
    d = detect_unet(make_header(shapes_of(cfg), "model.diffusion_model."))
    assert (d.missing, d.unexpected, d.mismatched) == ([], [], [])
    assert {f: getattr(d.config, f) for f in VISIBLE} == {f: getattr(cfg, f) for f in VISIBLE}
    if cfg.use_spatial_transformer:
        attended = [2**level in cfg.attention_resolutions for level in range(cfg.num_levels)]
        assert [t for t, a in zip(d.config.transformer_depth, attended, strict=True) if a] == [
            t for t, a in zip(cfg.transformer_depth, attended, strict=True) if a
        ]
    if case == "disabled_self_attn+partial_attention":
        assert d.config.disable_self_attentions == (True, False)
    if case == "groups_below_32":
        assert d.config.norm_groups == 16 and any("norm_groups is invisible" in n for n in d.notes)


def test_golden_files_of_the_original_code() -> None:
    # Real state dicts written by the original code, under "state_dict."; heads are the one invisible field.
    for name in ("tiny_sd1", "tiny_ldm_uncond"):
        golden = UNetConfig.from_ldm(json.loads((DATA / f"{name}.json").read_text())["unet_params"])
        d = inspect_file(DATA / f"{name}.safetensors")
        assert (d.prefix, d.format, d.preset) == ("state_dict.", "ldm", None)
        assert (d.missing, d.unexpected, d.mismatched) == ([], [], [])
        heads = {"num_heads": golden.num_heads, "num_head_channels": golden.num_head_channels}
        assert dataclasses.replace(d.config, **heads) == golden
        assert set(d.other_keys) == {"input", "output"}


# ---- a file that fits only partly: reported, not refused ---------------------------------------------------------
def test_missing_unexpected_and_mismatched_keys_are_reported() -> None:
    header = without_offsets(make_header(preset_shapes("sd1"), "model.diffusion_model."))
    del header["model.diffusion_model.input_blocks.1.1.proj_out.bias"]
    header["model.diffusion_model.out.0.weight"]["shape"] = [321]
    header["model.diffusion_model.<img src=x onerror=alert(1)>"] = {"dtype": "F16", "shape": [1]}
    d = detect_unet(header)
    assert d.preset is None and d.config == PRESETS["sd1"].config
    assert d.missing == ["input_blocks.1.1.proj_out.bias"]
    assert d.unexpected == ["<img src=x onerror=alert(1)>"]
    assert d.mismatched == [{"key": "out.0.weight", "expected": [320], "found": [321]}]
    assert not d.exact


def test_diffusers_mismatches_are_named_in_diffusers_terms() -> None:
    shapes = diffusers_shapes("sd2")
    del shapes["down_blocks.0.resnets.0.conv1.bias"]
    shapes["conv_norm_out.weight"] = (7,)
    shapes["down_blocks.0.attentions.0.extra.weight"] = (3,)
    d = detect_unet(make_header(shapes))
    assert d.missing == ["down_blocks.0.resnets.0.conv1.bias"]
    assert d.unexpected == ["down_blocks.0.attentions.0.extra.weight"]
    assert d.mismatched == [{"key": "conv_norm_out.weight", "expected": [320], "found": [7]}]
