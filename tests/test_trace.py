"""The tracer against the reference figures, its own invariants, torchinfo, a semantic golden, and threads."""

from __future__ import annotations

import json
import os
import threading

import pytest
import torch
import torchinfo
from torch.utils.flop_counter import FlopCounterMode

from sdunet_core import PRESETS, UNetModel
from sdunet_core.tracer.inputs import make_inputs
from sdunet_core.tracer.trace import MemoryLimitError, trace_unet
from tests.conftest import DATA

REFERENCE = json.loads((DATA / "reference_presets.json").read_text())
UPDATE = os.environ.get("SDUNET_UPDATE_GOLDENS") == "1"


@pytest.fixture(scope="module")
def sd1():
    return trace_unet("sd1")


@pytest.fixture(scope="module")
def tiny():
    return trace_unet("tiny")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_every_preset_traces_on_meta_with_exact_params(name: str) -> None:
    trace = trace_unet(name)
    assert trace.totals.params == REFERENCE[name]["num_parameters"]
    assert trace.input.x.shape == REFERENCE[name]["reference_input"]["x"]
    assert trace.nodes[0].outputs[0].shape[2:] == REFERENCE[name]["reference_input"]["x"][2:]
    assert trace.totals.time_ms is None
    assert trace.preset == name


def test_sd1_flops_match_the_reference(sd1) -> None:
    # 803.27 GFLOPs at 512x512, 126.05 G of them attention matmuls; 338.6 GMACs without attention.
    assert sd1.totals.flops == REFERENCE["sd1"]["reference_flops"]["total"] == 803_273_441_280
    assert sd1.totals.attention_flops == 126_052_270_080
    assert sd1.totals.macs_without_attention == 338_610_585_600


def test_sdxl_at_1024_traces() -> None:
    trace = trace_unet("sdxl-base", sample_size=(128, 128))
    assert trace.totals.params == 2_567_463_684
    assert trace.input.image_size == [1024, 1024]
    assert len(trace.skips) == 9


def test_internal_sums(sd1) -> None:
    for node in sd1.nodes:
        kids = [sd1.node(c) for c in node.children]
        assert node.params == node.params_own + sum(k.params for k in kids), node.path
        assert node.flops == node.flops_own + sum(k.flops for k in kids), node.path
        assert node.flops == sum(node.flops_by_op.model_dump().values())


def test_node_paths_equal_named_modules(sd1) -> None:
    with torch.device("meta"):
        model = UNetModel(PRESETS["sd1"].config)
    assert [n.path for n in sd1.nodes] == [p for p, _ in model.named_modules()]


