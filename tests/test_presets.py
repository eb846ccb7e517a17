"""The named presets against the original models: exact parameter and state-dict counts, the SD 1.x keys and shapes,
yaml and dict round trips, a forward on the meta device, and the map of blocks and skips.

Every model here is built on the meta device (no memory, no numbers): counts and shapes need nothing else. The
reference data is `tests/data/reference_presets.json` (counts from the original code) and `sd1_state_dict.tsv`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import torch
from torch import nn

from sdunet_core import PRESETS, ConfigError, UNetConfig, UNetModel, load_preset
from tests.conftest import DATA

REFERENCE: dict[str, dict[str, Any]] = json.loads((DATA / "reference_presets.json").read_text())
META = torch.device("meta")


def meta_model(name: str) -> UNetModel:
    with META:
        return UNetModel(PRESETS[name].config)


def reference_inputs(name: str) -> dict[str, torch.Tensor | None]:
    """Meta tensors of the preset's reference input shapes (class labels as integers)."""
    ri = PRESETS[name].reference_input
    y = ri.get("y")
    return {
        "x": torch.empty(ri["x"], device=META),
        "timesteps": torch.empty(ri["x"][0], device=META),
        "context": torch.empty(ri["context"], device=META) if ri.get("context") else None,
        "y": None if y is None else torch.empty(y, device=META, dtype=torch.long if len(y) == 1 else torch.float32),
    }


# ---- counts ----------------------------------------------------------------------------------------------------
VARIANTS = sorted(name for name, p in PRESETS.items() if p.variant_of is not None)


def test_presets_are_the_reference_models() -> None:
    assert set(PRESETS) - {"tiny", "twin"} - set(VARIANTS) == set(REFERENCE)  # ours: the teaching model, the twin
    for name, ref in REFERENCE.items():
        p = PRESETS[name]
        assert p.ldm_params == ref["unet_params"], name
        assert p.num_parameters == ref["num_parameters"], name
        assert p.reference_input == ref["reference_input"], name
        assert p.latent_factor == ref["latent_factor"], name
        assert p.source == ref["source"], name
    assert PRESETS["tiny"].num_parameters is None


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_parameter_and_state_dict_counts_are_exact(name: str) -> None:
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[name]["num_parameters"]
    assert len(model.state_dict()) == REFERENCE[name]["state_dict_entries"]


def test_sd1_state_dict_keys_and_shapes_in_order() -> None:
    """The original's key order too: time_embed, input_blocks, middle_block, output_blocks, out."""
    lines = (DATA / "sd1_state_dict.tsv").read_text().splitlines()
    assert lines[0] == "key\tshape"
    expected = [tuple(line.split("\t")) for line in lines[1:]]
    got = [(k, "x".join(map(str, v.shape))) for k, v in meta_model("sd1").state_dict().items()]
    assert got == expected


def test_sdxl_base_builds_on_meta_quickly() -> None:
    start = time.perf_counter()
    model = meta_model("sdxl-base")
    elapsed = time.perf_counter() - start
    assert all(p.is_meta for p in model.parameters())
    assert elapsed < 5.0  # well under a second in practice; the real target is measured by the benchmark


# ---- the yaml and dict forms -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_round_trips(name: str) -> None:
    cfg = PRESETS[name].config
    assert load_preset(name).config == cfg
    assert load_preset(name).name == name
    if name in REFERENCE:
        assert UNetConfig.from_ldm(REFERENCE[name]["unet_params"]) == cfg
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    if cfg.to_ldm_or_none() is None:  # a variant the original code cannot build (checked in test_variants.py)
        assert name in VARIANTS
        return
    # to_ldm() writes only the original constructor's keywords; our norm_groups (tiny models) stays apart.
    assert set(cfg.to_ldm()) <= ORIGINAL_KEYWORDS
    extensions = {"norm_groups": cfg.norm_groups} if cfg.norm_groups != 32 else {}
    assert UNetConfig.from_ldm({**cfg.to_ldm(), **extensions}) == cfg
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert UNetConfig.from_ldm(json.loads(json.dumps({**cfg.to_ldm(), **extensions}))) == cfg


# The keyword arguments of the original UNetModel.__init__ (ldm openaimodel.py and sgm's), architecture ones only.
ORIGINAL_KEYWORDS = frozenset(
    {
        *("in_channels", "model_channels", "out_channels", "num_res_blocks", "attention_resolutions", "dropout"),
        *("channel_mult", "conv_resample", "dims", "num_classes", "num_heads", "num_head_channels"),
        *("num_heads_upsample", "use_scale_shift_norm", "resblock_updown", "use_new_attention_order"),
        *("use_spatial_transformer", "transformer_depth", "context_dim", "n_embed", "disable_self_attentions"),
        *("num_attention_blocks", "disable_middle_self_attn", "use_linear_in_transformer", "adm_in_channels"),
        "transformer_depth_middle",
    }
)


