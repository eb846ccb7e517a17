"""The names table against its sources: the block-weight tool's ID lists and presets (copied into tests/data/lbw),
kohya sd-scripts' block index and target modules, SuperMerger's merge blocks, and diffusers' own module names."""

from __future__ import annotations

import re

import pytest
import torch

from sdunet_core import PRESETS, UNetModel
from sdunet_core.names import layout_of, model_ids, names_table
from sdunet_core.names.ids import block_weight_data
from tests.conftest import DATA
from tests.diffusers_configs import DIFFUSERS_CONFIGS


def _source_lines(name: str) -> dict[str, list[str]]:
    lines = (DATA / "lbw" / name).read_text().splitlines()
    return {k: v.split(",") for k, _, v in (line.partition(":") for line in lines if line and not line.startswith("#"))}


def _floats(values: list[str]) -> list[float]:
    return [float(v) for v in values]


def test_id_lists_and_presets_are_the_sources_values() -> None:
    data = block_weight_data()
    current = _source_lines("lora_block_weight_b403cb7.txt")
    for n in ("26", "17", "12", "20"):
        assert list(data.id_lists[n]) == current[f"BLOCKID{n}"]
        assert len(data.id_lists[n]) == int(n)
    defaults = {k: v for k, v in current.items() if not k.startswith("BLOCKID")}
    assert list(defaults) == ["NONE", "ALL", "INS", "IND", "INALL", "MIDD", "OUTD", "OUTS", "OUTALL", "ALL0.5"]
    for name, values in defaults.items():
        assert (list(data.presets[name].values), data.presets[name].source) == (_floats(values), "lbw")
    older = _source_lines("lbwpresets_e66c080.txt")
    only_2023 = [k for k in older if k not in defaults]
    assert len(only_2023) == 34 and "NIN04" in only_2023 and "MID" in only_2023  # 17 single-ID and 17 N-presets
    for name in only_2023:
        assert (list(data.presets[name].values), data.presets[name].source) == (_floats(older[name]), "lbw_2023")
    assert set(data.presets) == set(defaults) | set(only_2023)
    assert all(len(p.values) == 17 for p in data.presets.values())
    # The single-ID presets select exactly their ID of the 17 (MID is M00 there).
    for name in [k for k in only_2023 if not k.startswith("N")]:
        ids = data.id_lists["17"]
        assert [ids[i] for i, v in enumerate(data.presets[name].values) if v] == [name.replace("MID", "M00")]


@pytest.mark.parametrize(
    ("preset", "layout", "every", "attention"), [("sd1", "sd1", "26", "17"), ("sdxl-base", "sdxl", "20", "12")]
)
def test_ids_follow_the_original_numbering(preset: str, layout: str, every: str, attention: str) -> None:
    config = PRESETS[preset].config
    lists = block_weight_data().id_lists
    assert layout_of(config) == layout
    assert list(model_ids(config)) == list(lists[every])
    table = names_table(config)
    for b in table["blocks"]:
        index = b["path"].split(".")[-1]
        expected = {"input_blocks": f"IN{index.zfill(2)}", "output_blocks": f"OUT{index.zfill(2)}"}.get(
            b["path"].split(".")[0], "M00" if b["path"] == "middle_block" else None
        )
        assert b["labels"]["block_id"] == expected
    # The short list is BASE and the blocks that hold attention: all a plain LoRA touches.
    with_attention = [b["labels"]["block_id"] for b in table["blocks"] if b["attention"]]
    assert list(lists[attention]) == ["BASE", *with_attention]


# kohya-ss/sd-scripts networks/lora.py, get_block_index: the SD 1.x branch reads diffusers-spelled names.
RE_UPDOWN = re.compile(r"(up|down)_blocks_(\d+)_(resnets|upsamplers|downsamplers|attentions)_(\d+)_")


def _kohya_sd1(name: str) -> int:
    m = RE_UPDOWN.search(name)
    if m:
        updown, i, kind, j = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        idx = 3 * i + (2 if kind in ("upsamplers", "downsamplers") else j)
        return 1 + idx if updown == "down" else 12 + 1 + idx
    return 12 if "mid_block_" in name else -1


def _kohya_sdxl(name: str) -> int:
    rest = name.removeprefix("lora_unet_")
    for head, base in (("input_blocks_", 1), ("middle_block_", 10), ("output_blocks_", 13)):
        if rest.startswith(head):
            return base + int(rest.split("_")[2])
    return 0 if rest.startswith(("time_embed_", "label_emb_")) else 22 if rest.startswith("out_") else -1


def test_kohya_slots_follow_kohyas_block_index() -> None:
    for preset, formula, spelling, slots in (
        ("sd1", _kohya_sd1, "lora_diffusers", 25),
        ("sdxl-base", _kohya_sdxl, "lora_original", 23),
    ):
        table = names_table(PRESETS[preset].config)
        assert len(table["kohya"]["slots"]) == slots
        checked = 0
        for m in table["modules"]:
            if m["kohya_target"] is None:
                continue
            assert int(m["labels"]["kohya"]) == formula(m["labels"][spelling]), m["path"]
            checked += 1
        assert checked > 190
    sd1 = names_table(PRESETS["sd1"].config)["kohya"]
    assert [sd1["options"][k]["length"] for k in ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_dims")] == [
        12,
        1,
        12,
        25,
    ]
    xl = names_table(PRESETS["sdxl-base"].config)["kohya"]
    assert [xl["options"][k]["length"] for k in ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_dims")] == [
        9,
        3,
        9,
        23,
    ]
    assert xl["slots"][10]["covers"] == ["middle_block.0"] and xl["slots"][22]["covers"] == ["out"]
    assert xl["slots"][0]["covers"] == ["time_embed", "label_emb"]


