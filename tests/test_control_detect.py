"""Detecting control models from a header: ControlNets in both layouts (names from our model and from diffusers'
ControlNetModel built on meta), with and without a prefix; T2I-Adapters (diffusers' T2IAdapter on meta, and the
original TencentARC names built to that code's construction); control-LoRAs; and the API answering each."""

from __future__ import annotations

import pytest
import torch

from sdunet_core import PRESETS
from sdunet_core.checkpoint.detect import detect_unet
from sdunet_core.control.controlnet import ControlNetModel
from sdunet_core.control.detect import detect_control
from sdunet_core.control.presets import load_controlnet_preset
from sdunet_core.tracer.trace import trace_unet
from tests.checkpoint_headers import CLIP, VAE, header_bytes, make_header, preset_shapes
from tests.diffusers_configs import DIFFUSERS_CONFIGS

diffusers = pytest.importorskip("diffusers")

Shapes = dict[str, tuple[int, ...]]
RELEASED = {"controlnet-sd15": "sd1", "controlnet-sd21": "sd2", "controlnet-sdxl": "sdxl-base"}


def control_shapes(name: str) -> Shapes:
    with torch.device("meta"):
        model = ControlNetModel(load_controlnet_preset(name).config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def diffusers_control_shapes(base: str) -> Shapes:
    kwargs = {k: v for k, v in DIFFUSERS_CONFIGS[base].items() if k != "up_block_types"}
    with torch.device("meta"):
        model = diffusers.ControlNetModel(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ---- ControlNets -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(RELEASED))
@pytest.mark.parametrize("prefix", ["", "control_model."])
def test_original_layout_detects_its_preset(name: str, prefix: str) -> None:
    report = detect_control(make_header(control_shapes(name), prefix))
    assert report is not None
    assert (report.kind, report.layout, report.prefix, report.preset, report.exact) == (
        "controlnet", "ldm", prefix, name, True
    )  # fmt: skip
    preset = load_controlnet_preset(name)
    assert (report.family, report.base_preset) == (preset.family, preset.base_preset)
    assert report.num_parameters == preset.num_parameters
    assert report.total_bytes == 2 * preset.num_parameters  # F16
    assert report.hint_channels == 3
    assert len(report.injections) == preset.config.num_injections
    assert report.injections[-1].target == "middle_block" and report.injections[-1].added_to == "middle"


@pytest.mark.parametrize("name", sorted(RELEASED))
@pytest.mark.parametrize("prefix", ["", "controlnet."])
def test_diffusers_layout_detects_its_preset(name: str, prefix: str) -> None:
    report = detect_control(make_header(diffusers_control_shapes(RELEASED[name]), prefix))
    assert report is not None
    assert (report.kind, report.layout, report.prefix, report.preset, report.exact) == (
        "controlnet", "diffusers", prefix, name, True
    )  # fmt: skip
    assert report.num_parameters == load_controlnet_preset(name).num_parameters


def test_injections_match_the_unet_skips() -> None:
    report = detect_control(make_header(control_shapes("controlnet-sd15")))
    assert report is not None
    unet = trace_unet("sd1")
    for point in report.injections:
        shape = unet.node(point.target).outputs[0].shape  # type: ignore[index]
        assert shape[1] == point.channels and 64 // shape[2] == point.factor, point
        assert point.image_factor == 8 * point.factor


def test_a_controlldm_checkpoint_is_read_as_its_controlnet() -> None:
    # The original training checkpoints hold the whole SD model beside the ControlNet.
    unet = {"model.diffusion_model." + k: s for k, s in preset_shapes("sd1").items()}
    header = make_header(control_shapes("controlnet-sd15"), "control_model.", extra={**unet, **VAE, **CLIP})
    report = detect_control(header)
    assert report is not None and report.preset == "controlnet-sd15" and report.exact
    assert report.other_keys["model"] == len(unet)
    assert any("other tensors" in n for n in report.notes)


def test_other_hint_channels_are_read_from_the_file() -> None:
    shapes = control_shapes("controlnet-sd15")
    shapes["input_hint_block.0.weight"] = (16, 1, 3, 3)
    report = detect_control(make_header(shapes))
    assert report is not None
    assert (report.preset, report.exact, report.hint_channels) == (None, True, 1)
    assert "hint_channels=1" in report.notes[0]


def test_missing_and_mismatched_tensors_are_named_in_the_files_names() -> None:
    shapes = diffusers_control_shapes("sd1")
    del shapes["controlnet_down_blocks.3.weight"]
    shapes["controlnet_mid_block.weight"] = (1280, 1280, 3, 3)
    report = detect_control(make_header(shapes))
    assert report is not None and not report.exact and report.preset is None
    assert report.missing == ["controlnet_down_blocks.3.weight"]
    assert [(m.key, m.found) for m in report.mismatched] == [("controlnet_mid_block.weight", [1280, 1280, 3, 3])]


def test_unets_loras_and_other_files_are_not_control_models() -> None:
    for name in ("sd1", "sdxl-base"):
        header = make_header(preset_shapes(name), "model.diffusion_model.", extra={**VAE, **CLIP})
        assert detect_control(header) is None
        assert detect_unet(header).preset == name  # and still detect as their UNet
    lora = {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320)}
    assert detect_control(make_header({}, extra=lora)) is None


