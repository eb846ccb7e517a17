"""A model from a diffusers config.json: `config_from_diffusers` against diffusers' own UNet2DConditionModel built on
the meta device from the same config (parameter count and every state-dict key, through our key map), what is not
covered named by its key, and the config accepted by POST /api/trace and `sdunet-explorer trace`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from sdunet_core import PRESETS, ConfigError, UNetModel, plan_blocks
from sdunet_core.checkpoint.diffusers_keys import keymap_for
from sdunet_core.model.diffusers_config import DEFAULTS, IGNORED, MUST_BE, config_from_diffusers
from sdunet_core.tracer.trace import trace_unet
from tests.diffusers_configs import DIFFUSERS_CONFIGS

diffusers = pytest.importorskip("diffusers")

# A small U that says what the original layout cannot: per-layer transformer depths down, other ones up, one
# middle ResBlock, two-level heads of one width, scale-shift norm.
ASYMMETRIC: dict[str, Any] = {
    "block_out_channels": [32, 64, 64],
    "layers_per_block": [1, 2, 1],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "mid_block_type": "UNetMidBlock2D",
    "transformer_layers_per_block": [2, [1, 3], 1],
    "reverse_transformer_layers_per_block": [1, [2, 1, 1], [1, 2]],
    "attention_head_dim": [2, 4, 4],
    "cross_attention_dim": 16,
    "norm_num_groups": 8,
    "use_linear_projection": True,
    "resnet_time_scale_shift": "scale_shift",
}
NO_MIDDLE: dict[str, Any] = {**ASYMMETRIC, "mid_block_type": None, "resnet_time_scale_shift": "default"}


def diffusers_shapes(raw: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**raw)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def our_shapes_in_diffusers_names(raw: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    config = config_from_diffusers(raw)
    keymap = keymap_for(config)
    assert keymap is not None
    with torch.device("meta"):
        model = UNetModel(config)
    return {keymap.to_diffusers(k): tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", sorted(DIFFUSERS_CONFIGS))
def test_released_models_come_back_as_their_presets(name: str) -> None:
    config = config_from_diffusers(DIFFUSERS_CONFIGS[name])
    assert plan_blocks(config) == plan_blocks(PRESETS[name].config)
    # Ours with the diffusers names has exactly diffusers' keys and shapes.
    assert our_shapes_in_diffusers_names(DIFFUSERS_CONFIGS[name]) == diffusers_shapes(DIFFUSERS_CONFIGS[name])


def test_sd1_and_sdxl_are_field_for_field_their_presets() -> None:
    assert config_from_diffusers(DIFFUSERS_CONFIGS["sd1"]) == PRESETS["sd1"].config
    assert config_from_diffusers(DIFFUSERS_CONFIGS["sdxl-base"]) == PRESETS["sdxl-base"].config


@pytest.mark.parametrize("raw", [ASYMMETRIC, NO_MIDDLE], ids=["asymmetric", "no-middle"])
def test_what_the_original_cannot_say_equals_diffusers(raw: dict[str, Any]) -> None:
    config = config_from_diffusers(raw)
    assert config.to_ldm_or_none() is None
    assert our_shapes_in_diffusers_names(raw) == diffusers_shapes(raw)


def test_asymmetric_depths_land_where_diffusers_puts_them() -> None:
    config = config_from_diffusers(ASYMMETRIC)
    assert config.middle_block == "resblock" and config.num_head_channels == 16 and config.use_scale_shift_norm
    assert config.transformer_depth_down == ((2,), (1, 3), (1,))
    # reverse_transformer_layers_per_block runs from the lowest level; ours from level 0.
    assert config.transformer_depth_up == ((1, 2), (2, 1, 1), (1, 1))
    depths = {(b.stage, b.level, b.position): b.attention[0].depth for b in plan_blocks(config) if b.attention}
    assert depths == {
        ("down", 0, 0): 2,
        ("down", 1, 0): 1,
        ("down", 1, 1): 3,
        ("up", 1, 0): 2,
        ("up", 1, 1): 1,
        ("up", 1, 2): 1,
        ("up", 0, 0): 1,
        ("up", 0, 1): 2,
    }


@pytest.mark.parametrize(
    ("changes", "field", "said"),
    [
        ({"down_block_types": ["SimpleCrossAttnDownBlock2D", "DownBlock2D"]}, "down_block_types", "block 0"),
        ({"up_block_types": ["UpBlock2D", "AttnUpBlock2D"]}, "up_block_types", "AttnUpBlock2D"),
        ({"up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}, "up_block_types", "same levels"),
        ({"down_block_types": ["DownBlock2D"]}, "down_block_types", "one entry per block"),
        ({"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}, "mid_block_type", "not covered"),
        ({"block_out_channels": [32, 48]}, "block_out_channels", "not a multiple"),
        ({"block_out_channels": [32, -64]}, "block_out_channels", "positive"),
        ({"layers_per_block": [1]}, "layers_per_block", "one entry per block"),
        ({"layers_per_block": 0}, "layers_per_block", "positive"),
        ({"attention_head_dim": [3, 8]}, "attention_head_dim", "3 heads do not divide the width 32"),
        ({"attention_head_dim": [2, 8]}, "attention_head_dim", "neither"),
        ({"num_attention_heads": 8}, "num_attention_heads", "not covered"),
        ({"cross_attention_dim": [16, 32]}, "cross_attention_dim", "per block"),
        ({"transformer_layers_per_block": [[1, 2], 1]}, "reverse_transformer_layers_per_block", "is needed"),
        ({"transformer_layers_per_block": [0, 1]}, "transformer_layers_per_block", "0 transformer layers"),
        ({"transformer_layers_per_block": [1, [1]]}, "transformer_layers_per_block", "block 1 needs"),
        ({"class_embed_type": "timestep"}, "class_embed_type", "'timestep'"),
        ({"addition_embed_type": "text_image"}, "addition_embed_type", "'text_image'"),
        ({"addition_embed_type": "text_time"}, "addition_time_embed_dim", "needs it"),
        ({"resnet_time_scale_shift": "ada_group"}, "resnet_time_scale_shift", "'ada_group'"),
        ({"act_fn": "gelu"}, "act_fn", "'gelu'"),
        ({"conv_in_kernel": 7}, "conv_in_kernel", "7"),
        ({"time_embedding_type": "fourier"}, "time_embedding_type", "'fourier'"),
        ({"encoder_hid_dim_type": "text_proj"}, "encoder_hid_dim_type", "'text_proj'"),
        ({"norm_num_groups": 7}, "norm_num_groups", "norm_groups=7"),
        ({"in_channels": 0}, "in_channels", "positive"),
        ({"_class_name": "ControlNetModel"}, "_class_name", "'ControlNetModel'"),
        ({"not_a_key": 1}, "not_a_key", "unknown key"),
    ],
)
def test_what_is_not_covered_is_named_by_its_key(changes: dict[str, Any], field: str, said: str) -> None:
    base = {
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "attention_head_dim": 2,
        "cross_attention_dim": 16,
        "norm_num_groups": 8,
    }
    config_from_diffusers(base)  # the base is fine
    with pytest.raises(ConfigError) as info:
        config_from_diffusers({**base, **changes})
    assert info.value.field == field
    assert said in info.value.reason, info.value.reason


def test_settings_without_parameters_are_read_and_left_out() -> None:
    raw = {**DIFFUSERS_CONFIGS["sd1"], "sample_size": 64, "upcast_attention": True, "_diffusers_version": "0.6.0"}
    assert config_from_diffusers(raw) == PRESETS["sd1"].config


# ---- the API and the command line ----------------------------------------------------------------------------
def test_trace_by_diffusers_config_equals_the_preset(client) -> None:
    same = {"sample_size": [64, 64], "context_tokens": 77}
    by_preset = client.post("/api/trace", json={"preset": "sd1"}).json()
    r = client.post("/api/trace", json={"diffusers_config": DIFFUSERS_CONFIGS["sd1"], **same})
    assert r.status_code == 200
    assert r.json() == {**by_preset, "preset": None}


def test_trace_of_a_config_the_original_cannot_say(client) -> None:
    r = client.post("/api/trace", json={"diffusers_config": NO_MIDDLE, "sample_size": [16, 16]})
    assert r.status_code == 200
    body = r.json()
    assert body["ldm_params"] is None and body["config"]["middle_block"] is None
    assert "middle_block" not in [b["path"] for b in body["blocks"]]
    assert body["totals"]["params"] == sum(diffusers_shapes_numel(NO_MIDDLE))


def diffusers_shapes_numel(raw: dict[str, Any]) -> list[int]:
    return [int(torch.Size(s).numel()) for s in diffusers_shapes(raw).values()]


@pytest.mark.parametrize(
    ("body", "status", "field", "said"),
    [
        ({"diffusers_config": {**NO_MIDDLE, "mid_block_type": "X"}}, 422, "mid_block_type", "'X'"),
        ({"diffusers_config": {**NO_MIDDLE, "layers_per_block": 10**6}}, 422, "layers_per_block", "limit"),
        ({"diffusers_config": {**NO_MIDDLE, "block_out_channels": [32] * 1000}}, 422, "block_out_channels", "1000"),
        ({"diffusers_config": {"transformer_layers_per_block": [[[1]]]}}, 422, "transformer_layers_per_block", ""),
        ({"diffusers_config": DIFFUSERS_CONFIGS["sd1"], "preset": "sd1"}, 422, "preset", "diffusers_config"),
        ({"diffusers_config": []}, 422, "diffusers_config", ""),
    ],
)
def test_bad_diffusers_configs_are_4xx_naming_the_key(client, body: dict, status: int, field: str, said: str) -> None:
    r = client.post("/api/trace", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert said in r.json()["reason"]


def test_cli_traces_a_diffusers_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(DIFFUSERS_CONFIGS["sd1"]))
    out = tmp_path / "trace.json"
    assert main(["trace", "--diffusers-config", str(path), "--size", "64", "64", "--json", str(out)]) == 0
    assert f"config.json: {PRESETS['sd1'].num_parameters:,} params" in capsys.readouterr().out
    assert json.loads(out.read_text())["totals"] == json.loads(trace_unet("sd1").to_json())["totals"]
    path.write_text(json.dumps({**DIFFUSERS_CONFIGS["sd1"], "act_fn": "gelu"}))
    assert main(["trace", "--diffusers-config", str(path)]) == 2
    assert "act_fn" in capsys.readouterr().err
    assert main(["trace", "sd1", "--diffusers-config", str(path)]) == 2
    assert "exactly one" in capsys.readouterr().err


def test_a_diffusers_config_over_the_module_limit_is_413_before_building(client) -> None:
    # Valid, but 4 levels of 200 res blocks: refused from the estimate alone, naming the request field.
    big = {**NO_MIDDLE, "block_out_channels": [32] * 4, "layers_per_block": 200, "attention_head_dim": 2}
    big["down_block_types"] = ["CrossAttnDownBlock2D"] * 2 + ["DownBlock2D"] * 2
    big["up_block_types"] = ["UpBlock2D"] * 2 + ["CrossAttnUpBlock2D"] * 2
    big["transformer_layers_per_block"], big["reverse_transformer_layers_per_block"] = 1, None
    r = client.post("/api/trace", json={"diffusers_config": big})
    assert (r.status_code, r.json()["field"]) == (413, "diffusers_config")
    assert "over the limit of 20,000 (SDUNET_MAX_MODULES)" in r.json()["reason"]


def test_per_block_depths_in_our_config_are_bounded_before_validation(client) -> None:
    config = {**PRESETS["tiny"].config.to_dict(), "transformer_depth_up": [[1]] * 100}
    r = client.post("/api/trace", json={"config": config})
    assert (r.status_code, r.json()["field"]) == (422, "transformer_depth_up")


def test_the_config_sample_size_is_the_default_input(client) -> None:
    # A variant preset is its diffusers config: traced by that config (sample_size 128), it is the preset's trace.
    raw = PRESETS["segmind-vega"].diffusers_config
    by_config = client.post("/api/trace", json={"diffusers_config": raw})
    assert by_config.status_code == 200
    assert by_config.json() == {**client.post("/api/trace", json={"preset": "segmind-vega"}).json(), "preset": None}
    assert by_config.json()["input"]["sample_size"] == [128, 128]
    r = client.post("/api/trace", json={"diffusers_config": {**NO_MIDDLE, "sample_size": [16]}})
    assert (r.status_code, r.json()["field"]) == (422, "sample_size")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3000) | st.floats(-2, 2) | st.sampled_from(["", "silu", "X"]),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=12,
)
_KEYS = sorted({*DEFAULTS, *MUST_BE, *IGNORED})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=4))
def test_any_values_are_a_config_or_a_config_error(changes: dict[str, Any]) -> None:
    small = {**NO_MIDDLE, "sample_size": 16}
    try:
        config_from_diffusers({**small, **changes})
    except ConfigError as exc:
        assert exc.field and exc.reason
