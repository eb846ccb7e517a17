"""The typed trace states what every module is: names end to end, categories, what each block takes, and the
layer facts the page draws (heads, depths, kernels, strides, resampling variants, skips), checked against the
built modules and the original architectures; and docs/trace-schema.md is the schema's own rendering."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from sdunet_core import PRESETS, Trace, UNetConfig, load_preset, trace_unet
from sdunet_core.schema import CATEGORIES, NodeCategory
from sdunet_core.schema_doc import render

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def sd1() -> Trace:
    return trace_unet("sd1")


@pytest.fixture(scope="module")
def sdxl() -> Trace:
    return trace_unet("sdxl-base", sample_size=(32, 32))


# ---- names end to end ------------------------------------------------------------------------------------------
def test_contract_names_import_from_the_package() -> None:
    import sdunet_core

    assert sdunet_core.trace_unet is trace_unet and sdunet_core.Trace is Trace


@pytest.mark.parametrize("model", [load_preset("sd2-v"), "sd2-v"])
def test_a_preset_is_traced_at_its_reference_input_under_its_name(model: object) -> None:
    trace = trace_unet(model)  # type: ignore[arg-type]
    assert trace.preset == "sd2-v"
    assert trace.input.image_size == [768, 768] and trace.input.sample_size == [96, 96]
    # sd2 is the same network, at 512 px.
    assert trace_unet(load_preset("sd2")).input.image_size == [512, 512]


def test_a_bare_config_is_nobodys_preset_and_reports_its_image_size() -> None:
    config = PRESETS["sd2-v"].config
    trace = trace_unet(config, sample_size=(80, 80))
    assert trace.preset is None
    assert trace.input.image_size == [640, 640] and trace.input.latent_factor == 8


# ---- the vocabulary -------------------------------------------------------------------------------------------
def test_every_category_is_documented_once() -> None:
    assert list(CATEGORIES) == list(typing.get_args(NodeCategory))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_module_of_every_preset_has_a_category(name: str) -> None:
    trace = trace_unet(name, sample_size=PRESETS[name].sample_size)
    cats = {n.path: n.category for n in trace.nodes}
    assert cats[""] == "model" and cats["input_blocks"] == cats["output_blocks"] == "stage"
    for block in trace.blocks:
        assert cats[block.path] == block.category
        assert trace.node(block.path).block == block.path
    # Downsample layers and downsample blocks are told apart.
    assert all(cats[n.path] == "downsample" for n in trace.nodes if n.kind == "Downsample")


def test_blocks_say_what_they_are(sd1: Trace) -> None:
    by = {b.path: b for b in sd1.blocks}
    assert [b.category for b in sd1.blocks[:5]] == [
        "time_embedding",
        "input_conv",
        "down_block",
        "down_block",
        "downsample_block",
    ]
    assert by["middle_block"].category == "middle_block" and by["out"].category == "output_head"
    assert by["input_blocks.3"].resample.method == "conv_stride2"
    assert by["output_blocks.2"].resample.method == "nearest_conv" and by["output_blocks.2"].category == "up_block"
    assert by["output_blocks.11"].resample is None


# ---- what each block takes ---------------------------------------------------------------------------------------
def test_time_embedding_and_context_consumers(sd1: Trace) -> None:
    by = {b.path: b for b in sd1.blocks}
    assert not by["input_blocks.0"].takes_emb and not by["input_blocks.0"].takes_context
    assert by["input_blocks.1"].takes_emb and by["input_blocks.1"].takes_context
    assert not by["input_blocks.3"].takes_emb  # a Downsample reads neither
    assert by["input_blocks.10"].takes_emb and not by["input_blocks.10"].takes_context  # no attention at level 3
    res = "input_blocks.1.0"
    assert sd1.node(res).takes_emb and sd1.node(f"{res}.emb_layers").takes_emb
    assert sd1.node(f"{res}.emb_layers.0").takes_emb and not sd1.node(f"{res}.emb_layers.1").takes_emb
    assert not sd1.node(f"{res}.in_layers").takes_emb
    block = "input_blocks.1.1.transformer_blocks.0"
    assert sd1.node(f"{block}.attn2").takes_context and sd1.node(f"{block}.attn2").category == "cross_attention"
    assert sd1.node(f"{block}.attn2.to_k").takes_context and sd1.node(f"{block}.attn2.to_v").takes_context
    assert not sd1.node(f"{block}.attn2.to_q").takes_context
    assert sd1.node(f"{block}.attn1").category == "self_attention" and not sd1.node(f"{block}.attn1").takes_context


def test_a_model_without_text_takes_no_context() -> None:
    trace = trace_unet("ldm-churches")
    assert not any(n.takes_context for n in trace.nodes)
    assert trace.node("").takes_emb and not trace.node("").takes_context


# ---- attention ---------------------------------------------------------------------------------------------------
def test_sd1_attention_facts(sd1: Trace) -> None:
    st = sd1.node("input_blocks.4.1").attention
    assert (st.kind, st.channels, st.heads, st.head_channels, st.depth) == ("spatial_transformer", 640, 8, 80, 1)
    assert st.context_dim == 768 and st.projection == "conv" and st.self_attention_disabled is False
    attn2 = sd1.node("input_blocks.4.1.transformer_blocks.0.attn2").attention
    assert (attn2.kind, attn2.heads, attn2.head_channels, attn2.context_dim) == ("cross_attention", 8, 80, 768)
    assert sd1.node("input_blocks.4.1.transformer_blocks.0.attn1").attention.context_dim is None


def test_sdxl_depths_and_heads(sdxl: Trace) -> None:
    by = {b.path: b for b in sdxl.blocks}
    assert by["input_blocks.1"].attention == []  # no attention at the highest resolution
    (l1,) = by["input_blocks.4"].attention
    (l2,) = by["input_blocks.7"].attention
    assert (l1.depth, l1.heads, l1.head_channels) == (2, 10, 64)
    assert (l2.depth, l2.heads, l2.head_channels, l2.context_dim, l2.projection) == (10, 20, 64, 2048, "linear")
    assert by["middle_block"].attention[0].depth == 10


def test_upscaler_disables_self_attention() -> None:
    trace = trace_unet("sd-x4-upscaler", sample_size=(32, 32))
    st = trace.node("input_blocks.4.1").attention
    assert st.self_attention_disabled is True
    attn1 = trace.node("input_blocks.4.1.transformer_blocks.0.attn1")
    assert attn1.category == "cross_attention" and attn1.takes_context


def test_plain_attention_block_heads() -> None:
    trace = trace_unet("ldm-churches")
    node = next(n for n in trace.nodes if n.kind == "AttentionBlock")
    facts = node.attention
    assert facts.kind == "attention_block" and facts.qkv_order == "legacy"
    assert facts.heads * facts.head_channels == facts.channels == node.inputs[0].shape[1]


# ---- layers --------------------------------------------------------------------------------------------------
def test_conv_linear_and_norm_facts(sd1: Trace) -> None:
    op = sd1.node("input_blocks.3.0.op").conv
    assert (op.kernel, op.stride, op.padding, op.in_channels, op.out_channels) == ([3, 3], [2, 2], [1, 1], 320, 320)
    skip = sd1.node("input_blocks.4.0.skip_connection").conv
    assert (skip.kernel, skip.stride, skip.in_channels, skip.out_channels) == ([1, 1], [1, 1], 320, 640)
    assert sd1.node("input_blocks.4.0").resblock.skip == "conv1x1"
    assert sd1.node("input_blocks.5.0").resblock.skip == "identity"
    up = sd1.node("output_blocks.2.1.conv").conv
    assert (up.kernel, up.stride) == ([3, 3], [1, 1])
    lin = sd1.node("time_embed.0").linear
    assert (lin.in_features, lin.out_features, lin.bias) == (320, 1280, True)
    assert sd1.node("input_blocks.1.1.transformer_blocks.0.attn1.to_q").linear.bias is False
    gn = sd1.node("input_blocks.1.0.in_layers.0").norm
    assert (gn.type, gn.groups, gn.eps, gn.float32) == ("group", 32, 1e-5, True)
    st_norm = sd1.node("input_blocks.1.1.norm").norm
    assert (st_norm.eps, st_norm.float32) == (1e-6, False)
    ln = sd1.node("input_blocks.1.1.transformer_blocks.0.norm1").norm
    assert (ln.type, ln.channels, ln.groups) == ("layer", 320, None)
    # Facts that do not apply are left out of the JSON.
    node = sd1.to_dict()["nodes"][[n.path for n in sd1.nodes].index("input_blocks.1.0.in_layers.1")]
    assert not {"conv", "linear", "norm", "attention"} & set(node)


def _custom(**changes: object) -> UNetConfig:
    base = {
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "channel_mult": (1, 2),
        "num_res_blocks": 1,
        "attention_resolutions": (),
        "num_heads": 2,
        "norm_groups": 8,
    }
    return UNetConfig(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "down", "up"),
    [
        ({}, "conv_stride2", "nearest_conv"),
        ({"conv_resample": False}, "avg_pool", "nearest"),
        ({"resblock_updown": True}, "resblock_avg_pool", "resblock_nearest"),
    ],
)
def test_resampling_variants(changes: dict, down: str, up: str) -> None:
    trace = trace_unet(_custom(**changes), sample_size=(8, 8))
    resamplers = [b for b in trace.blocks if b.resample]
    assert [(b.path, b.resample.direction, b.resample.method) for b in resamplers] == [
        ("input_blocks.2", "down", down),
        ("output_blocks.1", "up", up),
    ]
    if changes.get("conv_resample") is False:
        pool = trace.node("input_blocks.2.0.op").pool
        assert (pool.kernel, pool.stride) == ([2, 2], [2, 2])
    if changes.get("resblock_updown"):
        # The identity resamplers of plain ResBlocks never run: no order; a hand-walked in_layers takes its child's.
        assert trace.node("input_blocks.1.0.h_upd").order is None
        node = trace.node("input_blocks.2.0.in_layers")
        assert not node.called and node.order == trace.node("input_blocks.2.0.in_layers.0").order


def test_up_blocks_name_their_skip(sd1: Trace) -> None:
    by = {b.path: b for b in sd1.blocks}
    assert (by["output_blocks.0"].skip_from, by["output_blocks.0"].skip_channels) == ("input_blocks.11", 1280)
    assert (by["output_blocks.11"].skip_from, by["output_blocks.11"].skip_channels) == ("input_blocks.0", 320)
    assert by["output_blocks.11"].in_channels == 320 + 320
    assert all(b.skip_from is None for b in sd1.blocks if b.stage != "up")


# ---- memory ------------------------------------------------------------------------------------------------------
def test_fused_attention_peak_leaves_out_the_scores(sd1: Trace) -> None:
    t = sd1.totals
    # The largest score matrix: 8 heads x 4096 x 4096 float32 = 512 MiB; the math kernel holds it, a fused one not.
    assert t.peak_activation_bytes - t.peak_activation_bytes_fused >= 8 * 4096 * 4096 * 4
    # The middle block always attends: even a model without attention elsewhere holds its (small) scores.
    small = trace_unet(_custom(), sample_size=(8, 8)).totals
    assert 0 < small.peak_activation_bytes - small.peak_activation_bytes_fused <= small.peak_activation_bytes


# ---- the documentation -------------------------------------------------------------------------------------------
def test_schema_doc_is_rendered_from_the_models() -> None:
    doc = (ROOT / "docs" / "trace-schema.md").read_text()
    assert doc == render(), "run: python -m sdunet_core.schema_doc > docs/trace-schema.md"
    for name in CATEGORIES:
        assert f"`{name}`" in doc


def test_json_round_trip(sd1: Trace) -> None:
    again = Trace.model_validate_json(sd1.to_json())
    assert again.to_dict() == sd1.to_dict()
    assert sd1.to_dict()["skips"][0]["from"] == "input_blocks.11"
