"""Every kind of impossible UNet configuration is a ConfigError that names its field and the offending values.

One test per class of error, through `UNetConfig(...)` (our field names), `from_dict` and `from_ldm` (the original
yaml keys) where the route matters, and `check_sample_size` for input sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sdunet_core import PRESETS, ConfigError, UNetConfig, plan_blocks

# A small valid model in our field names: two levels of width 32 and 64, attention at both.
BASE: dict[str, Any] = {
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "channel_mult": (1, 2),
    "num_res_blocks": 1,
    "attention_resolutions": (1, 2),
    "num_heads": 2,
    "norm_groups": 8,
}
SPATIAL: dict[str, Any] = {**BASE, "use_spatial_transformer": True, "context_dim": 16}


def config_error(build: Callable[[], object]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build()
    return info.value


def assert_names(exc: ConfigError, field: str, *values: object) -> None:
    """The error's field, and a message that says the field and each value."""
    assert exc.field == field
    text = str(exc)
    assert field in text, text
    for value in values:
        assert str(value) in text, (value, text)
    assert isinstance(exc, ValueError)


def test_base_configs_are_valid_and_survive_a_round_trip() -> None:
    for fields in (BASE, SPATIAL):
        config = UNetConfig(**fields)
        assert UNetConfig.from_dict(config.to_dict()) == config


def test_width_not_divisible_by_norm_groups() -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "model_channels": 20}))
    assert_names(exc, "norm_groups", "norm_groups=8", "20 channels", "model_channels=20")


def test_num_heads_not_dividing_a_width() -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "num_heads": 3}))
    assert_names(exc, "num_heads", "3 heads", "width 32", "input_blocks.1")


def test_num_heads_upsample_not_dividing_a_width() -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "num_heads_upsample": 3}))
    assert_names(exc, "num_heads_upsample", "3 heads", "width 64", "output_blocks.0")


def test_num_head_channels_not_dividing_a_width() -> None:
    exc = config_error(lambda: UNetConfig(**{**SPATIAL, "num_heads": None, "num_head_channels": 12}))
    assert_names(exc, "num_head_channels", "12", "width 32")


@pytest.mark.parametrize(("heads", "head_channels"), [(2, 8), (None, None)])
def test_exactly_one_of_num_heads_and_num_head_channels(heads: int | None, head_channels: int | None) -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "num_heads": heads, "num_head_channels": head_channels}))
    assert_names(exc, "num_heads", f"num_heads={heads}", f"num_head_channels={head_channels}")
    # The original's -1 sentinels read the same way.
    ldm = {**BASE, "num_heads": heads or -1, "num_head_channels": head_channels or -1}
    assert_names(config_error(lambda: UNetConfig.from_ldm(ldm)), "num_heads", "num_head_channels")


def test_spatial_transformer_without_context_dim() -> None:
    params = {**BASE, "use_spatial_transformer": True}
    for build in (lambda: UNetConfig(**params), lambda: UNetConfig.from_ldm(params)):
        assert_names(config_error(build), "context_dim", "spatial transformer")


def test_context_dim_without_spatial_transformer() -> None:
    params = {**BASE, "context_dim": 16}
    for build in (lambda: UNetConfig(**params), lambda: UNetConfig.from_dict(params)):
        assert_names(config_error(build), "context_dim", "16", "use_spatial_transformer")
    # The original keys with the flag said false: the same error.
    exc = config_error(lambda: UNetConfig.from_ldm({**params, "use_spatial_transformer": False}))
    assert_names(exc, "context_dim", "16")
    # Without the flag, from_ldm reads sgm's code (SDXL), where a context means spatial transformers.
    assert UNetConfig.from_ldm(params).use_spatial_transformer


@pytest.mark.parametrize(
    ("field", "value", "base"),
    [
        ("num_res_blocks", [1, 1, 1], BASE),
        ("transformer_depth", [1, 2, 1], SPATIAL),
        ("disable_self_attentions", [True], SPATIAL),
        ("num_attention_blocks", [1, 1, 1], BASE),
    ],
)
def test_per_level_list_of_the_wrong_length(field: str, value: list, base: dict[str, Any]) -> None:
    exc = config_error(lambda: UNetConfig(**{**base, field: value}))
    assert_names(exc, field, "2 levels", str(value))


