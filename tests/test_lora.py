"""LoRA detection from headers built to each format's key patterns (tests/lora_factory.py) for SD 1.x, SD 2.x and
SDXL: format, family, every module with its rank and parameters, the text encoder apart, tensors that patch nothing
listed with why, foreign headers refused, alphas and scales, and the FLOPs against hand-computed values."""

from __future__ import annotations

import math

import pytest

from sdunet_core import PRESETS
from sdunet_core.lora import LoraError, add_flops, detect_lora
from sdunet_core.names import block_id
from sdunet_core.tracer.trace import trace_unet
from tests.lora_factory import FORMATS, kohya_metadata, lora_tensors, make_header, modules_for

EXPECTED_FORMAT = {"locon-cp": "locon", "attn-procs": "diffusers-attn-procs"}
FAMILY = {"sd1": "sd1", "sd2": "sd2", "sdxl-base": "sdxl"}


def _params(tensors: dict[str, list[int]]) -> int:
    return sum(math.prod(s) for n, s in tensors.items() if not n.endswith(".alpha"))


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_is_detected(preset: str, fmt: str) -> None:
    tensors = lora_tensors(preset, fmt, rank=4)
    d = detect_lora(make_header(tensors)).to_dict()
    expected = modules_for(preset, fmt)
    assert d["format"] == EXPECTED_FORMAT.get(fmt, fmt)
    assert (d["family"], d["preset"], d["unmatched"]) == (FAMILY[preset], preset, [])
    assert [m["path"] for m in d["modules"]] == [m.path for m in expected]
    assert [m["diffusers"] for m in d["modules"]] == [m.diffusers for m in expected]
    assert d["params_added"] == _params(tensors)
    assert d["unet_params"] + d["text_encoder"]["params"] == d["params_added"]
    assert d["ranks"] == ({} if fmt == "full" else {"4": len(expected)})
    touched = list(dict.fromkeys(block_id(m.block) for m in expected))
    assert d["block_ids"] == ["BASE", *touched]
    assert sum(d["blocks"].values()) == d["params_added"]
    assert sum(b["params"] for b in d["unet_blocks"]) == d["unet_params"]
    layers, width = (12, 768) if preset == "sd1" else (44, None)
    assert len(d["text_encoder"]["modules"]) == layers * 6
    if preset == "sdxl-base":
        names = ("text_encoder", "text_encoder_2") if fmt == "peft" else ("lora_te1", "lora_te2")
        assert [(e["name"], e["width"]) for e in d["text_encoder"]["encoders"]] == [(names[0], 768), (names[1], 1280)]
    else:
        assert d["text_encoder"]["encoders"][0]["width"] == width
    attention_only = fmt in ("lora", "peft", "attn-procs")
    assert d["id_list"] == {("sd1", True): "17", ("sd1", False): "26", ("sdxl-base", True): "12"}.get(
        (preset, attention_only), "20"
    )


def test_sd1_and_sd2_are_told_apart_by_shapes() -> None:
    for preset in ("sd1", "sd2"):
        d = detect_lora(make_header(lora_tensors(preset, "lora", text_encoder=False))).to_dict()
        assert d["family"] == FAMILY[preset]
        assert "SD 1.x" in d["family_evidence"][0]


def _self_attention_only(preset: str) -> dict[str, list[int]]:
    # attn1.to_q reads the same width in SD 1.x and SD 2.x: the shapes cannot tell them apart.
    return lora_tensors(preset, "lora", text_encoder=False, select=lambda m: m.path.endswith("attn1.to_q"))


def test_metadata_breaks_a_tie_and_is_checked_against_the_shapes() -> None:
    tied = detect_lora(make_header(_self_attention_only("sd2")))
    assert tied.family == "sd1" and "alike" in tied.family_evidence[-1]
    told = detect_lora(make_header(_self_attention_only("sd2"), kohya_metadata("sd2")))
    assert told.family == "sd2" and "ss_base_model_version says SD 2.x" in told.family_evidence[1]
    wrong = detect_lora(make_header(lora_tensors("sd1", "lora", text_encoder=False), kohya_metadata("sdxl")))
    assert wrong.family == "sd1" and "says SDXL, but the shapes fit SD 1.x" in wrong.family_evidence[-1]
    v_model = {**kohya_metadata("sd2"), "ss_base_model_version": "sd_v2_v"}
    assert detect_lora(make_header(lora_tensors("sd2", "lora"), v_model)).preset == "sd2-v"


