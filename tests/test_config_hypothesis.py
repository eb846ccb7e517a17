"""Property tests for UNetConfig: any valid configuration builds and runs, anything else is a ConfigError.

`valid_configs` draws small but varied architectures (widths that are multiples of norm_groups, heads that divide
every width); each must build on the meta device, pass through a forward with output shape == input shape (out
channels), accept its own sample size, and survive the yaml and dict round trips. `mutated_params` takes such a
configuration's dict or yaml form and replaces, drops or adds a few entries with arbitrary values: the result is
either a ConfigError or a configuration that builds, never a torch error or another exception.

Bounded so that the file runs in seconds: small widths, meta tensors, a few dozen examples per property.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sdunet_core import ConfigError, UNetConfig, UNetModel

META = torch.device("meta")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def valid_params(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of a valid UNetConfig, in our field names."""
    groups = draw(st.sampled_from([1, 2, 4, 8]))
    mc = groups * draw(st.integers(1, 4))  # every GroupNorm width is a sum of multiples of model_channels
    levels = draw(st.integers(1, 3))
    per_level = lambda s: st.one_of(s, st.lists(s, min_size=levels, max_size=levels))  # noqa: E731
    p: dict[str, Any] = {
        "in_channels": draw(st.integers(1, 5)),
        "out_channels": draw(st.integers(1, 5)),
        "model_channels": mc,
        "norm_groups": groups,
        "channel_mult": [1, *draw(st.lists(st.integers(1, 3), min_size=levels - 1, max_size=levels - 1))],
        "num_res_blocks": draw(per_level(st.integers(1, 2))),
        "attention_resolutions": draw(st.lists(st.sampled_from([1, 2, 4, 8]), max_size=3)),
        "conv_resample": draw(st.booleans()),
        "use_scale_shift_norm": draw(st.booleans()),
        "resblock_updown": draw(st.booleans()),
    }
    # Heads that divide model_channels divide every width.
    if draw(st.booleans()):
        p["num_heads"] = draw(st.sampled_from(divisors(mc)))
    else:
        p["num_head_channels"] = draw(st.sampled_from(divisors(mc)))
    spatial = draw(st.booleans())
    if spatial:
        p["use_spatial_transformer"] = True
        p["context_dim"] = draw(st.integers(1, 24))
        p["use_linear_in_transformer"] = draw(st.booleans())
        p["transformer_depth"] = draw(per_level(st.integers(1, 2)))
        p["transformer_depth_middle"] = draw(st.none() | st.integers(1, 2))
        p["disable_self_attentions"] = draw(st.none() | st.lists(st.booleans(), min_size=levels, max_size=levels))
        p["disable_middle_self_attn"] = draw(st.booleans())
    else:
        p["dims"] = draw(st.sampled_from([1, 2, 3]))
        p["use_new_attention_order"] = draw(st.booleans())
        if "num_heads" in p and draw(st.booleans()):
            p["num_heads_upsample"] = draw(st.sampled_from(divisors(mc)))
    if draw(st.booleans()):
        nrb = p["num_res_blocks"] if isinstance(p["num_res_blocks"], list) else [p["num_res_blocks"]] * levels
        p["num_attention_blocks"] = [draw(st.integers(0, n)) for n in nrb]
    p["num_classes"] = draw(st.sampled_from([None, 3, "continuous", "sequential"]))
    if p["num_classes"] == "sequential":
        p["adm_in_channels"] = draw(st.integers(1, 8))
    p["n_embed"] = draw(st.none() | st.integers(1, 6))
    return p


def meta_inputs(cfg: UNetConfig, size: tuple[int, ...], batch: int = 2) -> dict[str, torch.Tensor | None]:
    y = None
    if cfg.num_classes == "sequential":
        y = torch.empty(batch, cfg.adm_in_channels, device=META)
    elif cfg.num_classes == "continuous":
        y = torch.empty(batch, 1, device=META)
    elif cfg.num_classes is not None:
        y = torch.zeros(batch, dtype=torch.long, device=META)
    ctx = cfg.context_width
    return {
        "x": torch.empty(batch, cfg.in_channels, *size, device=META),
        "timesteps": torch.empty(batch, device=META),
        "context": torch.empty(batch, 3, ctx, device=META) if ctx else None,
        "y": y,
    }


@SETTINGS
@given(params=valid_params(), data=st.data())
def test_valid_configs_build_and_keep_the_shape(params: dict[str, Any], data: st.DataObject) -> None:
    cfg = UNetConfig(**params)
    f = cfg.downsample_factor
    spatial = [f * data.draw(st.integers(1, 2), label="multiple") for _ in range(min(cfg.dims, 2))]
    size = tuple([data.draw(st.integers(1, 3), label="frames"), *spatial] if cfg.dims == 3 else spatial)
    cfg.check_sample_size(size)
    with META:
        model = UNetModel(cfg)
    out = model(**meta_inputs(cfg, size))
    assert out.shape == (2, cfg.n_embed or cfg.out_channels, *size)
    assert UNetConfig.from_ldm({**cfg.to_ldm(), "norm_groups": cfg.norm_groups}) == cfg
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=valid_params())
def test_replaying_repeated_blocks_changes_no_record(params: dict[str, Any]) -> None:
    """The tracer runs each distinct (sub-block, input shape) once (sdunet_core/tracer/memo.py): for any architecture
    its records equal those of a forward that runs every module."""
    from sdunet_core.tracer.structure import record_nodes

    cfg = UNetConfig(**params)
    size = (3, cfg.downsample_factor, cfg.downsample_factor) if cfg.dims == 3 else (cfg.downsample_factor,) * cfg.dims
    with META:
        model = UNetModel(cfg).eval()
    inputs = meta_inputs(cfg, size)
    full, full_mode = record_nodes(model, inputs, memoize=False)
    memo, memo_mode = record_nodes(model, inputs, memoize=True)
    assert memo == full
    assert (memo_mode.math.peak, memo_mode.fused.peak) == (full_mode.math.peak, full_mode.fused.peak)