@pytest.mark.parametrize(
    ("field", "value", "extra"),
    [
        ("in_channels", 0, {}),
        ("out_channels", -1, {}),
        ("model_channels", 0, {}),
        ("norm_groups", 0, {}),
        ("num_heads", 0, {}),
        ("num_head_channels", -8, {"num_heads": None}),
        ("channel_mult", [1, 0], {}),
        ("num_res_blocks", [1, 0], {}),
        ("attention_resolutions", [0, 1], {}),
        # The last level's depth is also the middle block's: the error still names transformer_depth.
        ("transformer_depth", [1, 0], {"use_spatial_transformer": True, "context_dim": 16}),
        ("transformer_depth_middle", 0, {"use_spatial_transformer": True, "context_dim": 16}),
        ("context_dim", 0, {"use_spatial_transformer": True}),
        ("num_classes", 0, {}),
        ("adm_in_channels", 0, {"num_classes": "sequential"}),
        ("n_embed", 0, {}),
    ],
)
def test_non_positive_sizes(field: str, value: Any, extra: dict[str, Any]) -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, **extra, field: value}))
    assert_names(exc, field, value)
    assert "positive" in str(exc)


def test_sequential_labels_without_adm_in_channels() -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "num_classes": "sequential"}))
    assert_names(exc, "adm_in_channels", "num_classes='sequential'")


@pytest.mark.parametrize("num_classes", [None, 10, "continuous"])
def test_adm_in_channels_without_sequential_labels(num_classes: int | str | None) -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "adm_in_channels": 16, "num_classes": num_classes}))
    assert_names(exc, "adm_in_channels", f"num_classes={num_classes!r}", "sequential")


def test_unknown_keys() -> None:
    ldm = {**PRESETS["sd1"].ldm_params, "use_flash_attention": True}
    assert_names(config_error(lambda: UNetConfig.from_ldm(ldm)), "use_flash_attention", "unknown")
    data = {**BASE, "heads": 4}
    assert_names(config_error(lambda: UNetConfig.from_dict(data)), "heads", "unknown", "num_heads")


@pytest.mark.parametrize("missing", ["in_channels", "model_channels", "num_res_blocks", "attention_resolutions"])
def test_required_keys(missing: str) -> None:
    data = {k: v for k, v in BASE.items() if k != missing}
    assert_names(config_error(lambda: UNetConfig.from_dict(data)), missing, "required")
    assert_names(config_error(lambda: UNetConfig.from_ldm(data)), missing, "required")


def test_sample_size_not_divisible() -> None:
    cfg = PRESETS["sd1"].config  # four levels: sizes must divide by 8
    cfg.check_sample_size((64, 64))
    assert_names(config_error(lambda: cfg.check_sample_size((63, 64))), "sample_size", "63", "8")
    assert_names(config_error(lambda: cfg.check_sample_size((64, 64, 64))), "sample_size", "dims=2", "[64, 64, 64]")
    assert_names(config_error(lambda: cfg.check_sample_size((0, 64))), "sample_size", "[0, 64]")
    # 3D models resample height and width only: any number of frames.
    UNetConfig(**{**BASE, "dims": 3}).check_sample_size((3, 8, 8))