def test_a_text_encoder_only_lora_is_placed_by_its_width() -> None:
    for preset in ("sd1", "sd2", "sdxl-base"):
        tensors = {k: v for k, v in lora_tensors(preset, "lora").items() if k.startswith("lora_te")}
        d = detect_lora(make_header(tensors)).to_dict()
        assert (d["family"], d["modules"], d["block_ids"]) == (FAMILY[preset], [], ["BASE"])


def test_alpha_and_scale() -> None:
    tensors = lora_tensors("sd1", "locon", rank=8, text_encoder=False)
    q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    conv = "lora_unet_down_blocks_0_resnets_0_conv1"
    # The values read from the file win; without them kohya's rules over the metadata give the alpha.
    d = detect_lora(make_header(tensors), alphas={f"{q}.alpha": 4.0})
    by_key = {m.lora_key: m for m in d.modules}
    assert (by_key[q].alpha, by_key[q].alpha_source, by_key[q].scale) == (4.0, "tensor", 0.5)
    assert (by_key[conv].alpha, by_key[conv].alpha_source, by_key[conv].scale) == (None, "unknown", None)
    meta = kohya_metadata("sd1", rank=8, alpha=2.0, conv_dim="8", conv_alpha="1")
    by_key = {m.lora_key: m for m in detect_lora(make_header(tensors, meta)).modules}
    assert (by_key[q].alpha, by_key[q].scale, by_key[q].alpha_source) == (2.0, 0.25, "metadata")
    assert (by_key[conv].alpha, by_key[conv].scale) == (1.0, 0.125)  # a 3x3 conv takes conv_alpha
    blocks = kohya_metadata("sd1", rank=8, alpha=2.0, block_alphas=",".join(str(i) for i in range(25)))
    by_key = {m.lora_key: m for m in detect_lora(make_header(tensors, blocks)).modules}
    assert by_key[q].alpha == 1.0  # slot 1 (input_blocks.1) of block_alphas
    no_alpha = detect_lora(make_header(lora_tensors("sd1", "lora", rank=8, alpha=False)))
    assert {(m.alpha, m.alpha_source, m.scale) for m in no_alpha.modules} == {(None, "none", 1.0)}


def test_tensors_that_patch_nothing_are_listed_with_why() -> None:
    tensors = lora_tensors("sd1", "lora", text_encoder=False)
    q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    tensors[f"{q}.lora_up.weight"] = [321, 4]  # a misfit: to_q has 320 outputs
    extra = {
        "lora_unet_no_such_module.lora_down.weight": [4, 8],
        "lora_unet_no_such_module.lora_up.weight": [8, 4],
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": [4, 320, 1, 1],  # no up
        "lora_foo_bar.lora_down.weight": [4, 8],
        "lora_foo_bar.lora_up.weight": [8, 4],
        "some.other.tensor": [3],
    }
    tensors = {k: v for k, v in tensors.items() if not k.startswith("lora_unet_down_blocks_0_attentions_0_proj_in.")}
    d = detect_lora(make_header({**tensors, **extra})).to_dict()
    reasons = {u["key"]: u["reason"] for u in d["unmatched"]}
    assert reasons[f"{q}.lora_up.weight"].startswith(
        "names input_blocks.1.1.transformer_blocks.0.attn1.to_q, but its shapes do not fit that layer's weight "
        "[320, 320]"
    )
    assert reasons["lora_unet_no_such_module.lora_down.weight"] == "names no module with a weight in this model"
    assert reasons["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"] == "incomplete lora module: no up"
    assert reasons["lora_foo_bar.lora_up.weight"].startswith("no UNet or text-encoder prefix")
    assert reasons["some.other.tensor"] == "not a tensor of any LoRA format"
    assert len(d["modules"]) == 192 - 2  # the misfit and the incomplete one are not modules


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"model.diffusion_model.time_embed.0.weight": {"dtype": "F16", "shape": [1280, 320]}}, "is a UNet checkpoint"),
        ({"first_stage_model.decoder.conv_out.weight": {"dtype": "F16", "shape": [3, 128, 3, 3]}}, "is a VAE"),
        ({"emb_params": {"dtype": "F32", "shape": [2, 768]}}, "is a textual-inversion embedding"),
        ({"text_model.embeddings.token_embedding.weight": {"dtype": "F16", "shape": [9, 8]}}, "is a text encoder"),
        ({"x": {"dtype": "F16", "shape": [1]}}, "is not a LoRA: no tensor name ends in a LoRA part"),
        ({"__metadata__": {"ss_network_dim": "4"}}, "holds no tensors"),
    ],
    ids=["checkpoint", "vae", "embedding", "text-encoder", "garbage", "empty"],
)  # fmt: skip
def test_foreign_headers_are_refused_naming_what_they_are(header: dict, reason: str) -> None:
    with pytest.raises(LoraError) as err:
        detect_lora(header)
    assert err.value.field == "header" and reason in err.value.reason


