"""The community's block names: block-weight IDs, the merge weights, and kohya sd-scripts' block index.

Block-weight IDs (hako-mikan/sd-webui-lora-block-weight, `scripts/lora_block_weight.py`): `BASE` is the text
encoder, `INnn` is `input_blocks.nn`, `M00` the middle block, `OUTnn` is `output_blocks.nn`. The tool finds a
module's ID by substring (`diffusion_model_input_blocks_4_` in the A1111 module name), so the IDs follow the
original numbering for every model; modules no ID names (`time_embed`, `label_emb`, `out`) keep weight 1. Its
named ID lists (`BLOCKID26`, `BLOCKID17`, `BLOCKID12`, `BLOCKID20`) are data in `data/block_weights.json`:

- SD 1.x/2.x layout (12 input blocks, middle, 12 output blocks): 26 IDs (every block) and 17 (those with
  attention, all a plain LoRA touches);
- SDXL layout (9 / 1 / 9): 20 IDs (every block, LoCon/LyCORIS) and 12 (those with attention).

Merge block weights (hako-mikan/sd-webui-supermerger, `scripts/mergers/mergers.py` `blockfromkey`;
bbc-mc/sdweb-merge-block-weighted-gui, `scripts/mbw/merge_block_weighted.py`): 25 weights `IN00…IN11, M00,
OUT00…OUT11`; `time_embed` is merged with IN00 and the final `out` with OUT11; everything else (text encoder, VAE,
a `label_emb`) takes the separate base alpha (`BASE`). For SDXL, SuperMerger merges `time_embed` and
`label_emb` with IN00 and `out` with OUT08.

kohya sd-scripts' block index (kohya-ss/sd-scripts, `networks/lora.py` `get_block_index`, `LoRANetwork`):

- SD 1.x/2.x, 25 slots: `down_blocks.i.{resnets|attentions}.j` -> 1 + 3i + j, `down_blocks.i.downsamplers.0`
  -> 1 + 3i + 2 (that is `input_blocks.k` -> k), the middle block -> 12, `up_blocks.i.*.j` -> 13 + 3i + j
  (`output_blocks.k` -> 13 + k). Slot 0 is the place of `input_blocks.0` (conv_in), where no LoRA module ever
  falls; `time_embed` and `out` get none (-1). `down_lr_weight` and `up_lr_weight` take 12 values (slots 0–11,
  13–24), `mid_lr_weight` one (12), `block_dims` / `block_alphas` / `conv_block_dims` 25.
- SDXL, 23 slots: 0 `time_embed` and `label_emb`, 1–9 `input_blocks.0–8`, 10–12 `middle_block.0/.1/.2` apart,
  13–21 `output_blocks.0–8`, 22 `out`. `down_lr_weight` / `up_lr_weight` take 9 values, `mid_lr_weight` 3;
  slots 0 and 22 are always 1.0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from ..model.config import UNetConfig, plan_blocks

Layout = Literal["sd1", "sdxl"]
_DATA = Path(__file__).resolve().parent.parent / "data" / "block_weights.json"

LAYOUT_TITLES: dict[Layout, str] = {
    "sd1": "SD 1.x/2.x layout: 12 input blocks, the middle block, 12 output blocks",
    "sdxl": "SDXL layout: 9 input blocks, the middle block, 9 output blocks",
}
# The block-weight tool's ID lists that belong to each layout, smallest first.
LAYOUT_LISTS: dict[Layout, tuple[str, ...]] = {"sd1": ("17", "26"), "sdxl": ("12", "20")}
LIST_TITLES = {
    "17": "LoRA: the text encoder and the 16 blocks with attention",
    "26": "LyCORIS / LoCon: the text encoder and every block",
    "12": "SDXL LoRA: the text encoder and the 11 blocks with attention",
    "20": "SDXL LyCORIS / LoCon: the text encoder and every block",
}
KOHYA_SLOTS: dict[Layout, int] = {"sd1": 25, "sdxl": 23}


@dataclass(frozen=True)
class Preset:
    """A named weight vector of the block-weight tool: 17 values over the 17-ID list."""

    name: str
    values: tuple[float, ...]
    source: str


@dataclass(frozen=True)
class BlockWeightData:
    sources: dict[str, str]
    id_lists: dict[str, tuple[str, ...]]
    presets: dict[str, Preset]


@cache
def block_weight_data() -> BlockWeightData:
    """The ID lists and presets of the block-weight tool (`data/block_weights.json`, with their sources)."""
    raw = json.loads(_DATA.read_text())
    presets = {
        name: Preset(name, tuple(float(v) for v in p["values"]), p["source"]) for name, p in raw["presets"].items()
    }
    return BlockWeightData(raw["sources"], {k: tuple(v) for k, v in raw["id_lists"].items()}, presets)


def layout_of(config: UNetConfig) -> Layout | None:
    """Which community layout the config's U has: SD 1.x/2.x (4 levels), SDXL (3 levels), or neither.

    Both have two ResBlocks per level; the IDs themselves are read off the block numbers, so a model with the same
    numbering (the SDXL refiner and the x4 upscaler have SD 1.x's) gets the same lists.
    """
    if set(config.num_res_blocks) != {2} or config.resblock_updown:
        return None
    return {4: "sd1", 3: "sdxl"}.get(config.num_levels)


def block_id(path: str) -> str | None:
    """The block-weight ID of a top-level block: IN04, M00, OUT05; None for time_embed, label_emb, out."""
    head, _, index = path.partition(".")
    if head == "input_blocks" and index.isdigit():
        return f"IN{int(index):02d}"
    if head == "output_blocks" and index.isdigit():
        return f"OUT{int(index):02d}"
    return "M00" if path == "middle_block" else None


def model_ids(config: UNetConfig) -> tuple[str, ...]:
    """BASE and the ID of every block of the model, in the tools' order (inputs, middle, outputs)."""
    return ("BASE", *(i for b in plan_blocks(config) if (i := block_id(b.path)) is not None))


def merge_id(block: str, layout: Layout | None) -> str | None:
    """The merge weight a top-level block is merged with (SuperMerger's `blockfromkey`); None without a layout."""
    if layout is None:
        return None
    if block == "time_embed":
        return "IN00"
    if block == "label_emb":
        return "IN00" if layout == "sdxl" else "BASE"
    if block == "out":
        return "OUT08" if layout == "sdxl" else "OUT11"
    return block_id(block) or "BASE"


def kohya_slot(path: str, layout: Layout | None) -> int | None:
    """kohya sd-scripts' block index of a module (or a top-level block) path; None where kohya has none."""
    if layout is None:
        return None
    parts = path.split(".")
    head = parts[0]
    index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if layout == "sd1":
        if head == "input_blocks" and index is not None:
            return index
        if head == "middle_block":
            return 12
        if head == "output_blocks" and index is not None:
            return 13 + index
        return None
    if head in ("time_embed", "label_emb"):
        return 0
    if head == "input_blocks" and index is not None:
        return 1 + index
    if head == "middle_block":
        return 10 + index if index is not None else None  # the block as a whole spans 10-12
    if head == "output_blocks" and index is not None:
        return 13 + index
    return 22 if head == "out" else None


def kohya_slots(blocks: list[str], layout: Layout) -> list[dict[str, object]]:
    """Every slot of kohya's index for a layout: its number, the top-level blocks it covers, and a note."""
    covers: dict[int, list[str]] = {i: [] for i in range(KOHYA_SLOTS[layout])}
    for path in blocks:
        if path == "middle_block" and layout == "sdxl":
            for k in range(3):
                covers[10 + k].append(f"middle_block.{k}")
        elif (slot := kohya_slot(path, layout)) is not None:
            covers[slot].append(path)
    notes = {0: "input_blocks.0 (conv_in) never gets a LoRA: no module is indexed here"} if layout == "sd1" else {}
    if layout == "sdxl":
        notes = {0: "embeddings: no LoRA; its learning-rate weight is always 1.0", 22: "out: no LoRA; always 1.0"}
    return [{"index": i, "covers": covers[i], "note": notes.get(i)} for i in covers]


def kohya_options(layout: Layout) -> dict[str, dict[str, object]]:
    """kohya's per-block network_args and which slots each one's values fill, in order."""
    if layout == "sd1":
        return {
            "down_lr_weight": {"length": 12, "slots": list(range(12))},
            "mid_lr_weight": {"length": 1, "slots": [12]},
            "up_lr_weight": {"length": 12, "slots": list(range(13, 25))},
            **{k: {"length": 25, "slots": list(range(25))} for k in _BLOCK_ARGS},
        }
    return {
        "down_lr_weight": {"length": 9, "slots": list(range(1, 10))},
        "mid_lr_weight": {"length": 3, "slots": [10, 11, 12]},
        "up_lr_weight": {"length": 9, "slots": list(range(13, 22))},
        **{k: {"length": 23, "slots": list(range(23))} for k in _BLOCK_ARGS},
    }


_BLOCK_ARGS = ("block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas")