@pytest.mark.parametrize(
    ("changes", "field", "values"),
    [
        ({"dims": 4}, "dims", ["4"]),
        ({"dropout": 1.5}, "dropout", ["1.5"]),
        ({"channel_mult": (2, 4)}, "channel_mult", ["[2, 4]"]),
        ({"channel_mult": ()}, "channel_mult", ["[]"]),
        ({"channel_mult": 2}, "channel_mult", ["2"]),
        ({"model_channels": True}, "model_channels", ["True"]),
        ({"in_channels": None}, "in_channels", ["None"]),
        ({"norm_groups": None}, "norm_groups", ["None"]),
        ({"num_res_blocks": [1, "2"]}, "num_res_blocks", ["'2'"]),
        ({"conv_resample": "yes"}, "conv_resample", ["'yes'"]),
        ({"num_classes": "text"}, "num_classes", ["'text'"]),
        ({"num_heads": None, "num_head_channels": 8, "num_heads_upsample": 4}, "num_heads_upsample", []),
        ({"disable_self_attentions": (True, False)}, "disable_self_attentions", ["use_spatial_transformer"]),
        ({"use_linear_in_transformer": True}, "use_linear_in_transformer", ["use_spatial_transformer"]),
        ({**SPATIAL, "dims": 3}, "dims", ["dims=3"]),
        ({**SPATIAL, "context_dim": 1.5}, "context_dim", ["1.5"]),
        ({"num_res_blocks": 2, "num_attention_blocks": (1, 3)}, "num_attention_blocks", ["3", "num_res_blocks[1]=2"]),
    ],
)
def test_other_invalid_values(changes: dict[str, Any], field: str, values: list[str]) -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, **changes}))
    assert_names(exc, field, *values)


@pytest.mark.parametrize("build", [UNetConfig.from_ldm, UNetConfig.from_dict])
def test_not_a_mapping(build: Callable[[Any], UNetConfig]) -> None:
    exc = config_error(lambda: build([("in_channels", 4)]))
    assert "must be a mapping" in str(exc) and "list" in str(exc)


def test_per_block_context_widths_must_match_every_depth() -> None:

    base = {
        **UNetConfig.from_ldm(
            {
                "in_channels": 4,
                "out_channels": 4,
                "model_channels": 32,
                "num_res_blocks": 1,
                "attention_resolutions": [1, 2],
                "channel_mult": [1, 2],
                "num_head_channels": 8,
                "transformer_depth": 2,
                "context_dim": 16,
            }
        ).to_dict()
    }
    assert UNetConfig.from_dict({**base, "context_dim": [16, 24]}).context_dims_for(2) == [16, 24]
    with pytest.raises(ConfigError) as info:
        UNetConfig.from_dict({**base, "context_dim": [16, 24, 32]})
    assert info.value.field == "context_dim"
    assert "[16, 24, 32]" in str(info.value) and "[2]" in str(info.value)


def test_dims_must_be_an_integer() -> None:

    params = {
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "num_res_blocks": 1,
        "attention_resolutions": [],
        "channel_mult": [1, 2],
        "num_heads": 1,
        "dims": 2.0,
    }
    with pytest.raises(ConfigError) as info:
        UNetConfig.from_ldm(params)
    assert info.value.field == "dims" and "2.0" in str(info.value)


def test_transformer_depth_may_be_zero_where_there_is_no_attention() -> None:
    # SDXL-style yaml: the attention-free first level writes depth 0, as sgm's UNetModel accepts.
    params = {**PRESETS["sdxl-base"].ldm_params, "transformer_depth": [0, 2, 10]}
    cfg = UNetConfig.from_ldm(params)
    assert cfg.transformer_depth == (0, 2, 10)
    # The depth at the level without attention changes nothing: the same blocks as the released config.
    released = PRESETS["sdxl-base"].config
    assert [b.attention for b in plan_blocks(cfg)] == [b.attention for b in plan_blocks(released)]
    # Where there is attention, depth 0 is still refused.
    exc = config_error(lambda: UNetConfig.from_ldm({**params, "transformer_depth": [0, 0, 10]}))
    assert_names(exc, "transformer_depth", "level 1")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_res_blocks": 1_000_000}, "num_res_blocks"),
        ({"in_channels": 2**62}, "in_channels"),
        ({"out_channels": 2**62}, "out_channels"),
        ({"model_channels": 2**60}, "model_channels"),
        ({"channel_mult": [1] * 100}, "channel_mult"),
        ({"channel_mult": [1, 2**40]}, "channel_mult"),
        ({"num_classes": 2**62}, "num_classes"),
        ({"num_classes": "sequential", "adm_in_channels": 2**62}, "adm_in_channels"),
        ({**SPATIAL, "context_dim": 2**62}, "context_dim"),
        ({**SPATIAL, "transformer_depth": 10_000}, "transformer_depth"),
    ],
)
def test_sizes_over_the_limits_are_refused_before_planning(changes: dict[str, Any], field: str) -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, **changes}))
    assert exc.field == field
    assert "limit" in exc.reason
    assert len(str(exc)) < 300  # a short message, whatever the value