def test_a_lora_for_another_model_is_refused() -> None:
    flux = {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": {"dtype": "BF16", "shape": [16, 3072]},
        "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": {"dtype": "BF16", "shape": [9216, 16]},
    }
    with pytest.raises(LoraError, match="a LoRA for another model: none of its 1 UNet modules"):
        detect_lora(flux)
    with pytest.raises(LoraError, match="none of its LoRA tensors makes a whole UNet or text-encoder module"):
        detect_lora(make_header({"lora_unet_x.lora_down.weight": [4, 8], "lora_foo_y.lora_up.weight": [8, 4]}))
    with pytest.raises(LoraError, match="over the limit of 50000"):
        detect_lora({f"t{i}": {"dtype": "F16", "shape": [1]} for i in range(50_001)})
    given = detect_lora(make_header(lora_tensors("sd2", "lora")), preset="sd2-v")
    assert (given.family, given.preset, len(given.modules)) == ("sd2", "sd2-v", 192)
    assert given.family_evidence == ["preset sd2-v was given: 192 of 192 UNet modules fit it"]
    with pytest.raises(LoraError, match="none of its 192 UNet modules is a layer of preset tiny"):
        detect_lora(make_header(lora_tensors("sd1", "lora", text_encoder=False)), preset="tiny")
    with pytest.raises(LoraError, match="unknown preset 'nope'"):
        detect_lora(make_header(lora_tensors("sd1", "lora")), preset="nope")


@pytest.fixture(scope="module")
def sd1_nodes() -> list:
    return trace_unet("sd1", sample_size=(64, 64)).nodes  # 512 px


def test_flops_of_unmerged_modules(sd1_nodes: list) -> None:
    wanted = {
        "input_blocks.1.1.transformer_blocks.0.attn1.to_q",  # 4096 tokens, 320 -> 320
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k",  # 77 context tokens, 768 -> 320
        "input_blocks.1.0.in_layers.2",  # 3x3 conv 320 -> 320 at 64x64
        "input_blocks.3.0.op",  # 3x3 conv, stride 2: 64x64 in, 32x32 out
    }
    r = 4
    expected = {
        "input_blocks.1.1.transformer_blocks.0.attn1.to_q": 2 * 4096 * (320 * r + r * 320),
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k": 2 * 77 * (768 * r + r * 320),
        "input_blocks.1.0.in_layers.2": 2 * 4096 * (320 * r * 9 + r * 320),
        "input_blocks.3.0.op": 2 * 1024 * (320 * r * 9 + r * 320),
    }
    cp = {  # with a CP core the down is 1x1 at the input, the core carries the kernel at the output
        "input_blocks.1.1.transformer_blocks.0.attn1.to_q": expected[
            "input_blocks.1.1.transformer_blocks.0.attn1.to_q"
        ],
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k": expected[
            "input_blocks.1.1.transformer_blocks.0.attn2.to_k"
        ],
        "input_blocks.1.0.in_layers.2": 2 * (4096 * 320 * r + 4096 * (r * r * 9 + r * 320)),
        "input_blocks.3.0.op": 2 * (4096 * 320 * r + 1024 * (r * r * 9 + r * 320)),
    }
    dense = {  # LoHa: a dense delta applied as a second layer
        "input_blocks.1.1.transformer_blocks.0.attn1.to_q": 2 * 4096 * 320 * 320,
        "input_blocks.1.1.transformer_blocks.0.attn2.to_k": 2 * 77 * 320 * 768,
        "input_blocks.1.0.in_layers.2": 2 * 4096 * 320 * 320 * 9,
        "input_blocks.3.0.op": 2 * 1024 * 320 * 320 * 9,
    }
    for fmt, values in (("locon", expected), ("locon-cp", cp), ("loha", dense)):
        tensors = lora_tensors("sd1", fmt, rank=r, text_encoder=False, select=lambda m: m.path in wanted)
        d = detect_lora(make_header(tensors))
        add_flops(d, sd1_nodes, {"preset": "sd1", "image_size": [512, 512], "sample_size": [64, 64], "batch": 1})
        out = d.to_dict()
        assert {m["path"]: m["flops"] for m in out["modules"]} == values, fmt
        assert out["flops_added"] == sum(values.values())
        assert sum(b["flops"] for b in out["unet_blocks"]) == out["flops_added"]
        assert out["flops"]["image_size"] == [512, 512]
    assert PRESETS["sd1"].reference_input["x"] == [1, 4, 64, 64]