@pytest.mark.parametrize("name", ["tiny", "sd1", "ldm-churches"])
def test_root_flops_equal_flop_counter_mode(name: str) -> None:
    preset = PRESETS[name]
    with torch.device("meta"):
        model = UNetModel(preset.config).eval()
    inputs = make_inputs(preset.config, preset.sample_size, 1, preset.context_tokens, "meta", torch.float32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    assert trace_unet(name).totals.flops == counter.get_total_flops()


def test_skips_add_up(sd1) -> None:
    assert [(s.from_, s.to) for s in sd1.skips] == [(f"input_blocks.{11 - i}", f"output_blocks.{i}") for i in range(12)]
    previous = "middle_block"
    for skip in sd1.skips:
        running = sd1.node(previous).outputs[0].shape
        assert skip.shape == sd1.node(skip.from_).outputs[0].shape
        assert skip.channels == skip.shape[1]
        assert skip.concat_shape[1] == running[1] + skip.shape[1]
        assert sd1.node(skip.to + ".0").inputs[0].shape == skip.concat_shape
        previous = skip.to


def test_params_and_shapes_per_node_match_torchinfo(tiny) -> None:
    cfg = PRESETS["tiny"].config
    model = UNetModel(cfg).eval()
    inputs = make_inputs(cfg, (16, 16), 1, 8, "cpu", torch.float32)
    stats = torchinfo.summary(model, input_data=inputs, verbose=0, depth=50)
    names = {m: n for n, m in model.named_modules()}
    checked = 0
    for layer in stats.summary_list:
        node = tiny.node(names[layer.module])
        assert layer.num_params == node.params, node.path
        if layer.output_size and node.called and node.outputs:
            assert list(layer.output_size) == node.outputs[0].shape, node.path
        checked += 1
    assert checked > 500


def _semantic(trace) -> dict:
    """What the golden pins: structure, shapes, params and FLOPs per node (not timings or versions)."""
    keep = (
        "path",
        "parent",
        "kind",
        "category",
        "block",
        "stage",
        "level",
        "outputs",
        "params",
        "params_own",
        "flops",
        "flops_own",
        "flops_by_op",
        "activation_bytes",
        "takes_emb",
        "takes_context",
        "order",
    )
    data = trace.to_dict()
    return {
        "totals": {k: v for k, v in data["totals"].items() if k != "time_ms"},
        "skips": data["skips"],
        "blocks": data["blocks"],
        # A block's flow is part of what it is; nodes without one (torch's layers) leave it out.
        "nodes": [{k: n[k] for k in (*keep, "flow") if k in n} for n in data["nodes"]],
    }


def test_tiny_trace_golden(tiny) -> None:
    path = DATA / "golden_tiny_trace.json"
    got = json.loads(json.dumps(_semantic(tiny)))
    if UPDATE or not path.exists():
        path.write_text(json.dumps(got, indent=1) + "\n")
        if not UPDATE:
            pytest.fail("golden written for the first time; run again (SDUNET_UPDATE_GOLDENS=1 rewrites it)")
    golden = json.loads(path.read_text())
    assert got == golden
    # The golden holds together on its own: every node's params and FLOPs are its own plus its children's.
    children: dict[str, list[dict]] = {}
    for node in golden["nodes"]:
        children.setdefault(node["parent"], []).append(node)
    for node in golden["nodes"]:
        kids = children.get(node["path"], [])
        assert node["params"] == node["params_own"] + sum(k["params"] for k in kids)
        assert node["flops"] == node["flops_own"] + sum(k["flops"] for k in kids)
    assert golden["nodes"][0]["flops"] == golden["totals"]["flops"]


def test_two_threads_give_the_same_results_as_alone() -> None:
    alone = {name: trace_unet(name).to_dict() for name in ("sd1", "ldm-churches")}
    results: dict[str, dict] = {}

    def run(name: str) -> None:
        results[name] = trace_unet(name).to_dict()

    threads = [threading.Thread(target=run, args=(n,)) for n in alone]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == alone


def test_timed_cpu_trace_fills_times() -> None:
    phases: list[str] = []
    trace = trace_unet("tiny", device="cpu", repeats=2, progress=lambda phase, done, total: phases.append(phase))
    assert trace.timing is not None and trace.timing.forward_ms > 0
    assert trace.device == "cpu"
    assert trace.totals.time_ms == trace.timing.forward_ms
    called = [n for n in trace.nodes if n.called]
    assert all(n.time_ms is not None and n.time_ms >= 0 for n in called)
    assert phases[0] == "building" and "warmup" in phases and "run" in phases and phases[-1] == "done"
    # Structure and FLOPs are the same as on meta.
    assert trace.totals.flops == trace_unet("tiny").totals.flops


def test_timed_trace_loads_the_given_state_dict_strictly() -> None:
    cfg = PRESETS["tiny"].config
    torch.manual_seed(3)
    state = UNetModel(cfg).state_dict()
    a = trace_unet(cfg, device="cpu", repeats=1, state_dict=state)
    assert a.totals.params == sum(v.numel() for v in state.values())
    # A state dict that does not fit is refused, not silently ignored.
    with pytest.raises(RuntimeError, match="Missing key"):
        trace_unet(cfg, device="cpu", repeats=1, state_dict=dict(list(state.items())[:-1]))


def test_memory_guard_refuses_before_building(monkeypatch) -> None:
    import sdunet_core.tracer.trace as tr

    monkeypatch.setattr(tr, "available_bytes", lambda device: 1 << 20)
    with pytest.raises(MemoryLimitError, match="GiB"):
        trace_unet("sd1", device="cpu")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"batch": 0}, "batch"),
        ({"sample_size": (63, 64)}, "sample_size"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "int8"}, "dtype"),
        ({"context_tokens": 0}, "context_tokens"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    from sdunet_core import ConfigError

    with pytest.raises(ConfigError) as info:
        trace_unet("sd1", **kwargs)
    assert info.value.field == field


def test_time_limit_stops_a_long_trace() -> None:
    from sdunet_core.tracer.trace import TraceTimeout

    with pytest.raises(TraceTimeout):
        trace_unet("sdxl-base", time_limit_s=0.0)


def test_timed_bfloat16_on_cpu() -> None:
    # Mixed precision paths: GroupNorm32 computes in float32 over bf16 activations, the rest runs in bf16.
    for name in ("tiny", "ldm-churches"):
        trace = trace_unet(name, device="cpu", dtype="bfloat16", repeats=1, warmup=0, sample_size=(16, 16))
        assert trace.dtype == "bfloat16" and trace.totals.time_ms > 0
        assert trace.nodes[0].outputs[0].dtype == "bfloat16"


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("tiny", (16, 16)),
        ("sd1", (32, 32)),
        ("sdxl-base", (32, 32)),
        ("sd-x4-upscaler", (32, 32)),
        ("ldm-cin256", None),
    ],
)
def test_replayed_repeats_record_exactly_what_a_full_run_does(name: str, size: tuple | None) -> None:
    """Each distinct (sub-block, input shape) runs once and its repeats are replayed (memo.py): the records, FLOPs
    and memory high-water marks are those of a forward that runs every module."""
    from sdunet_core.tracer.structure import record_nodes
    from sdunet_core.tracer.trace import _build

    preset = PRESETS[name]
    model = _build(preset.config, "meta", torch.float32)
    inputs = make_inputs(preset.config, size or preset.sample_size, 1, preset.context_tokens, "meta", torch.float32)
    full, full_mode = record_nodes(model, inputs, memoize=False)
    memo, memo_mode = record_nodes(model, inputs, memoize=True)
    assert memo == full
    assert (memo_mode.math.peak, memo_mode.fused.peak) == (full_mode.math.peak, full_mode.fused.peak)
    assert memo_mode.ops < full_mode.ops  # repeats were not run
    assert all("forward" not in vars(m) for m in model.modules())  # the model is left as it was


def test_totals_at_several_sizes_equal_whole_traces() -> None:
    from sdunet_core.tracer.trace import trace_totals

    sizes = [(16, 16), (32, 32), (24, 40)]
    for (inp, totals), size in zip(trace_totals("sd1", sizes), sizes, strict=True):
        full = trace_unet("sd1", sample_size=size)
        assert totals == full.totals
        assert inp == full.input