# ---- what only the relatives of the released UNets have: no middle block, per-block transformer depths -----------
def test_to_ldm_refuses_what_the_original_cannot_build() -> None:
    for changes, field in (
        ({"middle_block": None}, "middle_block"),
        ({"middle_block": "resblock"}, "middle_block"),
        ({"transformer_depth_down": [[2], 1]}, "transformer_depth_down"),
        ({"transformer_depth_up": [[1, 2], 1]}, "transformer_depth_up"),
    ):
        config = UNetConfig(**{**SPATIAL, **changes})
        exc = config_error(config.to_ldm)
        assert_names(exc, field)
        assert config.to_ldm_or_none() is None
        assert UNetConfig.from_dict(config.to_dict()) == config
    assert UNetConfig(**SPATIAL).to_ldm_or_none() == UNetConfig(**SPATIAL).to_ldm()


def test_from_ldm_does_not_take_our_variant_fields() -> None:
    ldm = UNetConfig(**SPATIAL).to_ldm()
    exc = config_error(lambda: UNetConfig.from_ldm({**ldm, "middle_block": None}))
    assert_names(exc, "middle_block")


@pytest.mark.parametrize(
    ("changes", "field", "values"),
    [
        ({"middle_block": "transformer"}, "middle_block", ["'transformer'"]),
        ({"middle_block": None, "transformer_depth_middle": 2}, "transformer_depth_middle", ["None"]),
        ({"middle_block": "resblock", "disable_middle_self_attn": True}, "disable_middle_self_attn", []),
        ({"transformer_depth_down": [[1, 1], 1]}, "transformer_depth_down", ["level 0", "1 entries", "[1, 1]"]),
        ({"transformer_depth_up": [[1], 1]}, "transformer_depth_up", ["level 0", "2 entries", "[1]"]),
        ({"transformer_depth_up": [1, 1, 1]}, "transformer_depth_up", ["one entry per level"]),
        ({"transformer_depth_up": 2}, "transformer_depth_up", ["one entry per level"]),
        ({"transformer_depth_down": [[0], 1]}, "transformer_depth_down", ["level 0, down block 0", "at least 1"]),
        ({"transformer_depth_up": [[1, 0], 1]}, "transformer_depth_up", ["level 0, up block 1"]),
        ({"transformer_depth_up": [[1, -1], 1]}, "transformer_depth_up", ["-1"]),
        ({"transformer_depth_up": [[1, 999], 1]}, "transformer_depth_up", ["999"]),
        ({"transformer_depth_up": [[1, True], 1]}, "transformer_depth_up", ["integers"]),
    ],
)
def test_variant_fields(changes: dict[str, Any], field: str, values: list[str]) -> None:
    assert_names(config_error(lambda: UNetConfig(**{**SPATIAL, **changes})), field, *values)


def test_per_block_depths_are_only_for_spatial_transformers() -> None:
    exc = config_error(lambda: UNetConfig(**{**BASE, "transformer_depth_up": [1, 1]}))
    assert_names(exc, "transformer_depth_up", "use_spatial_transformer")


def test_per_block_depths_reach_the_plan_and_the_middle_block_may_go() -> None:
    config = UNetConfig(**{**SPATIAL, "middle_block": None, "transformer_depth_up": [[1, 3], 2]})
    blocks = plan_blocks(config)
    assert "middle_block" not in [b.path for b in blocks]
    ups = [(b.level, b.position, b.attention[0].depth) for b in blocks if b.stage == "up"]
    assert ups == [(1, 0, 2), (1, 1, 2), (0, 0, 1), (0, 1, 3)]
    lone = plan_blocks(UNetConfig(**{**SPATIAL, "middle_block": "resblock"}))
    assert [b.attention for b in lone if b.path == "middle_block"] == [()]