def test_one_channel_model_runs() -> None:
    """model_channels=1 has no sinusoid at all: the time embedding is the zero padding column alone."""
    cfg = UNetConfig(1, 1, 1, [1, 2], 1, [2], num_heads=1, norm_groups=1)
    with META:
        model = UNetModel(cfg)
    assert model(**meta_inputs(cfg, (4, 4))).shape == (2, 1, 4, 4)


@SETTINGS
@given(params=valid_params(), data=st.data())
def test_sample_sizes_are_checked_or_run(params: dict[str, Any], data: st.DataObject) -> None:
    """check_sample_size accepts exactly the sizes whose skips line up in a forward."""
    cfg = UNetConfig(**params)
    length = data.draw(st.sampled_from([cfg.dims, cfg.dims, cfg.dims, 1, 2, 3]), label="length")
    multiple = st.integers(1, 3).map(lambda k: k * cfg.downsample_factor)
    size = data.draw(st.lists(multiple | st.integers(-1, 20), min_size=length, max_size=length), label="size")
    try:
        cfg.check_sample_size(tuple(size))
    except ConfigError as exc:
        assert exc.field == "sample_size"
        event("ConfigError")
        return
    event("runs")
    with META:
        model = UNetModel(cfg)
    assert model(**meta_inputs(cfg, tuple(size))).shape[2:] == tuple(size)


# Arbitrary values: the right types and wrong ones, out of range, nested, empty.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.floats(-2, 100),
    st.sampled_from([float("nan"), float("inf"), 0.5, 2.0]),
    st.text(max_size=6),
    st.sampled_from(["sequential", "continuous", "softmax"]),
    st.lists(st.one_of(st.integers(-2, 5), st.booleans(), st.none(), st.text(max_size=2)), max_size=4),
    st.lists(st.lists(st.integers(0, 3), max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
FIELD_NAMES = sorted(UNetConfig(**{"in_channels": 1, "out_channels": 1, "model_channels": 8, "channel_mult": [1],
                                    "num_res_blocks": 1, "attention_resolutions": [], "num_heads": 1,
                                    "norm_groups": 8}).to_dict())  # fmt: skip


@st.composite
def mutated_params(draw: st.DrawFn, ldm: bool) -> dict[str, Any]:
    """A valid config's dict (or yaml) form with a few entries replaced, dropped or added."""
    cfg = UNetConfig(**draw(valid_params()))
    data = {**cfg.to_ldm(), "norm_groups": cfg.norm_groups} if ldm else cfg.to_dict()
    keys = [*FIELD_NAMES, "legacy", "use_checkpoint", "image_size", "not_a_key"]
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            data.pop(key, None)
        else:
            data[key] = draw(ANY_VALUE)
    return data


def check_builds_or_config_error(build: Any, data: dict[str, Any]) -> None:
    try:
        cfg = build(data)
    except ConfigError as exc:
        assert exc.field and str(exc).startswith(f"{exc.field}: ")
        event(f"ConfigError({exc.field})")
        return
    event("builds")
    with META:
        model = UNetModel(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


@SETTINGS
@given(data=mutated_params(ldm=False))
def test_arbitrary_dicts_raise_config_error_or_build(data: dict[str, Any]) -> None:
    check_builds_or_config_error(UNetConfig.from_dict, data)


@SETTINGS
@given(data=mutated_params(ldm=True))
def test_arbitrary_ldm_params_raise_config_error_or_build(data: dict[str, Any]) -> None:
    check_builds_or_config_error(UNetConfig.from_ldm, data)


SMALL = st.integers(1, 16)
LEVELS = st.lists(st.integers(1, 3), min_size=1, max_size=3).map(lambda v: [1, *v[1:]])
REQUIRED = {
    "in_channels": SMALL,
    "out_channels": SMALL,
    "model_channels": SMALL,
    "channel_mult": LEVELS,
    "num_res_blocks": SMALL | LEVELS,
    "attention_resolutions": st.lists(st.sampled_from([1, 2, 4]), max_size=3),
}


def mostly(plausible: st.SearchStrategy, tenths: int) -> st.SearchStrategy:
    """`plausible` in `tenths` of the draws, ANY_VALUE in the rest (`|` would weigh each of ANY_VALUE's branches)."""
    return st.integers(0, 9).flatmap(lambda r: plausible if r < tenths else ANY_VALUE)


# Required keys mostly plausible, every other field either a small integer or anything at all.
RANDOM_DICTS = st.fixed_dictionaries(
    {k: mostly(s, 9) for k, s in REQUIRED.items()},
    optional={k: mostly(SMALL, 5) for k in FIELD_NAMES if k not in REQUIRED},
)


@pytest.mark.parametrize("build", [UNetConfig.from_dict, UNetConfig.from_ldm])
@SETTINGS
@given(data=RANDOM_DICTS)
def test_random_dicts_raise_config_error_or_build(build: Any, data: dict[str, Any]) -> None:
    check_builds_or_config_error(build, data)
