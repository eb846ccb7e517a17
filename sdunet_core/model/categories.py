"""The trace's closed vocabulary of what a module is: every category name, and what each one means.

`BlockCategory` names what a top-level block of the U is (the plan gives each block one); `NodeCategory` adds what
any module inside a block can be. `CATEGORIES` describes each name for the page and for `docs/trace-schema.md`, in
the order of `NodeCategory`. Kept apart from the schema so that the plan can name its blocks without importing the
pydantic models.
"""

from __future__ import annotations

from typing import Literal

# What a top-level block is, in the trace's vocabulary (docs/trace-schema.md).
BlockCategory = Literal[
    "time_embedding",
    "label_embedding",
    "input_conv",
    "down_block",
    "downsample_block",
    "middle_block",
    "up_block",
    "output_head",
    "codebook_head",
    "control_hint",
    "zero_conv",
]

# What a module is, in one closed vocabulary (the keys of CATEGORIES, which describes each). A Literal inside a
# Literal is flattened in place, so the top-level names stand between "stage" and "resblock" as if written out.
NodeCategory = Literal[
    "model",
    "stage",
    BlockCategory,
    "resblock",
    "spatial_transformer",
    "transformer_block",
    "self_attention",
    "cross_attention",
    "attention_block",
    "feed_forward",
    "geglu",
    "downsample",
    "upsample",
    "sequence",
    "conv",
    "linear",
    "norm",
    "activation",
    "dropout",
    "identity",
    "pool",
    "embedding",
]

CATEGORIES: dict[str, str] = {
    "model": "the whole model: a UNet, or a ControlNet",
    "stage": "a list of top-level blocks: a stage's (`input_blocks`, `output_blocks`), a ControlNet's `zero_convs`",
    "time_embedding": "top-level: the timestep's sinusoid through Linear → SiLU → Linear (`time_embed`)",
    "label_embedding": "top-level: class or pooled-text/size conditioning embedded to the time embedding's width",
    "input_conv": "top-level: the 3×3 conv from latent channels to `model_channels` (`input_blocks.0`)",
    "down_block": "top-level: a ResBlock, with its attention when the level has one, on the way down",
    "downsample_block": "top-level: the block that halves the resolution at the end of a down level",
    "middle_block": "top-level: ResBlock → attention → ResBlock at the lowest resolution (a lone ResBlock in "
    "SSD-1B and Segmind Vega; absent in BK-SDM Small and Tiny)",
    "up_block": "top-level: a ResBlock on the running tensor concatenated with a skip, its attention, and at the "
    "end of a level the upsampler",
    "output_head": "top-level: GroupNorm → SiLU → 3×3 conv back to latent channels (`out`)",
    "codebook_head": "top-level: GroupNorm → 1×1 conv to codebook logits (`id_predictor`, VQ models)",
    "control_hint": "top-level, ControlNet: the hint encoder (`input_hint_block`), the control image through 3×3 "
    "convs with SiLU, three of stride 2, down to the latent's size, and a zero-initialised conv to `model_channels`; "
    "added to the output of `input_blocks.0`",
    "zero_conv": "top-level, ControlNet: a zero-initialised 1×1 conv on an encoder block's output (`zero_convs.N`, "
    "`middle_block_out`); what it returns is added to the UNet's matching skip or middle block output",
    "resblock": "two 3×3 convs with the time embedding added between them and a residual path",
    "spatial_transformer": "a feature map as tokens through transformer blocks and back, plus its input",
    "transformer_block": "self-attention, cross-attention and feed-forward, each pre-normed with a residual add",
    "self_attention": "attention of the tokens to themselves (`attn1`)",
    "cross_attention": "attention of the tokens to the context, e.g. the text (`attn2`, or `attn1` with "
    "self-attention disabled)",
    "attention_block": "plain multi-head self-attention over all positions (unconditional LDMs)",
    "feed_forward": "GEGLU → Dropout → Linear, 4× wide inside (`ff`)",
    "geglu": "Linear to twice the width, split into value and gate, value · GELU(gate)",
    "downsample": "halves the resolution: 3×3 conv with stride 2, or 2×2 average pool",
    "upsample": "doubles the resolution: nearest-neighbour ×2, then a 3×3 conv (or not)",
    "sequence": "a container run in order (`in_layers`, `emb_layers`, `out_layers`, `to_out`, `ff.net`, "
    "`transformer_blocks`, the embeddings' MLPs)",
    "conv": "a convolution",
    "linear": "a fully connected layer",
    "norm": "GroupNorm or LayerNorm",
    "activation": "an element-wise non-linearity (SiLU)",
    "dropout": "dropout (the identity in eval mode)",
    "identity": "passes its input through (a ResBlock's skip when the channels stay, or its resampler when it has "
    "none)",
    "pool": "an average pool",
    "embedding": "a lookup table of class vectors",
}
