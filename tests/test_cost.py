"""sdunet_core.tracer.cost against real traces: the estimate made from the config alone equals what a built model and a
traced forward report (modules, parameters, activation bytes), for presets of every family and for custom
configs with the options the presets leave out (1D and 3D, resampling ResBlocks, pooling, a codebook head)."""

from __future__ import annotations

import pytest

from sdunet_core import PRESETS, UNetConfig
from sdunet_core.tracer.cost import estimate_cost
from sdunet_core.tracer.trace import trace_unet


def _check(config: UNetConfig, sample_size: tuple[int, ...], batch: int, tokens: int | None) -> None:
    cost = estimate_cost(config, sample_size, batch=batch, context_tokens=tokens)
    trace = trace_unet(config, sample_size=sample_size, batch=batch, context_tokens=tokens)
    assert cost.modules == len(trace.nodes)
    assert cost.params == trace.totals.params
    assert cost.activation_bytes == trace.totals.activation_bytes


@pytest.mark.parametrize(
    "name",
    # SD 1.x; SDXL (levels without attention, depth 10, pooled conditioning); a class-conditional LDM with one
    # context token; plain attention blocks; resampling ResBlocks with scale-shift; disabled self-attention.
    ["sd1", "sdxl-base", "ldm-cin256", "ldm-celebahq", "ldm-churches", "sd-x4-upscaler", "tiny"],
)
def test_presets(name: str) -> None:
    p = PRESETS[name]
    _check(p.config, p.sample_size, 1, p.context_tokens)


def test_batch_and_another_input_size() -> None:
    _check(PRESETS["sd2"].config, (48, 32), 3, 10)


@pytest.mark.parametrize(
    "config,size",
    [
        (  # 1D, resampling ResBlocks, a continuous class input
            UNetConfig(
                in_channels=3,
                out_channels=3,
                model_channels=32,
                channel_mult=(1, 2),
                num_res_blocks=(2,),
                attention_resolutions=(1,),
                num_heads=2,
                dims=1,
                norm_groups=8,
                resblock_updown=True,
                num_classes="continuous",
            ),
            (32,),
        ),
        (  # 3D (height and width resampled, not the first axis) with a codebook head
            UNetConfig(
                in_channels=3,
                out_channels=3,
                model_channels=32,
                channel_mult=(1, 2),
                num_res_blocks=(1,),
                attention_resolutions=(2,),
                num_heads=2,
                dims=3,
                norm_groups=8,
                n_embed=16,
            ),
            (4, 16, 16),
        ),
        (  # average pooling and plain nearest upsampling (conv_resample=False)
            UNetConfig(
                in_channels=4,
                out_channels=4,
                model_channels=32,
                channel_mult=(1, 2, 2),
                num_res_blocks=(1, 2, 1),
                attention_resolutions=(4,),
                num_head_channels=16,
                norm_groups=8,
                conv_resample=False,
            ),
            (16, 16),
        ),
    ],
    ids=["1d-updown", "3d-codebook", "pooling"],
)
def test_custom_configs(config: UNetConfig, size: tuple[int, ...]) -> None:
    _check(config, size, 2, None)


@pytest.mark.parametrize(
    "changes",
    [
        {"middle_block": None},
        {"middle_block": "resblock", "transformer_depth_up": ((1, 2, 3), (2, 1, 1))},
        {"transformer_depth_down": ((1, 2), (3, 1))},
    ],
    ids=["no-middle", "lone-resblock-middle", "per-block-depth"],
)
def test_variant_configs(changes: dict) -> None:
    base = dict(
        in_channels=4,
        out_channels=4,
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=2,
        attention_resolutions=(1, 2),
        num_head_channels=8,
        norm_groups=8,
        use_spatial_transformer=True,
        context_dim=16,
    )
    _check(UNetConfig(**base, **changes), (16, 16), 2, 5)


def test_element_size_scales_activations() -> None:
    config = PRESETS["tiny"].config
    assert (
        estimate_cost(config, (16, 16), element_bytes=2).activation_bytes * 2
        == estimate_cost(config, (16, 16)).activation_bytes
    )
