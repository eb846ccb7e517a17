"""The community's names for the UNet's parts: block-weight IDs, merge weights, kohya's block index, LoRA key stems.

`names_table(config)` labels every block and module in every scheme; `parse_block_weights(spec, config)` turns a
block-weight spec (a preset, IDs, ranges or a vector) into each block's weight. `ids` holds the schemes and their
sources, `modules` the model's modules as the schemes see them.
"""

from .block_weights import BlockWeights, accepted_lengths, parse_block_weights
from .ids import block_id, kohya_slot, layout_of, merge_id, model_ids
from .modules import ModuleInfo, UNetNames, top_level_block, unet_names
from .table import lora_stem, names_table

__all__ = [
    "BlockWeights",
    "ModuleInfo",
    "UNetNames",
    "accepted_lengths",
    "block_id",
    "kohya_slot",
    "layout_of",
    "lora_stem",
    "merge_id",
    "model_ids",
    "names_table",
    "parse_block_weights",
    "top_level_block",
    "unet_names",
]
