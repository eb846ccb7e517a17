"""The ControlNet model: parameter counts and key sets against diffusers' ControlNetModel built on meta from the same
configs, the original layout's names (the UNet's encoder plus the hint encoder and zero convs), and a tiny model's
residuals equal to diffusers' for the same weights."""

from __future__ import annotations

import pytest
import torch

from sdunet_core import PRESETS, UNetConfig, UNetModel
from sdunet_core.control.controlnet import ControlNetConfig, ControlNetModel
from sdunet_core.control.keys import controlnet_keymap, controlnet_keymap_from_diffusers
from sdunet_core.control.presets import CONTROLNET_PRESETS, load_controlnet_preset
from sdunet_core.errors import ConfigError
from tests.diffusers_configs import DIFFUSERS_CONFIGS

diffusers = pytest.importorskip("diffusers")

# ControlNet preset -> the diffusers config of the UNet it copies (ControlNetModel takes the same keywords, less the
# up stage's).
RELEASED = {"controlnet-sd15": "sd1", "controlnet-sd21": "sd2", "controlnet-sdxl": "sdxl-base"}


def _meta(config: ControlNetConfig) -> ControlNetModel:
    with torch.device("meta"):
        return ControlNetModel(config)


def _diffusers(base: str, **extra: object) -> torch.nn.Module:
    kwargs = {k: v for k, v in DIFFUSERS_CONFIGS[base].items() if k != "up_block_types"}
    with torch.device("meta"):
        return diffusers.ControlNetModel(**kwargs, **extra)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_parameter_count_is_the_reference_implementations(name: str) -> None:
    preset = load_controlnet_preset(name)
    ours = sum(p.numel() for p in _meta(preset.config).parameters())
    theirs = sum(p.numel() for p in _diffusers(RELEASED[name]).parameters())
    assert ours == theirs == preset.num_parameters


def test_sd15_controlnet_has_the_published_count() -> None:
    assert sum(p.numel() for p in _meta(load_controlnet_preset("controlnet-sd15").config).parameters()) == 361_279_120


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_keys_map_to_diffusers_one_to_one_with_equal_shapes(name: str) -> None:
    config = load_controlnet_preset(name).config
    ours = _shapes(_meta(config))
    theirs = _shapes(_diffusers(RELEASED[name]))
    keymap = controlnet_keymap(config)
    assert keymap is not None
    assert {keymap.to_diffusers(k): s for k, s in ours.items()} == theirs
    # ... and back, from a map read off the diffusers names alone (as a detection does).
    back = controlnet_keymap_from_diffusers(theirs)
    assert {back.from_diffusers(k): s for k, s in theirs.items()} == ours


@pytest.mark.parametrize("name", sorted(CONTROLNET_PRESETS))
def test_original_layout_is_the_unet_encoder_plus_hint_and_zero_convs(name: str) -> None:
    preset = load_controlnet_preset(name)
    config = preset.config
    with torch.device("meta"):
        unet = UNetModel(config.unet)
    encoder = {
        k: s
        for k, s in _shapes(unet).items()
        if k.split(".")[0] in ("time_embed", "label_emb", "input_blocks", "middle_block")
    }
    ours = _shapes(_meta(config))
    own = {k: s for k, s in ours.items() if k not in encoder}
    assert {k: ours[k] for k in encoder} == encoder  # every encoder tensor, same name and shape
    mc = config.unet.model_channels
    blocks = len(unet.input_blocks)
    expected_own = {"input_hint_block.0.weight": (16, 3, 3, 3), "input_hint_block.14.weight": (mc, 256, 3, 3)}
    for key, shape in expected_own.items():
        assert own[key] == shape
    assert {k.split(".")[0] for k in own} == {"input_hint_block", "zero_convs", "middle_block_out"}
    assert sorted({int(k.split(".")[1]) for k in own if k.startswith("zero_convs.")}) == list(range(blocks))
    # The hint encoder: eight convs, three of them stride 2 (3 -> 16 -> 16 -> 32 -> 32 -> 96 -> 96 -> 256 -> mc).
    convs = [m for m in _meta(config).input_hint_block if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 96, 2), (96, 96, 1), (96, 256, 2), (256, mc, 1)
    ]  # fmt: skip


def test_zero_convs_start_at_zero() -> None:
    torch.manual_seed(0)
    model = ControlNetModel(load_controlnet_preset("controlnet-tiny").config).eval()
    for name in ("zero_convs", "middle_block_out"):
        assert all(torch.count_nonzero(p) == 0 for p in getattr(model, name).parameters())
    assert torch.count_nonzero(model.input_hint_block[-1].weight) == 0
    assert torch.count_nonzero(model.input_hint_block[0].weight) > 0