# ---- T2I-Adapters ----------------------------------------------------------------------------------------------------
ADAPTERS = {
    # adapter_type: (diffusers keywords, family, the preset it steers, the image size of its reference input)
    "full_adapter": ({"channels": [320, 640, 1280, 1280], "num_res_blocks": 2, "downscale_factor": 8}, "sd1", 512),
    "light_adapter": ({"channels": [320, 640, 1280], "num_res_blocks": 4, "downscale_factor": 8}, "sd1", 512),
    "full_adapter_xl": (
        {"channels": [320, 640, 1280, 1280], "num_res_blocks": 2, "downscale_factor": 16},
        "sdxl",
        1024,
    ),
}


def _t2i(adapter_type: str, in_channels: int = 3) -> torch.nn.Module:
    kwargs, _, _ = ADAPTERS[adapter_type]
    with torch.device("meta"):
        return diffusers.T2IAdapter(in_channels=in_channels, adapter_type=adapter_type, **kwargs)


@pytest.mark.parametrize("adapter_type", sorted(ADAPTERS))
def test_diffusers_t2i_adapters(adapter_type: str) -> None:
    _, family, size = ADAPTERS[adapter_type]
    model = _t2i(adapter_type)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    report = detect_control(make_header(shapes))
    assert report is not None and report.adapter is not None
    assert (report.kind, report.layout, report.family, report.adapter.type) == (
        "t2i_adapter", "diffusers", family, adapter_type
    )  # fmt: skip
    assert report.adapter.in_channels == 3
    assert report.num_parameters == sum(p.numel() for p in model.parameters())
    # The injection points are where the adapter's feature maps fit the UNet: same channels and size.
    with torch.no_grad():
        features = model(torch.empty(1, 3, size, size, device="meta"))
    assert [list(f.shape[1:]) for f in features] == [
        [p.channels, size // p.image_factor, size // p.image_factor] for p in report.injections
    ]
    unet = trace_unet(report.base_preset)  # type: ignore[arg-type]
    for point, feature in zip(report.injections, features, strict=True):
        assert unet.node(point.target).outputs[0].shape == list(feature.shape)  # type: ignore[index]
        assert point.added_to == "encoder"


def test_t2i_adapter_sizes_are_the_published_ones() -> None:
    # About 77 M (SD 1.x) and 79 M (SDXL) parameters.
    assert sum(p.numel() for p in _t2i("full_adapter").parameters()) == 77_369_280
    assert sum(p.numel() for p in _t2i("full_adapter_xl").parameters()) == 79_028_160


def test_a_one_channel_sdxl_adapter() -> None:
    shapes = {k: tuple(v.shape) for k, v in _t2i("full_adapter_xl", in_channels=1).state_dict().items()}
    report = detect_control(make_header(shapes))
    assert report is not None and report.adapter is not None
    assert (report.family, report.adapter.in_channels, report.adapter.unshuffle_factor) == ("sdxl", 1, 16)


def _original_full(cin: int, channels: list[int], nums_rb: int) -> Shapes:
    """TencentARC's `Adapter(cin, channels, nums_rb, ksize=1, sk=True, use_conv=False)`: conv_in, then a flat list
    of residual blocks body.(i * nums_rb + j), an in_conv where the width changes, block1 3x3, block2 1x1."""
    shapes: Shapes = {"conv_in.weight": (channels[0], cin, 3, 3), "conv_in.bias": (channels[0],)}
    for i, c in enumerate(channels):
        for j in range(nums_rb):
            k = i * nums_rb + j
            if j == 0 and i > 0 and channels[i - 1] != c:
                shapes |= {f"body.{k}.in_conv.weight": (c, channels[i - 1], 1, 1), f"body.{k}.in_conv.bias": (c,)}
            shapes |= {f"body.{k}.block1.weight": (c, c, 3, 3), f"body.{k}.block1.bias": (c,)}
            shapes |= {f"body.{k}.block2.weight": (c, c, 1, 1), f"body.{k}.block2.bias": (c,)}
    return shapes


def _original_light(cin: int, channels: list[int], nums_rb: int) -> Shapes:
    """TencentARC's `Adapter_light`: per block an in_conv to a quarter width, nums_rb residual blocks, an out_conv."""
    shapes: Shapes = {}
    for i, c in enumerate(channels):
        inner, cin_i = c // 4, cin if i == 0 else channels[i - 1]
        shapes |= {f"body.{i}.in_conv.weight": (inner, cin_i, 1, 1), f"body.{i}.in_conv.bias": (inner,)}
        for j in range(nums_rb):
            for conv in ("block1", "block2"):
                shapes |= {
                    f"body.{i}.body.{j}.{conv}.weight": (inner, inner, 3, 3),
                    f"body.{i}.body.{j}.{conv}.bias": (inner,),
                }
        shapes |= {f"body.{i}.out_conv.weight": (c, inner, 1, 1), f"body.{i}.out_conv.bias": (c,)}
    return shapes


@pytest.mark.parametrize(
    ("shapes", "kind", "family", "in_channels", "res_blocks", "params_of"),
    [
        (_original_full(64 * 3, [320, 640, 1280, 1280], 2), "full_adapter", "sd1", 3, 2, "full_adapter"),
        (_original_full(64, [320, 640, 1280, 1280], 2), "full_adapter", "sd1", 1, 2, None),
        (_original_full(256 * 3, [320, 640, 1280, 1280], 2), "full_adapter_xl", "sdxl", 3, 2, "full_adapter_xl"),
        (_original_light(64 * 3, [320, 640, 1280, 1280], 4), "light_adapter", "sd1", 3, 4, "light_adapter"),
    ],
)
def test_original_t2i_adapters(
    shapes: Shapes, kind: str, family: str, in_channels: int, res_blocks: int, params_of: str | None
) -> None:
    report = detect_control(make_header(shapes))
    assert report is not None and report.adapter is not None
    assert (report.kind, report.layout, report.family, report.adapter.type) == ("t2i_adapter", "ldm", family, kind)
    assert report.adapter.channels == [320, 640, 1280, 1280]
    assert (report.adapter.in_channels, report.adapter.num_res_blocks) == (in_channels, res_blocks)
    assert [p.target for p in report.injections] == (
        ["input_blocks.2", "input_blocks.5", "input_blocks.8", "input_blocks.11"]
        if family == "sd1"
        else ["input_blocks.3", "input_blocks.5", "input_blocks.8", "middle_block"]
    )
    if params_of is not None:  # the same network as diffusers' adapter of that type, tensor for tensor
        assert report.num_parameters == sum(p.numel() for p in _t2i(params_of).parameters())


# ---- control-LoRA ----------------------------------------------------------------------------------------------------
def _control_lora(rank: int) -> tuple[Shapes, int]:
    """Stability's control-LoRA layout: the marker, the ControlNet's own parts and every vector in full, every
    matrix or conv kernel of the encoder copy as `<module>.up` [out, rank(, 1, 1)] / `.down` [rank, in(, k, k)]."""
    shapes: Shapes = {"lora_controlnet": (0,)}
    lora_params = 0
    for key, shape in control_shapes("controlnet-sdxl").items():
        own = key.split(".")[0] in ("input_hint_block", "zero_convs", "middle_block_out")
        if own or len(shape) < 2 or not key.endswith(".weight"):
            shapes[key] = shape
            continue
        module = key.removesuffix(".weight")
        out, cin, *kernel = shape
        up, down = (out, rank, *([1] * len(kernel))), (rank, cin, *kernel)
        shapes[f"{module}.up"], shapes[f"{module}.down"] = up, down
        lora_params += torch.Size(up).numel() + torch.Size(down).numel()
    return shapes, lora_params


def test_control_lora() -> None:
    shapes, lora_params = _control_lora(128)
    report = detect_control(make_header(shapes))
    assert report is not None and report.lora is not None
    assert (report.kind, report.family, report.base_preset) == ("control_lora", "sdxl", "sdxl-base")
    assert report.lora.ranks == [128] and report.lora.lora_parameters == lora_params
    assert report.num_parameters == sum(torch.Size(s).numel() for s in shapes.values())
    assert report.config is not None and report.config.model_dump(mode="json") == PRESETS["sdxl-base"].config.to_dict()
    assert [p.target for p in report.injections][-1] == "middle_block"
    assert len(report.injections) == 10
    # A rank-128 control-LoRA is about 198 M parameters, far below the 1,251 M of the ControlNet it stands for.
    assert 150_000_000 < report.num_parameters < 250_000_000
    # Without its marker, the low-rank pairs still tell it from a ControlNet; a prefix is read off too.
    del shapes["lora_controlnet"]
    again = detect_control(make_header(shapes, "control_model."))
    assert again is not None and again.kind == "control_lora" and again.prefix == "control_model."
    assert again.lora == report.lora  # the marker is no tensor of the model
    assert not any("other tensors" in n for n in report.notes + again.notes)
    # Tensors beside it in the file are noted, as for a ControlNet or an adapter.
    mixed = {f"control_model.{k}": v for k, v in shapes.items()} | {"first_stage_model.conv_in.weight": (128, 3, 3, 3)}
    third = detect_control(make_header(mixed))
    assert third is not None and third.kind == "control_lora" and third.lora == report.lora
    assert "the file holds other tensors too: first_stage_model (1)" in third.notes


# ---- the API ---------------------------------------------------------------------------------------------------------
def test_api_detects_a_controlnet(client) -> None:
    header = make_header(diffusers_control_shapes("sd1"))
    r = client.post("/api/checkpoint/detect", json=header)
    assert r.status_code == 200
    assert r.json() == detect_control(header).model_dump(mode="json")  # type: ignore[union-attr]
    assert r.json()["kind"] == "controlnet" and r.json()["preset"] == "controlnet-sd15"


def test_api_detects_a_t2i_adapter_from_the_files_first_bytes(client) -> None:
    shapes = {k: tuple(v.shape) for k, v in _t2i("full_adapter").state_dict().items()}
    r = client.post(
        "/api/checkpoint/detect",
        content=header_bytes(make_header(shapes)),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["kind"] == "t2i_adapter" and r.json()["adapter"]["type"] == "full_adapter"


def test_api_still_detects_unets_and_names_bad_entries(client) -> None:
    r = client.post("/api/checkpoint/detect", json=make_header(preset_shapes("sd1"), "model.diffusion_model."))
    assert r.status_code == 200 and "kind" not in r.json() and r.json()["preset"] == "sd1"
    header = make_header(control_shapes("controlnet-tiny"))
    header["zero_convs.0.0.weight"]["shape"] = [-1]
    r = client.post("/api/checkpoint/detect", json=header)
    assert r.status_code == 422
    assert r.json()["field"] == "zero_convs.0.0.weight.shape"


# ---- the command line ------------------------------------------------------------------------------------------------
def test_cli_inspects_a_real_controlnet_file(tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    from app.cli import main

    torch.manual_seed(0)
    model = ControlNetModel(load_controlnet_preset("controlnet-tiny").config)
    path = tmp_path / "control.safetensors"
    save_file({f"control_model.{k}": v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("controlnet under 'control_model.' (original names) for tiny: preset controlnet-tiny")
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in out
    assert "-> middle_block (middle)" in out and "strict=True" in out
    assert main(["inspect", str(path), "--json"]) == 0
    assert '"kind": "controlnet"' in capsys.readouterr().out


@pytest.mark.parametrize(
    "shapes",
    [
        {"conv_in.weight": (), "body.0.block1.weight": ()},
        {"conv_in.weight": (4,), "body.0.block1.weight": (3,), "body": (1,), "body.x.block1.weight": (2,)},
        {"body.0.in_conv.weight": (1, 7), "body.0.body.0.block1.weight": ()},
        {"adapter.conv_in.weight": (1,), "adapter.body.0.resnets.0.block1.weight": (), "adapter.body.0": (1,)},
        {"input_hint_block.0.weight": (16,), "zero_convs.0.0.weight": (4, 4, 1, 1)},
        {"input_hint_block.0.weight": (16, 0, 3, 3), "zero_convs.0.0.weight": ()},
        {"controlnet_cond_embedding.conv_in.weight": (), "controlnet_down_blocks.0.weight": (), "down_blocks.x": ()},
        {"lora_controlnet": (), "input_blocks.1.0.in_layers.2.up": (), "input_blocks.1.0.in_layers.2.down": ()},
    ],
)
def test_odd_headers_are_reported_or_refused_never_crash(shapes: Shapes) -> None:
    from sdunet_core.checkpoint.header import CheckpointError
    from sdunet_core.errors import ConfigError

    try:
        report = detect_control(make_header(shapes))
    except (ConfigError, CheckpointError) as exc:
        assert exc.field  # a refusal names what is wrong
    else:
        assert report is not None


@pytest.mark.parametrize("name", ["ssd-1b", "bk-sdm-base"])
def test_a_controlnet_on_a_variant_is_detected_exactly(name: str) -> None:
    import inspect

    preset = PRESETS[name]
    assert preset.diffusers_config is not None
    takes = set(inspect.signature(diffusers.ControlNetModel.__init__).parameters)
    with torch.device("meta"):
        model = diffusers.ControlNetModel(**{k: v for k, v in preset.diffusers_config.items() if k in takes})
    report = detect_control(make_header({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    assert report is not None
    assert (report.kind, report.layout, report.exact, report.preset) == ("controlnet", "diffusers", True, None)
    assert (report.base_preset, report.family) == (name, preset.family)
    assert report.notes[0] == f"the shapes are those of a ControlNet on {name}"
    assert report.config is not None and report.config.model_dump(mode="json") == preset.config.to_dict()
