"""Checkpoint detection: headers of every preset in both key formats detect back to the preset; the diffusers
key map equals a real UNet2DConditionModel; corrupted headers fail with their own error; real files through the
CLI. Headers are built from UNetModel on the meta device (shapes only), once per preset."""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from sdunet_core import PRESETS, UNetConfig, UNetModel
from sdunet_core.checkpoint.detect import CheckpointError, detect_unet, inspect_file
from sdunet_core.checkpoint.diffusers_keys import from_diffusers_name, keymap_for, to_diffusers_name
from sdunet_core.checkpoint.header import parse_safetensors_header, read_safetensors_header
from tests.conftest import DATA, ROOT
from tests.diffusers_configs import DIFFUSERS_CONFIGS

Shapes = dict[str, tuple[int, ...]]


@cache
def shapes_of(config: UNetConfig) -> Shapes:
    with torch.device("meta"):
        model = UNetModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def preset_shapes(name: str) -> Shapes:
    return shapes_of(PRESETS[name].config)


def diffusers_shapes(name: str) -> Shapes:
    keymap = keymap_for(PRESETS[name].config)
    assert keymap is not None
    return {keymap.to_diffusers(k): s for k, s in preset_shapes(name).items()}


def make_header(shapes: Shapes, prefix: str = "", dtype: str = "F16", extra: Shapes | None = None) -> dict:
    """A safetensors header with consecutive data_offsets, UNet tensors under `prefix`, `extra` as they are."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    size = {"F16": 2, "F32": 4, "BF16": 2}[dtype]
    for name, shape in [*((prefix + k, s) for k, s in shapes.items()), *(extra or {}).items()]:
        n = math.prod(shape) * size
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    return header


def without_offsets(header: dict) -> dict:
    """The header with no data_offsets (a header that is edited by hand cannot keep them tiling the data)."""
    return {
        k: {f: v for f, v in e.items() if f != "data_offsets"} if k != "__metadata__" else e for k, e in header.items()
    }


def header_bytes(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


# Parts of a full Stable Diffusion file that are not the UNet (a few tensors each is enough).
VAE = {
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3),
    "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
}
CLIP = {
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "conditioner.embedders.1.model.token_embedding.weight": (49408, 1280),
}
DIFFUSERS_EXTRA = {
    "vae.encoder.conv_in.weight": (128, 3, 3, 3),
    "text_encoder.text_model.embeddings.token_embedding.weight": (49408, 768),
}
DIFFUSERS_PRESETS = [name for name, p in PRESETS.items() if keymap_for(p.config) is not None]


def block_of(key: str) -> str:
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] in ("input_blocks", "output_blocks") else parts[0]


def same_config_presets(name: str) -> list[str]:
    return [n for n, p in PRESETS.items() if p.config == PRESETS[name].config]


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


# ---- corrupted headers ---------------------------------------------------------------------------------------------
def _length(n: int) -> bytes:
    return struct.pack("<Q", n)


GOOD = {"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"abc", "header_length", "a safetensors file starts with 8 length bytes, got 3 bytes"),
        (b"PK\x03\x04 this is a zip, not safetensors", "header_length", "not a plausible header length"),
        (_length(2**40) + b"{}", "header_length", "1099511627776 bytes is not a plausible header length"),
        (
            _length(100) + b'{"w": 1}',
            "header_length",
            "says 100 header bytes, but only 8 follow: the file is truncated",
        ),
        (_length(8) + b"not json", "header", "is not JSON: Expecting value at line 1 column 1"),
        (_length(2) + b"\xff\xfe", "header", "is not UTF-8 text (byte 0)"),
        (_length(5) + b"[1,2]", "header", "must be a JSON object of tensor entries, got a list"),
        (header_bytes({"w": [1]}), "w", "must be an object with dtype and shape, got a list"),
        (header_bytes({"w": {"shape": [1]}}), "w.dtype", "is missing"),
        (header_bytes({"w": {"dtype": "F16"}}), "w.shape", "is missing"),
        (header_bytes({"w": {"dtype": "F17", "shape": [1]}}), "w.dtype", "unknown dtype 'F17'"),
        (header_bytes({"w": {"dtype": "F16", "shape": [-1]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [1.5]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [True]}}), "w.shape", "must be a list of non-negative integers"),
        (header_bytes({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0]}}), "w.data_offsets", "[begin, end]"),
        (
            header_bytes({"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 10]}}),
            "w.data_offsets",
            "[0, 10] spans 10 bytes, but F16 [2, 3] takes 12",
        ),
        (header_bytes({**GOOD, "__metadata__": {"a": 1}}), "__metadata__", "must be an object of string values"),
        (_length(200_000) + b"[" * 100_000 + b"]" * 100_000, "header", "JSON nested too deeply"),
    ],
)
def test_corrupted_headers_fail_with_their_error(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(CheckpointError) as err:
        parse_safetensors_header(data)
    assert err.value.field == field
    assert reason in err.value.reason
    assert isinstance(err.value, ValueError)


def test_truncated_file_data_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes(header_bytes(GOOD) + b"\0" * 11)  # one byte short of the 12 the tensor needs
    with pytest.raises(CheckpointError, match="ends at byte 12 of the data, but the file holds 11") as err:
        read_safetensors_header(path)
    assert err.value.field == "w.data_offsets"
    path.write_bytes(header_bytes(GOOD) + b"\0" * 12)
    assert read_safetensors_header(path) == GOOD


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (VAE, "first_stage_model (3 tensors, the VAE)"),
        (CLIP, "cond_stage_model (1 tensors, the text encoder), conditioner (1 tensors, the text encoders (SDXL))"),
        ({**VAE, "x": (1,)}, "the file holds first_stage_model (3 tensors, the VAE), x (1 tensors)"),
        ({}, "the file holds no tensors"),
    ],
)
def test_no_unet_is_an_error_that_says_what_the_file_holds(extra: Shapes, said: str) -> None:
    with pytest.raises(CheckpointError) as err:
        detect_unet(make_header({}, extra=extra))
    assert err.value.field == "header"
    assert err.value.reason.startswith("no UNet found: no time_embed.0.weight beside input_blocks.0.0.weight")
    assert said in err.value.reason


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        ({"time_embed.0.weight": [1280]}, "time_embed.0.weight", "expected a 2-d tensor, found [1280]"),
        ({"input_blocks.0.0.weight": [300, 4, 3, 3]}, "input_blocks.0.0.weight", "makes 300 channels, but"),
        ({"input_blocks.4.0.in_layers.2.weight": [650, 320, 3, 3]}, "input_blocks.4.0.in_layers.2.weight", "multiple"),
        ({"out.2.weight": None}, "shapes", "out.2.weight is missing"),
        ({"label_emb.weight": [1280]}, "label_emb.weight", "expected a 2-d tensor"),
        ({"input_blocks.1.0.emb_layers.1.weight": [100, 1280]}, "input_blocks.1.0.emb_layers.1.weight", "320 or 640"),
    ],
)  # fmt: skip
def test_shapes_that_fit_no_unet(edit: dict, field: str, reason: str) -> None:
    shapes = dict(preset_shapes("sd1"))
    for key, shape in edit.items():
        if shape is None:
            del shapes[key]
        else:
            shapes[key] = tuple(shape)
    with pytest.raises(CheckpointError) as err:
        detect_unet(make_header(shapes, "model.diffusion_model."))
    assert (err.value.field, reason in err.value.reason) == (field, True), err.value


def test_output_blocks_that_do_not_make_a_u() -> None:
    shapes = {k: s for k, s in preset_shapes("tiny").items() if not k.startswith("output_blocks.8.")}
    with pytest.raises(CheckpointError, match="do not make a U") as err:
        detect_unet(make_header(shapes))
    assert err.value.field == "shapes"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_headers_are_reported_or_refused_never_crash(data: st.DataObject) -> None:
    shapes = dict(preset_shapes("tiny"))
    keys = sorted(shapes)
    for key in data.draw(st.lists(st.sampled_from(keys), max_size=6, unique=True)):
        action = data.draw(st.sampled_from(["drop", "reshape", "rank"]))
        if action == "drop":
            del shapes[key]
        elif action == "reshape":
            shapes[key] = tuple(max(0, d + data.draw(st.integers(-3, 3))) for d in shapes[key])
        else:
            shapes[key] = shapes[key][:-1] if len(shapes[key]) > 1 else (*shapes[key], 1)
    try:
        d = detect_unet(make_header(shapes))
    except CheckpointError:
        return
    json.dumps(d.to_dict())


# ---- real files, through the CLI -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = UNetModel(PRESETS["tiny"].config)
    return {f"model.diffusion_model.{k}": v.half() for k, v in model.state_dict().items()}


def test_cli_inspects_a_real_safetensors_file(tmp_path: Path, tiny_weights: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file({**tiny_weights, "first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3)}, path)
    out = subprocess.run(
        [sys.executable, "-m", "app", "inspect", str(path), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert (d["prefix"], d["format"], d["preset"], d["exact"]) == ("model.diffusion_model.", "ldm", "tiny", True)
    assert d["config"] == PRESETS["tiny"].config.to_dict()
    assert d["other_keys"] == {"first_stage_model": 1}
    assert d["total_bytes"] == sum(t.numel() * 2 for t in tiny_weights.values())
    assert d["metadata"] == {}


def test_cli_human_output(tmp_path: Path, tiny_weights: dict, capsys: pytest.CaptureFixture) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file({k.removeprefix("model.diffusion_model."): v for k, v in tiny_weights.items()}, path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("UNet under '' (original names): preset tiny\n")
    assert "  model_channels: 32\n" in out
    assert "loads into UNetModel(config) with strict=True" in out


def test_ckpt_is_read_with_weights_only(tmp_path: Path, tiny_weights: dict, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": tiny_weights, "global_step": 7, "epoch": 1}, path)
    assert main(["inspect", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["preset"], d["exact"], d["bytes_by_dtype"]) == ("tiny", True, {"F16": d["total_bytes"]})
    legacy = tmp_path / "legacy.pt"  # the pre-zip format cannot be memory-mapped: read without mmap
    torch.save(tiny_weights, legacy, _use_new_zipfile_serialization=False)
    assert inspect_file(legacy).preset == "tiny"


UNPICKLED: list[str] = []


def _record_unpickling() -> None:
    UNPICKLED.append("ran")


class _Payload:
    """An object whose unpickling would run code: weights_only must refuse it before that."""

    def __reduce__(self) -> tuple:
        return (_record_unpickling, ())


def test_ckpt_with_objects_is_refused_without_running_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "callbacks": _Payload()}, path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "file: holds Python objects other than tensors, which are never unpickled here" in err
    assert UNPICKLED == []


def test_cli_refuses_a_file_that_is_neither(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough")
    assert main(["inspect", str(path)]) == 2
    assert "header_length: " in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "nowhere.safetensors")]) == 2