# ---- numbers: a tiny ControlNet against diffusers' with the same weights --------------------------------------------
_TINY = UNetConfig(
    in_channels=4,
    out_channels=4,
    model_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=(1, 1),
    attention_resolutions=(1, 2),
    num_heads=4,
    use_spatial_transformer=True,
    context_dim=24,
    norm_groups=8,
)
_TINY_DIFFUSERS = {
    "block_out_channels": [32, 64],
    "layers_per_block": 1,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "cross_attention_dim": 24,
    "attention_head_dim": 4,  # diffusers' SD 1.x name for the number of heads
    "norm_num_groups": 8,
}


def _tiny_pair(unet: UNetConfig, diffusers_kwargs: dict) -> tuple[ControlNetModel, torch.nn.Module]:
    config = ControlNetConfig(unet)
    torch.manual_seed(1)
    ours = ControlNetModel(config).eval()
    with torch.no_grad():
        for p in ours.parameters():  # random everywhere, the zero convs too, so that every path shows in the output
            p.copy_(torch.randn_like(p) * 0.2)
    theirs = diffusers.ControlNetModel(**diffusers_kwargs).eval()
    keymap = controlnet_keymap(config)
    assert keymap is not None
    theirs.load_state_dict({keymap.to_diffusers(k): v for k, v in ours.state_dict().items()}, strict=True)
    return ours, theirs


def test_tiny_controlnet_residuals_equal_diffusers() -> None:
    ours, theirs = _tiny_pair(_TINY, _TINY_DIFFUSERS)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 8, 8, generator=g)
    hint = torch.rand(2, 3, 64, 64, generator=g)
    t = torch.tensor([10.0, 700.0])
    context = torch.randn(2, 5, 24, generator=g)
    with torch.no_grad():
        got = ours(x, hint, t, context)
        down, mid = theirs(x, t, context, hint, return_dict=False)
    want = [*down, mid]
    assert [tuple(r.shape) for r in got] == [tuple(r.shape) for r in want]
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # The comparison can fail: a wrong hint changes every residual.
    with torch.no_grad():
        other = ours(x, hint.flip(-1), t, context)
    assert not torch.allclose(other[0], want[0], atol=1e-3)


def test_residual_shapes_are_the_unet_skips() -> None:
    preset = load_controlnet_preset("controlnet-tiny")
    torch.manual_seed(0)
    model = ControlNetModel(preset.config).eval()
    unet = UNetModel(preset.config.unet).eval()
    x = torch.randn(1, 4, 16, 16)
    hint = torch.rand(1, 3, 16 * preset.config.hint_factor, 16 * preset.config.hint_factor)
    t = torch.tensor([3.0])
    ctx = torch.randn(1, 8, 32)
    y = torch.randn(1, 16)
    skips = []
    hooks = [b.register_forward_hook(lambda _m, _i, o: skips.append(tuple(o.shape))) for b in unet.input_blocks]
    with torch.no_grad():
        unet(x, t, ctx, y)
        residuals = model(x, hint, t, ctx, y)
    for h in hooks:
        h.remove()
    assert [tuple(r.shape) for r in residuals[:-1]] == skips
    assert residuals[-1].shape[1] == preset.config.unet.model_channels * preset.config.unet.channel_mult[-1]
    assert len(model.injections()) == len(residuals)


def test_original_params_round_trip() -> None:
    for preset in CONTROLNET_PRESETS.values():
        if preset.name in RELEASED:  # the tiny one's norm_groups is ours, not an original keyword
            assert ControlNetConfig.from_ldm(preset.config.to_ldm()) == preset.config
        assert ControlNetConfig.from_dict(preset.config.to_dict()) == preset.config
        assert preset.config.to_ldm()["hint_channels"] == 3
        assert "out_channels" not in preset.config.to_ldm()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hint_channels": 0}, "hint_channels"),
        ({"hint_channels": True}, "hint_channels"),
        ({"hint_block_channels": ()}, "hint_block_channels"),
        ({"hint_block_channels": (16, 0)}, "hint_block_channels"),
    ],
)
def test_bad_controlnet_settings_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        ControlNetConfig(_TINY, **kwargs)
    assert err.value.field == field


def test_original_params_need_hint_channels() -> None:
    params = load_controlnet_preset("controlnet-sd15").config.to_ldm()
    del params["hint_channels"]
    with pytest.raises(ConfigError) as err:
        ControlNetConfig.from_ldm(params)
    assert err.value.field == "hint_channels"


