"""Each block's flow (the steps its forward performs, stated by its class) against the forward itself: every step
reads only what exists by then, every module step names a real child, the children run in the flow's order, and
every child that runs is in the flow."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from sdunet_core import Trace, load_preset, trace_unet
from sdunet_core.control.trace import trace_controlnet
from sdunet_core.model.flow import FLOW_OPS, FlowOp
from sdunet_core.schema import Node

# One preset per kind of forward: linear projections with class labels (tiny), conv projections (sd1), disabled
# self-attention (x4 upscaler), plain attention blocks (celebahq), scale-shift norm and resampling ResBlocks
# (churches), no middle block (bk-sdm-small).
PRESETS = ["tiny", "sd1", "sd-x4-upscaler", "ldm-celebahq", "ldm-churches", "bk-sdm-small"]
OWN_INPUTS = {"x", "emb", "context", "timesteps", "y", "hint"}


CONTROLNETS = ["controlnet-tiny"]


@pytest.fixture(scope="module", params=PRESETS + CONTROLNETS)
def trace(request: pytest.FixtureRequest) -> Trace:
    if request.param in CONTROLNETS:
        return trace_controlnet(request.param, sample_size=(32, 32))
    return trace_unet(request.param, sample_size=(32, 32))


def _flows(trace: Trace) -> list[Node]:
    return [n for n in trace.nodes if n.flow is not None]


def _child(node: Node, module: str) -> str:
    return f"{node.path}.{module}" if node.path else module


def test_the_vocabulary_describes_every_op() -> None:
    assert list(FLOW_OPS) == list(typing.get_args(FlowOp))


def test_every_block_class_states_its_flow(trace: Trace) -> None:
    stated = {n.kind for n in _flows(trace)}
    # torch's own layers state none, nor GroupNorm32 (a GroupNorm computed in float32): a leaf has no steps.
    ours = {n.kind for n in trace.nodes if not hasattr(torch.nn, n.kind) and n.kind != "GroupNorm32"}
    assert ours <= stated, ours - stated


def test_steps_read_only_what_exists(trace: Trace) -> None:
    for node in _flows(trace):
        made: set[str] = set()
        for step in node.flow:
            assert set(step.inputs) <= made | OWN_INPUTS, (node.path, step)
            assert step.out not in made, (node.path, step.out)
            made.add(step.out)
            assert (step.op == "module") == (step.module is not None), (node.path, step)
            if step.op == "residual_add":
                assert len(step.inputs) == 2, (node.path, step)


def test_module_steps_are_real_children_run_in_the_flows_order(trace: Trace) -> None:
    nodes = {n.path: n for n in trace.nodes}
    for node in _flows(trace):
        orders = []
        for step in node.flow:
            if step.op != "module":
                continue
            child = nodes[_child(node, step.module)]
            if child.order is not None:
                orders.append(child.order)
        assert orders == sorted(orders), (node.path, [s.module for s in node.flow if s.module])


def test_every_child_that_runs_is_in_the_flow(trace: Trace) -> None:
    nodes = {n.path: n for n in trace.nodes}
    for node in _flows(trace):
        named = {_child(node, s.module) for s in node.flow if s.module}
        for path in node.children:
            ran = nodes[path].order is not None
            covered = path in named or any(m.startswith(f"{path}.") for m in named)
            assert covered or not ran, (node.path, path)


def test_the_forward_variants_are_stated(trace: Trace) -> None:
    if trace.preset in CONTROLNETS:
        pytest.skip("a ControlNet has no up stage: no concat")
    config = load_preset(trace.preset).config
    ops = {s.op for n in _flows(trace) for s in n.flow}
    assert ("scale_shift" in ops) == config.use_scale_shift_norm
    assert ("add_embedding" in ops) == (not config.use_scale_shift_norm)
    assert "concat" in ops and "residual_add" in ops
    assert ("to_tokens" in ops) and ("to_map" in ops)
    for node in _flows(trace):
        keys = [s.inputs for s in node.flow if s.module == "to_k"]
        if node.category in ("cross_attention", "self_attention"):
            assert keys == [["context" if node.category == "cross_attention" else "x"]], node.path


def test_a_codebook_model_ends_in_its_codebook_head() -> None:
    config = dataclasses.replace(load_preset("tiny").config, n_embed=16)
    root = trace_unet(config, sample_size=(16, 16)).nodes[0]
    assert [s.module for s in root.flow if s.module in ("out", "id_predictor")] == ["id_predictor"]
