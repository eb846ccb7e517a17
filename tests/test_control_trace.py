"""Tracing a ControlNet: the same typed trace as a UNet's (totals, node sums, FLOPs equal torch's counter) plus the
injections, checked against the UNet the ControlNet steers; and the API: /api/trace with ControlNet presets, control
scales, and bad input answered with a 4xx naming the field."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sdunet_core.control.controlnet import ControlNetConfig, ControlNetModel
from sdunet_core.control.presets import CONTROLNET_PRESETS, load_controlnet_preset, summary
from sdunet_core.control.trace import trace_controlnet
from sdunet_core.errors import ConfigError
from sdunet_core.schema import Trace
from sdunet_core.tracer.trace import trace_unet


@pytest.fixture(scope="module")
def sd15() -> Trace:
    return trace_controlnet("controlnet-sd15")


def test_totals_are_the_models(sd15: Trace) -> None:
    assert sd15.preset == "controlnet-sd15"
    assert sd15.totals.params == 361_279_120
    assert sd15.nodes[0].params == sd15.totals.params
    assert sd15.input.sample_size == [64, 64] and sd15.input.image_size == [512, 512]
    assert sd15.control is not None
    assert sd15.control.hint.shape == [1, 3, 512, 512]
    # ldm_params are cldm.ControlNet's keywords: they rebuild the same ControlNet.
    assert sd15.ldm_params["hint_channels"] == 3
    assert ControlNetConfig.from_ldm(sd15.ldm_params) == load_controlnet_preset("controlnet-sd15").config


def test_node_sums_hold(sd15: Trace) -> None:
    by_path = sd15.node_index
    for node in sd15.nodes:
        kids = [by_path[c] for c in node.children]
        assert node.params == node.params_own + sum(k.params for k in kids), node.path
        assert node.flops == node.flops_own + sum(k.flops for k in kids), node.path


def test_flops_equal_torchs_counter_on_a_plain_forward() -> None:
    preset = load_controlnet_preset("controlnet-tiny")
    trace = trace_controlnet(preset)
    with torch.device("meta"):
        model = ControlNetModel(preset.config).eval()
    x = torch.empty(1, 4, 16, 16, device="meta")
    hint = torch.empty(1, 3, 128, 128, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, hint, torch.full((1,), 500.0, device="meta"), torch.empty(1, 8, 32, device="meta"),
              torch.empty(1, 16, device="meta"))  # fmt: skip
    assert trace.totals.flops == counter.get_total_flops() > 0


@pytest.mark.parametrize("name", ["controlnet-sd15", "controlnet-sdxl"])
def test_injections_land_on_the_unets_skips(name: str) -> None:
    preset = load_controlnet_preset(name)
    control = trace_controlnet(name)
    unet = trace_unet(preset.base_preset)
    assert control.control is not None
    injections = control.control.injections
    skips = {s.from_: s for s in unet.skips}
    assert len(injections) == len(skips) + 1 == preset.config.num_injections
    for inj in injections[:-1]:
        skip = skips[inj.target]
        assert inj.added_to == "skip" and inj.consumer == skip.to
        assert inj.shape == skip.shape  # the residual is added to exactly that tensor
        assert inj.channels == skip.channels
    mid = injections[-1]
    assert (mid.source, mid.target, mid.added_to, mid.consumer) == (
        "middle_block_out", "middle_block", "middle", "output_blocks.0"
    )  # fmt: skip
    assert mid.shape == unet.node("middle_block").outputs[0].shape  # type: ignore[index]
    # Each injection's cost is its zero conv's node; the order is the ControlNet's output order.
    for i, inj in enumerate(injections):
        node = control.node(inj.source)
        assert (inj.index, inj.params, inj.flops) == (i, node.params, node.flops)
        assert node.category == "zero_conv"
        c = inj.channels
        assert inj.params == c * c + c  # a 1x1 conv with bias
        assert inj.flops == 2 * c * c * inj.shape[2] * inj.shape[3]
    assert [i.scale for i in injections] == [1.0] * len(injections) == control.control.scales


def test_blocks_state_the_control_parts(sd15: Trace) -> None:
    by_path = {b.path: b for b in sd15.blocks}
    hint = by_path["input_hint_block"]
    assert (hint.category, hint.in_channels, hint.out_channels, hint.factor) == ("control_hint", 3, 320, 1)
    assert sd15.node("input_hint_block").outputs[0].shape == [1, 320, 64, 64]  # type: ignore[index]
    assert by_path["zero_convs.0"].category == "zero_conv"
    assert by_path["middle_block_out"].category == "zero_conv"
    assert not any(b.stage == "up" for b in sd15.blocks)
    assert sd15.skips == []
    # The hint encoder runs first, then the input conv its output is added to.
    order = [b.path for b in sd15.blocks]
    assert order.index("input_hint_block") < order.index("input_blocks.0")


def test_scales_are_stated_and_checked() -> None:
    scales = [0.5 + i / 10 for i in range(13)]
    trace = trace_controlnet("controlnet-sd15", control_scales=scales)
    assert trace.control is not None
    assert [i.scale for i in trace.control.injections] == scales == trace.control.scales
    for bad in ([1.0] * 12, [11.0] * 13, [-0.1] * 13, [float("nan")] * 13, [True] * 13):
        with pytest.raises(ConfigError) as err:
            trace_controlnet("controlnet-sd15", control_scales=bad)
        assert err.value.field == "control_scales"


def test_trace_round_trips_through_json(sd15: Trace) -> None:
    again = Trace.model_validate_json(sd15.to_json())
    assert again.control == sd15.control
    assert "control" not in trace_unet("tiny").to_dict()  # a UNet's trace has no control part


# ---- the API --------------------------------------------------------------------------------------------------------
def _err(field: str | None, reason: str) -> dict:
    return {"detail": f"{field}: {reason}" if field else reason, "field": field, "reason": reason}


def test_api_traces_a_controlnet_preset(client) -> None:
    r = client.post("/api/trace", json={"preset": "controlnet-tiny"})
    assert r.status_code == 200
    assert r.json() == json.loads(trace_controlnet("controlnet-tiny").to_json())


def test_api_sd15_states_its_injections(client) -> None:
    body = client.post("/api/trace", json={"preset": "controlnet-sd15"}).json()
    assert body["totals"]["params"] == 361_279_120
    targets = [i["target"] for i in body["control"]["injections"]]
    assert targets == [f"input_blocks.{i}" for i in range(12)] + ["middle_block"]
    assert body["control"]["base_preset"] == "sd1"


def test_api_control_scales_and_size(client) -> None:
    scales = [0.25] * 10
    r = client.post(
        "/api/trace", json={"preset": "controlnet-tiny", "control_scales": scales, "image_size": [256, 256]}
    )
    assert r.status_code == 200
    control = r.json()["control"]
    assert control["scales"] == scales
    assert control["hint"]["shape"] == [1, 3, 256, 256]
    assert control["injections"][0]["shape"] == [1, 32, 32, 32]


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        (
            {"preset": "controlnet-sd15", "control_scales": [1.0] * 3},
            422,
            "control_scales",
            "needs one scale per injection: 13 values, got 3",
        ),
        ({"preset": "controlnet-sd15", "control_scales": [11] * 13}, 422, "control_scales.0", None),
        ({"preset": "controlnet-sd15", "control_scales": ["1"] * 13}, 422, "control_scales.0", None),
        ({"preset": "controlnet-sd15", "control_scales": []}, 422, "control_scales", None),
        (
            {"preset": "sd1", "control_scales": [1.0] * 13},
            422,
            "control_scales",
            f"applies to ControlNet presets only: {sorted(CONTROLNET_PRESETS)}",
        ),
        ({"preset": "controlnet-sd15", "image_size": [500, 500]}, 422, "image_size", None),
        ({"preset": "controlnet-sd15", "batch": 1000}, 413, "batch", None),
    ],
)
def test_api_bad_control_input_names_the_field(client, body: dict, status: int, field: str, reason: str | None) -> None:
    r = client.post("/api/trace", json=body)
    assert r.status_code == status, r.json()
    got = r.json()
    assert got["field"] == field
    if reason is not None:
        assert got == _err(field, reason)


def test_routes_that_take_no_controlnet_say_so(client) -> None:
    r = client.post("/api/names", json={"preset": "controlnet-sd15"})
    assert r.status_code == 422
    assert r.json()["field"] == "preset" and "ControlNet" in r.json()["reason"]


def test_api_summary_of_a_controlnet(client) -> None:
    r = client.post("/api/summary?depth=1", json={"preset": "controlnet-tiny"})
    assert r.status_code == 200
    assert "input_hint_block" in r.text and "zero_convs" in r.text


def test_api_lists_controlnet_presets(client) -> None:
    r = client.get("/api/controlnet/presets")
    assert r.status_code == 200
    assert r.json() == [summary(p).model_dump() for p in CONTROLNET_PRESETS.values()]
    sd15 = client.get("/api/controlnet/presets/controlnet-sd15").json()
    assert (sd15["num_parameters"], sd15["num_injections"], sd15["base_preset"]) == (361_279_120, 13, "sd1")
    assert sd15["reference_input"]["hint"] == [1, 3, 512, 512]
    r = client.get("/api/controlnet/presets/nope")
    assert r.status_code == 404 and r.json()["field"] == "name"


def test_api_diffusers_names_of_a_controlnet(client) -> None:
    diffusers = pytest.importorskip("diffusers")
    from tests.diffusers_configs import DIFFUSERS_CONFIGS

    r = client.post("/api/diffusers-names", json={"preset": "controlnet-sd15"})
    assert r.status_code == 200 and r.json()["supported"]
    names = r.json()["names"]
    assert names["input_hint_block.0"] == "controlnet_cond_embedding.conv_in"
    assert names["input_hint_block.14"] == "controlnet_cond_embedding.conv_out"
    assert names["zero_convs.11.0"] == "controlnet_down_blocks.11"
    assert names["middle_block_out.0"] == "controlnet_mid_block"
    assert names["input_blocks.4.1"] == "down_blocks.1.attentions.0"
    kwargs = {k: v for k, v in DIFFUSERS_CONFIGS["sd1"].items() if k != "up_block_types"}
    with torch.device("meta"):
        theirs = dict(diffusers.ControlNetModel(**kwargs).named_modules())
    named = {v for v in names.values() if v is not None}
    assert named <= set(theirs)  # every name is a module of diffusers' ControlNetModel
    assert {n for n, m in theirs.items() if n and any(True for _ in m.parameters(recurse=False))} <= named


def test_cli_traces_a_controlnet(capsys, tmp_path) -> None:
    from app.cli import main

    out = tmp_path / "cn.json"
    assert main(["trace", "controlnet-tiny", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("controlnet-tiny: 1,735,472 params")
    assert "added to the tiny UNet at input_blocks.0 x1" in printed
    assert Trace.model_validate_json(out.read_bytes()).control == trace_controlnet("controlnet-tiny").control
    assert main(["trace", "controlnet-tiny", "--device", "cpu"]) == 2
    assert main(["summary", "controlnet-tiny", "--depth", "0"]) == 0
    assert "hint [1, 3, 128, 128]" in capsys.readouterr().out


def test_api_source_of_the_controlnet(client) -> None:
    r = client.get("/api/source/ControlNetModel")
    assert r.status_code == 200
    assert r.json()["module"] == "sdunet_core.control.controlnet"
    assert r.json()["source"].startswith("class ControlNetModel(")


def test_api_traces_a_controlnet_on_any_unet(client) -> None:
    # What the page asks for a ControlNet file whose shapes fit no preset: the detected UNet config and hint.
    tiny = load_controlnet_preset("controlnet-tiny")
    body = {"config": tiny.config.unet.to_dict(), "sample_size": [16, 16], "context_tokens": 8}
    r = client.post("/api/trace", json={**body, "controlnet": {"hint_channels": 1}})
    assert r.status_code == 200
    got = r.json()
    assert got["preset"] is None and got["control"]["base_preset"] is None
    assert got["control"]["hint"]["shape"] == [1, 1, 128, 128]
    assert got["totals"]["params"] == trace_controlnet("controlnet-tiny").totals.params - 2 * 16 * 9  # 2 fewer inputs
    same = client.post("/api/trace", json={**body, "controlnet": {}}).json()
    assert same["nodes"] == json.loads(trace_controlnet("controlnet-tiny").to_json())["nodes"]
    r = client.post(
        "/api/trace", json={"preset": "sd1", "controlnet": {"hint_channels": 3}, "control_scales": [2.0] * 13}
    )
    assert r.status_code == 200 and r.json()["control"]["scales"] == [2.0] * 13


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preset": "sd1", "controlnet": {"hint_channels": 0}}, "controlnet.hint_channels"),
        ({"preset": "sd1", "controlnet": {"hint_block_channels": []}}, "controlnet.hint_block_channels"),
        ({"preset": "sd1", "controlnet": {"colour": 1}}, "controlnet.colour"),
        ({"preset": "controlnet-sd15", "controlnet": {}}, "controlnet"),
        ({"preset": "sd1", "controlnet": {}, "control_scales": [1.0]}, "control_scales"),
        ({"preset": "sd1", "controlnet": {}, "image_size": [520, 520]}, "image_size"),
    ],
)
def test_api_bad_custom_controlnet_names_the_field(client, body: dict, field: str) -> None:
    r = client.post("/api/trace", json=body)
    assert r.status_code == 422, r.json()
    assert r.json()["field"] == field


def test_api_controlnet_on_a_variant(client) -> None:
    r = client.post("/api/trace", json={"preset": "segmind-vega", "controlnet": {}, "image_size": [512, 512]})
    assert r.status_code == 200
    body = r.json()
    assert body["ldm_params"] is None  # the original cannot say a lone middle ResBlock
    injections = body["control"]["injections"]
    assert injections[-1]["target"] == "middle_block" and injections[-1]["shape"] == [1, 1280, 16, 16]
    r = client.post("/api/trace", json={"preset": "bk-sdm-small", "controlnet": {}})
    assert r.status_code == 422 and r.json()["field"] == "controlnet.middle_block"
