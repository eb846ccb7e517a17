"""diffusers' own UNet2DConditionModel keyword arguments for the released models, as in their config.json files
(unnamed ones are diffusers' defaults, which are SD 1.x's).

The tests build a real diffusers model from these on meta to check our key map
(sdunet_core.checkpoint.diffusers_keys), and the speed benchmark builds the same architecture to race it against ours.
Nothing in the shipped package needs them.
"""

from __future__ import annotations

from typing import Any

_SD2 = {"cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True}
_XL = {
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}
DIFFUSERS_CONFIGS: dict[str, dict[str, Any]] = {
    "sd1": {"cross_attention_dim": 768, "attention_head_dim": 8},
    "sd2": _SD2,
    "sd2-inpaint": {**_SD2, "in_channels": 9},
    "sd2-unclip-h": {**_SD2, "class_embed_type": "projection", "projection_class_embeddings_input_dim": 2048},
    "sd-x4-upscaler": {
        "in_channels": 7,
        "block_out_channels": [256, 512, 512, 1024],
        "down_block_types": ["DownBlock2D", *["CrossAttnDownBlock2D"] * 3],
        "up_block_types": [*["CrossAttnUpBlock2D"] * 3, "UpBlock2D"],
        "num_class_embeds": 1000,
        "only_cross_attention": [True, True, True, False],
        "attention_head_dim": 8,
        "cross_attention_dim": 1024,
        "use_linear_projection": True,
    },
    "sdxl-base": {
        **_XL,
        "block_out_channels": [320, 640, 1280],
        "transformer_layers_per_block": [1, 2, 10],
        "attention_head_dim": [5, 10, 20],
        "cross_attention_dim": 2048,
        "projection_class_embeddings_input_dim": 2816,
    },
    "sdxl-refiner": {
        **_XL,
        "block_out_channels": [384, 768, 1536, 1536],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "transformer_layers_per_block": 4,
        "attention_head_dim": [6, 12, 24, 24],
        "cross_attention_dim": 1280,
        "projection_class_embeddings_input_dim": 2560,
    },
}