def _supermerger(key: str, xl: bool) -> str:
    """hako-mikan/sd-webui-supermerger scripts/mergers/mergers.py blockfromkey, the merge ID of a checkpoint key."""
    ids = block_weight_data().id_lists["26"]
    if not xl:
        index = -1
        if "time_embed" in key:
            index = 0
        elif ".out." in key:
            index = 24
        elif m := re.search(r"\.input_blocks\.(\d+)\.", key):
            index = int(m.group(1))
        elif re.search(r"\.middle_block\.(\d+)\.", key):
            index = 12
        elif m := re.search(r"\.output_blocks\.(\d+)\.", key):
            index = 13 + int(m.group(1))
        return ids[index + 1]
    if "label_emb" in key or "time_embed" in key:
        return "IN00"
    if "model.diffusion_model.out." in key:
        return "OUT08"
    block = re.findall(r"input|mid|output", key)[0].upper().replace("PUT", "")
    nums = re.sub(r"\D", "", key)[: 1 if "MID" in block else 2]
    return "M00" if "MID" in block else block + "0" + nums[0]


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base"])
def test_merge_ids_follow_supermerger(preset: str) -> None:
    config = PRESETS[preset].config
    with torch.device("meta"):
        keys = list(UNetModel(config).state_dict())
    labels = {m["path"]: m["labels"]["merge"] for m in names_table(config)["modules"]}
    for key in keys:
        module = key.rpartition(".")[0]
        assert labels[module] == _supermerger("model.diffusion_model." + key, preset != "sd1"), key


diffusers = pytest.importorskip("diffusers")


def _kohya_lora_names(unet: torch.nn.Module, targets: set[str]) -> set[str]:
    """kohya's create_modules: every Linear / Conv2d inside a module whose class is a target, as a lora name."""
    names = set()
    for name, module in unet.named_modules():
        if type(module).__name__ in targets:
            for child_name, child in module.named_modules():
                if type(child).__name__ in ("Linear", "Conv2d", "LoRACompatibleLinear", "LoRACompatibleConv"):
                    names.add(f"lora_unet.{name}.{child_name}".replace(".", "_"))
    return names


@pytest.mark.parametrize(("preset", "count_lora", "count_locon"), [("sd1", 192, 278), ("sdxl-base", 722, 788)])
def test_kohya_targets_and_stems_are_diffusers_modules(preset: str, count_lora: int, count_locon: int) -> None:
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel(**DIFFUSERS_CONFIGS[preset])
    lora = _kohya_lora_names(unet, {"Transformer2DModel"})
    locon = _kohya_lora_names(unet, {"Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D"})
    modules = names_table(PRESETS[preset].config)["modules"]
    ours_lora = {m["labels"]["lora_diffusers"] for m in modules if m["kohya_target"] == "lora"}
    ours_locon = {m["labels"]["lora_diffusers"] for m in modules if m["kohya_target"] in ("lora", "locon")}
    assert ours_lora == lora and len(lora) == count_lora
    assert ours_locon == locon and len(locon) == count_locon


def test_block_labels_read_well() -> None:
    table = names_table(PRESETS["sd1"].config)
    blocks = {b["path"]: b["labels"] for b in table["blocks"]}
    assert blocks["input_blocks.4"] == {
        "original": "input_blocks.4",
        "diffusers": "down_blocks.1.resnets.0, down_blocks.1.attentions.0",
        "lora_diffusers": "lora_unet_down_blocks_1_resnets_0_, lora_unet_down_blocks_1_attentions_0_",
        "lora_original": "lora_unet_input_blocks_4_",
        "block_id": "IN04",
        "merge": "IN04",
        "kohya": "4",
    }
    assert (blocks["time_embed"]["merge"], blocks["time_embed"]["block_id"], blocks["time_embed"]["kohya"]) == (
        "IN00",
        None,
        None,
    )
    assert (blocks["out"]["merge"], blocks["out"]["diffusers"]) == ("OUT11", "conv_norm_out, conv_out")
    assert blocks["output_blocks.2"]["diffusers"] == "up_blocks.0.resnets.2, up_blocks.0.upsamplers.0"
    xl = {b["path"]: b["labels"] for b in names_table(PRESETS["sdxl-base"].config)["blocks"]}
    assert (xl["middle_block"]["kohya"], xl["label_emb"]["merge"], xl["out"]["merge"]) == ("10–12", "IN00", "OUT08")
    assert [s["key"] for s in table["schemes"] if s["available"]] == [
        "original",
        "diffusers",
        "lora_diffusers",
        "lora_original",
        "block_id",
        "merge",
        "kohya",
    ]


def test_models_without_a_layout_keep_the_generic_names() -> None:
    table = names_table(PRESETS["ldm-churches"].config)  # five levels: neither layout
    assert (table["layout"], table["id_lists"], table["kohya"]) == (None, [], None)
    assert {s["key"]: s["available"] for s in table["schemes"]} == {
        "original": True,
        "diffusers": False,  # plain attention blocks: diffusers has no one-to-one names
        "lora_diffusers": False,
        "lora_original": True,
        "block_id": True,
        "merge": False,
        "kohya": False,
    }
    assert table["ids"][-1] == "OUT14" and all(m["labels"]["diffusers"] is None for m in table["modules"])
