"""The distilled and pruned variants (BK-SDM Base / Small / Tiny, SSD-1B, Segmind Vega) against their published sizes
and against diffusers' UNet2DConditionModel built on the meta device from the preset's own diffusers config: the
parameter count, every state-dict key and shape, traced and estimated, listed as variants of their parent."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import torch

from sdunet_core import PRESETS, UNetModel
from sdunet_core.checkpoint.diffusers_keys import keymap_for
from sdunet_core.tracer.compare import totals_by_stage
from sdunet_core.tracer.cost import estimate_cost
from sdunet_core.tracer.trace import trace_unet

diffusers = pytest.importorskip("diffusers")

VARIANTS = {
    "bk-sdm-base": "sd1",
    "bk-sdm-small": "sd1",
    "bk-sdm-tiny": "sd1",
    "ssd-1b": "sdxl-base",
    "segmind-vega": "sdxl-base",
}
# Published: BK-SDM's MODEL_CARD.md / paper (counted with diffusers); the Segmind model cards round theirs.
PUBLISHED = {"bk-sdm-base": 579_384_964, "bk-sdm-small": 482_346_884, "bk-sdm-tiny": 323_384_964}
ROUNDED = {"ssd-1b": (1.3e9, 0.05e9), "segmind-vega": (745e6, 0.5e6)}


def diffusers_model(raw: dict[str, Any]) -> torch.nn.Module:
    kwargs = {k: v for k, v in raw.items() if not k.startswith("_")}
    with torch.device("meta"):
        return diffusers.UNet2DConditionModel(**kwargs)


def test_the_variants_are_presets_of_their_parents() -> None:
    assert {name: p.variant_of for name, p in PRESETS.items() if p.variant_of} == VARIANTS
    for name, parent in VARIANTS.items():
        assert PRESETS[name].family == PRESETS[parent].family
        assert PRESETS[name].reference_input == PRESETS[parent].reference_input


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_counts_and_keys_equal_diffusers_from_the_same_config(name: str) -> None:
    preset = PRESETS[name]
    assert preset.diffusers_config is not None
    theirs = {k: tuple(v.shape) for k, v in diffusers_model(preset.diffusers_config).state_dict().items()}
    with torch.device("meta"):
        ours = UNetModel(preset.config)
    keymap = keymap_for(preset.config)
    assert keymap is not None
    assert {keymap.to_diffusers(k): tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    count = sum(p.numel() for p in ours.parameters())
    assert count == preset.num_parameters == sum(torch.Size(s).numel() for s in theirs.values())
    assert estimate_cost(preset.config, preset.sample_size).params == count


def test_published_counts() -> None:
    for name, count in PUBLISHED.items():
        assert PRESETS[name].num_parameters == count
    for name, (about, within) in ROUNDED.items():
        assert abs(PRESETS[name].num_parameters - about) <= within, name


def test_what_the_original_layout_cannot_say() -> None:
    # BK-SDM Base is the original UNet with one res block per down level; the others need our extensions.
    base = PRESETS["bk-sdm-base"]
    assert base.config == dataclasses.replace(PRESETS["sd1"].config, num_res_blocks=(1, 1, 1, 1))
    assert base.ldm_params == base.config.to_ldm() and base.ldm_params["num_res_blocks"] == 1
    for name in ("bk-sdm-small", "bk-sdm-tiny", "ssd-1b", "segmind-vega"):
        assert PRESETS[name].ldm_params is None, name
    assert PRESETS["bk-sdm-small"].config.middle_block is None
    assert PRESETS["ssd-1b"].config.middle_block == "resblock"
    assert PRESETS["ssd-1b"].config.transformer_depth_up == ((1, 1, 1), (2, 1, 1), (4, 4, 10))


def test_segmind_vega_stages_are_the_published_ones() -> None:
    # Segmind's "Vega: model deep dive": down blocks 247 M, mid block 31 M, up blocks 460 M parameters.
    stages = totals_by_stage(trace_unet("segmind-vega"))
    assert round(stages["down"].params / 1e6) == 247
    assert round(stages["mid"].params / 1e6) == 31
    assert round(stages["up"].params / 1e6) == 460


@pytest.mark.parametrize("name", ["bk-sdm-small", "ssd-1b"])
def test_traces_equal_the_estimate(name: str) -> None:
    p = PRESETS[name]
    trace = trace_unet(name)
    cost = estimate_cost(p.config, p.sample_size, context_tokens=p.context_tokens)
    assert (len(trace.nodes), trace.totals.params, trace.totals.activation_bytes) == (
        cost.modules,
        cost.params,
        cost.activation_bytes,
    )
    assert trace.preset == name and trace.ldm_params is None


def test_presets_api_says_which_are_variants(client) -> None:
    listed = {p["name"]: p for p in client.get("/api/presets").json()}
    assert {n: p["variant_of"] for n, p in listed.items() if p["variant_of"]} == VARIANTS
    assert listed["sd1"]["variant_of"] is None
    detail = client.get("/api/presets/bk-sdm-small").json()
    assert detail["ldm_params"] is None and detail["config"]["middle_block"] is None
    assert detail["diffusers_config"]["mid_block_type"] is None


@pytest.mark.parametrize("name", ["bk-sdm-small", "ssd-1b"])
def test_activation_catalog_of_a_changed_middle(name: str) -> None:
    from sdunet_core.activations.catalog import catalog

    p = PRESETS[name]
    mid = [point.name for point in catalog(p.config, p.sample_size) if point.stage == "mid"]
    # No middle block: no points; a lone ResBlock: its increment and output only.
    assert mid == ([] if p.config.middle_block is None else ["mid-repeat0-res-increment", "mid-repeat0-res-out"])


def test_cli_inspects_a_file_without_a_middle_block(tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    from app.cli import main
    from sdunet_core import UNetConfig

    config = UNetConfig(
        in_channels=4,
        out_channels=4,
        model_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_resolutions=(1, 2),
        num_head_channels=8,
        use_spatial_transformer=True,
        context_dim=16,
        norm_groups=8,
        middle_block=None,
    )
    weights = {f"model.diffusion_model.{k}": v.half() for k, v in UNetModel(config).state_dict().items()}
    path = tmp_path / "pruned.safetensors"
    save_file(weights, str(path))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "middle_block: null" in out and "loads into UNetModel(config) with strict=True" in out
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["middle_block"] is None and report["ldm_params"] is None and report["exact"]
