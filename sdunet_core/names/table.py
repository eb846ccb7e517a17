"""The names table: every top-level block and every module of a model, labelled in every naming scheme.

A scheme is one way the community names a place in the UNet. Each block and module carries one label per scheme
(a string, or None where the scheme has no name for it), so a page can relabel every card by picking a key:

- `original`: the CompVis / Stability module path (`input_blocks.4.1.proj_in`), which this project keeps;
- `diffusers`: UNet2DConditionModel's path (`down_blocks.1.attentions.0.proj_in`, from `diffusers_keys`);
- `lora_diffusers`: the LoRA key stem in diffusers spelling (`lora_unet_down_blocks_1_attentions_0_proj_in`),
  what kohya sd-scripts writes for SD 1.x/2.x, whose training UNet has diffusers names;
- `lora_original`: the stem in the original spelling (`lora_unet_input_blocks_4_1_proj_in`), what kohya writes
  for SDXL (`library/sdxl_original_unet.py` keeps the original names) and what A1111 and ComfyUI also accept
  (ComfyUI `comfy/lora.py` `model_lora_keys_unet` maps both spellings);
- `block_id`: the LoRA block-weight ID (`IN04`), `merge`: the merge weight (`IN04`; `time_embed` is `IN00`),
  `kohya`: kohya's block index (see `ids` for all three and their sources).

A stem is the module path with `.` replaced by `_` after `lora_unet_`; for a block or container the label ends
in `_`, because it is the prefix of every key below it (`lora_unet_input_blocks_1_` is not a prefix of a key of
`input_blocks.10`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from ..checkpoint.diffusers_keys import unsupported_reason
from ..model.config import UNetConfig
from .ids import (
    LAYOUT_LISTS,
    LAYOUT_TITLES,
    LIST_TITLES,
    block_id,
    block_weight_data,
    kohya_options,
    kohya_slot,
    kohya_slots,
    layout_of,
    merge_id,
    model_ids,
)
from .modules import ModuleInfo, unet_names

LORA_UNET_PREFIX = "lora_unet_"

SCHEMES: tuple[tuple[str, str, str], ...] = (
    ("original", "Original (CompVis / Stability)", "the module paths of the original openaimodel.py and sgm"),
    ("diffusers", "diffusers", "UNet2DConditionModel's module paths"),
    (
        "lora_diffusers",
        "LoRA keys, diffusers spelling",
        "lora_unet_ + the diffusers path with _ for . (kohya sd-scripts' SD 1.x/2.x files)",
    ),
    (
        "lora_original",
        "LoRA keys, original spelling",
        "lora_unet_ + the original path with _ for . (kohya sd-scripts' SDXL files)",
    ),
    ("block_id", "Block-weight IDs", "BASE, INnn, M00, OUTnn (hako-mikan/sd-webui-lora-block-weight)"),
    (
        "merge",
        "Merge block weights",
        "IN00…IN11, M00, OUT00…OUT11 (hako-mikan/sd-webui-supermerger, bbc-mc/sdweb-merge-block-weighted-gui)",
    ),
    ("kohya", "kohya block index", "the slots of down/mid/up_lr_weight and block_dims (kohya-ss/sd-scripts)"),
)


def lora_stem(path: str | None, *, prefix: bool = False) -> str | None:
    """`lora_unet_` + the path with `_` for `.`; with `prefix`, ending in `_` (the stem of everything below)."""
    if path is None:
        return None
    return LORA_UNET_PREFIX + path.replace(".", "_") + ("_" if prefix else "")


@dataclass(frozen=True)
class Labels:
    original: str
    diffusers: str | None
    lora_diffusers: str | None
    lora_original: str
    block_id: str | None
    merge: str | None
    kohya: str | None


def _module_labels(m: ModuleInfo, layout: Any) -> Labels:
    slot = kohya_slot(m.path, layout)
    return Labels(
        original=m.path,
        diffusers=m.diffusers,
        lora_diffusers=lora_stem(m.diffusers, prefix=not m.leaf),
        lora_original=lora_stem(m.path, prefix=not m.leaf) or m.path,
        block_id=block_id(m.block),
        merge=merge_id(m.block, layout),
        kohya=None if slot is None else str(slot),
    )


def _block_labels(path: str, children: list[ModuleInfo], own: ModuleInfo | None, layout: Any) -> Labels:
    # A block that diffusers has as one module keeps that name; otherwise its direct children's names together
    # (input_blocks.4 is down_blocks.1.resnets.0 and down_blocks.1.attentions.0).
    if own is not None and own.diffusers is not None:
        diffusers = [own.diffusers]
    else:
        diffusers = [c.diffusers for c in children if c.diffusers is not None]
    stems = [lora_stem(d, prefix=True) or "" for d in diffusers]
    slot = kohya_slot(path, layout)
    kohya = None if slot is None else str(slot)
    if layout == "sdxl" and path == "middle_block":
        kohya = "10–12"  # kohya indexes the middle block's three parts apart
    return Labels(
        original=path,
        diffusers=", ".join(diffusers) or None,
        lora_diffusers=", ".join(stems) or None,
        lora_original=lora_stem(path, prefix=True) or path,
        block_id=block_id(path),
        merge=merge_id(path, layout),
        kohya=kohya,
    )


@lru_cache(maxsize=16)
def names_table(config: UNetConfig) -> dict[str, Any]:
    """Every block and module of the model with its label in every scheme, and what each scheme means here.

    Cached per config: treat the result as read-only."""
    layout = layout_of(config)
    names = unet_names(config)
    by_block: dict[str, list[ModuleInfo]] = {}
    for m in names.modules:
        if m.path != m.block and m.path.count(".") == m.block.count(".") + 1:
            by_block.setdefault(m.block, []).append(m)
    blocks = []
    for b in names.blocks:
        labels = _block_labels(b.path, by_block.get(b.path, []), names.module(b.path), layout)
        blocks.append(
            {
                "path": b.path,
                "stage": b.stage,
                "level": b.level,
                "category": b.category,
                "attention": bool(b.attention),
                "labels": asdict(labels),
            }
        )
    modules = [
        {
            "path": m.path,
            "block": m.block,
            "class_name": m.cls,
            "kind": m.kind,
            "kohya_target": m.kohya_target,
            "labels": asdict(_module_labels(m, layout)),
        }
        for m in names.modules
        if m.path != m.block
    ]
    diffusers_reason = unsupported_reason(config)
    return {
        "layout": layout,
        "layout_title": LAYOUT_TITLES[layout] if layout else None,
        "schemes": _schemes(layout, diffusers_reason),
        "ids": list(model_ids(config)),
        "id_lists": _id_lists(layout),
        "kohya": _kohya(layout, [b.path for b in names.blocks]),
        "presets": [
            {"name": p.name, "values": list(p.values), "source": p.source} for p in block_weight_data().presets.values()
        ],
        "sources": block_weight_data().sources,
        "blocks": blocks,
        "modules": modules,
    }


def _schemes(layout: Any, diffusers_reason: str | None) -> list[dict[str, Any]]:
    reasons = {
        "diffusers": diffusers_reason,
        "lora_diffusers": diffusers_reason,
        "merge": None if layout else "the merge tools name the SD 1.x/2.x and SDXL layouts only",
        "kohya": None if layout else "kohya sd-scripts indexes the SD 1.x/2.x and SDXL layouts only",
    }
    return [
        {
            "key": key,
            "title": title,
            "description": text,
            "available": reasons.get(key) is None,
            "reason": reasons.get(key),
        }
        for key, title, text in SCHEMES
    ]


def _id_lists(layout: Any) -> list[dict[str, Any]]:
    if layout is None:
        return []
    lists = block_weight_data().id_lists
    return [{"name": n, "title": LIST_TITLES[n], "ids": list(lists[n])} for n in LAYOUT_LISTS[layout]]


def _kohya(layout: Any, blocks: list[str]) -> dict[str, Any] | None:
    if layout is None:
        return None
    return {
        "spelling": "diffusers" if layout == "sd1" else "original",
        "slots": kohya_slots(blocks, layout),
        "options": kohya_options(layout),
    }