def test_injections_wire_the_unet_as_diffusers_does() -> None:
    """Our statement of where each residual goes (ControlNetModel.injections, the UNet plan's skips) drives a controlled
    forward that equals diffusers' UNet2DConditionModel fed the same residuals (down_block_additional_residuals,
    mid_block_additional_residual), scales included."""
    from sdunet_core.checkpoint.diffusers_keys import keymap_for
    from sdunet_core.control.controlnet import controlled_unet_forward

    control, _ = _tiny_pair(_TINY, _TINY_DIFFUSERS)
    torch.manual_seed(3)
    unet = UNetModel(_TINY).eval()
    kwargs = {k: v for k, v in _TINY_DIFFUSERS.items()}
    kwargs["up_block_types"] = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    theirs = diffusers.UNet2DConditionModel(**kwargs).eval()
    keymap = keymap_for(_TINY)
    assert keymap is not None
    theirs.load_state_dict({keymap.to_diffusers(k): v for k, v in unet.state_dict().items()}, strict=True)
    g = torch.Generator().manual_seed(4)
    x, t = torch.randn(1, 4, 8, 8, generator=g), torch.tensor([400.0])
    context, hint = torch.randn(1, 5, 24, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    scales = [0.5, 1.0, 1.5, 0.25, 2.0]
    with torch.no_grad():
        residuals = control(x, hint, t, context)
        assert len(residuals) == len(scales) == len(control.injections())
        ours = controlled_unet_forward(unet, x, t, context, None, control, residuals, scales)
        scaled = [r * s for r, s in zip(residuals, scales, strict=True)]
        want = theirs(
            x, t, context, down_block_additional_residuals=tuple(scaled[:-1]), mid_block_additional_residual=scaled[-1]
        ).sample
        plain = unet(x, t, context)
    torch.testing.assert_close(ours, want, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(ours, plain, atol=1e-3)  # the residuals change the output


# ---- goldens made by the original cldm code (tests/data/make_control_goldens.py) ------------------------------------
GOLDENS = ("tiny_control_sd15", "tiny_control_sd21")


def _golden(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    import json

    from safetensors.torch import load_file

    from tests.conftest import DATA

    return json.loads((DATA / f"{name}.json").read_text()), load_file(str(DATA / f"{name}.safetensors"))


def _run_golden(meta: dict, tensors: dict[str, torch.Tensor]) -> tuple[ControlNetModel, list[torch.Tensor]]:
    model = ControlNetModel(ControlNetConfig.from_ldm(meta["control_params"])).eval()
    state = {k.removeprefix("state_dict."): v for k, v in tensors.items() if k.startswith("state_dict.")}
    model.load_state_dict(state, strict=True)  # the original names, every one
    with torch.no_grad():
        outs = model(tensors["input.x"], tensors["input.hint"], tensors["input.timesteps"], tensors["input.context"])
    return model, outs


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_matches_the_original_controlnet(name: str) -> None:
    meta, tensors = _golden(name)
    model, outs = _run_golden(meta, tensors)
    assert list(model.state_dict()) == meta["state_dict_keys"]  # same names, same order
    assert sum(p.numel() for p in model.parameters()) == meta["num_parameters"]
    assert [list(o.shape) for o in outs] == meta["outputs"]
    for i, out in enumerate(outs):
        want = tensors[f"output.{i}"]
        assert (out - want).abs().max() / want.abs().max() < 1e-4, i


def test_golden_fails_on_one_perturbed_hint_weight() -> None:
    meta, tensors = _golden("tiny_control_sd15")
    tensors = dict(tensors)
    key = "state_dict.input_hint_block.6.weight"
    tensors[key] = tensors[key].clone()
    tensors[key][0, 0, 0, 0] += 1.0
    _, outs = _run_golden(meta, tensors)
    want = tensors["output.0"]
    assert (outs[0] - want).abs().max() / want.abs().max() > 1e-4


# ---- ControlNets on the distilled variants ---------------------------------------------------------------------------
VARIANTS = sorted(n for n, p in PRESETS.items() if p.diffusers_config is not None)


@pytest.mark.parametrize("name", VARIANTS)
def test_a_controlnet_on_a_variant_is_diffusers_controlnet_of_its_config(name: str) -> None:
    """The builder is the UNet's, so a ControlNet on BK-SDM, SSD-1B or Vega (one res block per level, a lone middle
    ResBlock, per-block depths) is diffusers' ControlNetModel built from the variant's own config.json."""
    import inspect

    preset = PRESETS[name]
    assert preset.diffusers_config is not None
    if preset.config.middle_block is None:
        with pytest.raises(ConfigError) as err:
            ControlNetConfig(preset.config)
        assert err.value.field == "middle_block"
        return
    config = ControlNetConfig(preset.config)
    takes = set(inspect.signature(diffusers.ControlNetModel.__init__).parameters)
    kwargs = {k: v for k, v in preset.diffusers_config.items() if k in takes}
    with torch.device("meta"):
        theirs = _shapes(diffusers.ControlNetModel(**kwargs))
    keymap = controlnet_keymap(config)
    assert keymap is not None
    assert {keymap.to_diffusers(k): s for k, s in _shapes(_meta(config)).items()} == theirs
