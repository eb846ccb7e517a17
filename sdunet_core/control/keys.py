"""Two-way map between the original ControlNet's names (cldm) and diffusers' `ControlNetModel` names.

The encoder copy is named as in the UNet (`diffusers_keys`: `input_blocks.4.1` <-> `down_blocks.1.attentions.0`,
`middle_block.1` <-> `mid_block.attentions.0`, `time_embed.0` <-> `time_embedding.linear_1`, ...); the parts that
only a ControlNet has are renamed:

    input_blocks.0.0              conv_in
    input_hint_block.0            controlnet_cond_embedding.conv_in          (the first conv of the hint encoder)
    input_hint_block.(2j + 2)     controlnet_cond_embedding.blocks.j         (every other conv; SiLUs between)
    input_hint_block.(4n - 2)     controlnet_cond_embedding.conv_out         (n = hint encoder widths; 14 for 4)
    zero_convs.i.0                controlnet_down_blocks.i
    middle_block_out.0            controlnet_mid_block

The hint encoder's numbering follows from how both build it: the original puts a SiLU after every conv but the last
(cldm `ControlNet.__init__`), diffusers keeps the convs in a list (`ControlNetConditioningEmbedding`).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..checkpoint.diffusers_keys import KeyMap, keymap_for, layout_from_config, layout_from_diffusers_keys
from .controlnet import ControlNetConfig


def control_pairs(hint_widths: int) -> list[tuple[str, str]]:
    """(original, diffusers) module pairs of a ControlNet's own parts, for the zero convs of any U (matched by
    index: `zero_convs.i` <-> `controlnet_down_blocks.i`) and a hint encoder of `hint_widths` stages."""
    convs = 2 * (hint_widths - 1)  # the convs between conv_in and conv_out
    pairs = [("input_hint_block.0", "controlnet_cond_embedding.conv_in")]
    pairs += [(f"input_hint_block.{2 * j + 2}", f"controlnet_cond_embedding.blocks.{j}") for j in range(convs)]
    pairs.append((f"input_hint_block.{2 * convs + 2}", "controlnet_cond_embedding.conv_out"))
    pairs.append(("middle_block_out.0", "controlnet_mid_block"))
    return pairs


def _zero_pairs(count: int) -> list[tuple[str, str]]:
    return [(f"zero_convs.{i}.0", f"controlnet_down_blocks.{i}") for i in range(count)]


def controlnet_keymap(config: ControlNetConfig) -> KeyMap | None:
    """The map of a ControlNet config; None where diffusers cannot express its UNet (`unsupported_reason`)."""
    if keymap_for(config.unet) is None:
        return None
    extra = [*control_pairs(len(config.hint_block_channels)), *_zero_pairs(config.num_injections - 1)]
    return KeyMap(layout_from_config(config.unet), extra)


def controlnet_keymap_from_diffusers(keys: Iterable[str]) -> KeyMap:
    """The map read off a diffusers ControlNet's names (before its config is known)."""
    names = set(keys)
    blocks = {
        int(k.split(".")[1]) for k in names if k.startswith("controlnet_down_blocks.") and k.split(".")[1].isdigit()
    }
    convs = {
        int(k.split(".")[2])
        for k in names
        if k.startswith("controlnet_cond_embedding.blocks.") and k.split(".")[2].isdigit()
    }
    widths = (max(convs) + 1) // 2 + 1 if convs else 1
    extra = [*control_pairs(widths), *_zero_pairs(max(blocks) + 1 if blocks else 0)]
    return KeyMap(layout_from_diffusers_keys(names), extra)