def test_to_ldm_leaves_out_norm_groups() -> None:
    tiny = PRESETS["tiny"].config
    assert tiny.norm_groups == 8 and "norm_groups" not in tiny.to_ldm()
    assert "norm_groups" in tiny.to_dict()


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load_preset("sd3")
    assert info.value.field == "preset"
    assert "'sd3'" in str(info.value) and "sdxl-base" in str(info.value)


# ---- forward on meta, block map, skips ----------------------------------------------------------------------------
def traced_shapes(model: UNetModel, inputs: dict[str, torch.Tensor | None]) -> tuple[torch.Tensor, dict[str, tuple]]:
    """The output and every top-level block's output shape, from hooks around a meta forward."""
    shapes: dict[str, tuple] = {}
    blocks: list[tuple[str, nn.Module]] = [(f"input_blocks.{i}", b) for i, b in enumerate(model.input_blocks)]
    blocks += [("middle_block", model.middle_block)] if model.middle_block is not None else []
    blocks += [(f"output_blocks.{i}", b) for i, b in enumerate(model.output_blocks)]
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, path=path: shapes.__setitem__(path, tuple(out.shape)))
        for path, module in blocks
    ]
    try:
        out = model(**inputs)
    finally:
        for h in hooks:
            h.remove()
    return out, shapes


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_meta_forward_shapes_agree_with_the_block_map(name: str) -> None:
    model = meta_model(name)
    inputs = reference_inputs(name)
    x = inputs["x"]
    assert x is not None
    out, shapes = traced_shapes(model, inputs)
    assert out.shape == (x.shape[0], model.config.out_channels, *x.shape[2:])
    bmap = model.block_map
    size = x.shape[2:]
    for path, shape in shapes.items():
        plan = bmap[path]
        assert shape == (x.shape[0], plan.out_channels, *(s // plan.factor for s in size)), path
    previous = shapes.get("middle_block", shapes[f"input_blocks.{len(model.input_blocks) - 1}"])
    for i, block in enumerate(model.output_blocks):
        plan = bmap[f"output_blocks.{i}"]
        assert plan.skip_from is not None
        skip = shapes[plan.skip_from]
        assert plan.skip_channels == skip[1]
        # The running channels and the skip's are concatenated into the first ResBlock's input.
        assert block[0].in_layers[2].weight.shape[1] == previous[1] + skip[1] == plan.in_channels
        assert block[0].in_layers[0].num_channels == plan.in_channels
        assert skip[2:] == previous[2:]
        previous = shapes[f"output_blocks.{i}"]


@pytest.mark.parametrize(("name", "levels", "blocks"), [("sd1", 4, 12), ("sdxl-base", 3, 9)])
def test_block_map_and_skips(name: str, levels: int, blocks: int) -> None:
    model = meta_model(name)
    bmap = model.block_map
    inputs = [f"input_blocks.{i}" for i in range(blocks)]
    outputs = [f"output_blocks.{i}" for i in range(blocks)]
    embeds = ["time_embed", "label_emb"] if model.config.num_classes is not None else ["time_embed"]
    assert list(bmap) == [*embeds, *inputs, "middle_block", *outputs, "out"]
    assert len(model.input_blocks) == len(model.output_blocks) == blocks
    # Last in, first out: output_blocks.0 <- input_blocks.{n-1}, ..., output_blocks.{n-1} <- input_blocks.0.
    assert model.skips == list(zip(reversed(inputs), outputs, strict=True))
    assert [bmap[p].stage for p in inputs] == ["down"] * blocks
    assert [bmap[p].stage for p in outputs] == ["up"] * blocks
    assert bmap["middle_block"].stage == "mid" and bmap["middle_block"].level == levels - 1
    downsamples = [p for p in inputs if bmap[p].resample == "down"]
    upsamples = [p for p in outputs if bmap[p].resample == "up"]
    assert downsamples == [f"input_blocks.{3 * k}" for k in range(1, levels)]
    assert upsamples == [f"output_blocks.{3 * k + 2}" for k in range(levels - 1)]
    # Levels run 0 .. levels-1 down and back up, three output blocks per level.
    assert [bmap[p].level for p in outputs] == [lv for lv in reversed(range(levels)) for _ in range(3)]
