"""Build the U's modules from its plan: one place that turns a `BlockPlan` into the module the original builds.

`UNetModel` builds every planned block with it; the ControlNet (`control/controlnet.py`) builds the time and label
embeddings, the input blocks and the middle block with the same code, so a ControlNet's copy of the encoder is
the UNet's encoder by construction (same classes, same names, same shapes).

References: `ldm/modules/diffusionmodules/openaimodel.py` (CompVis, Stability-AI stablediffusion),
`sgm/modules/diffusionmodules/openaimodel.py` (Stability-AI generative-models), lllyasviel/ControlNet
`cldm/cldm.py` (which copies the same construction for its encoder).
"""

from __future__ import annotations

from torch import nn

from .attention import SpatialTransformer
from .blocks import (
    AttentionBlock,
    Downsample,
    ResBlock,
    TimestepEmbedSequential,
    Upsample,
    conv_nd,
    normalization,
)
from .config import UNetConfig
from .plan import AttentionPlan, BlockPlan


def time_embedding(cfg: UNetConfig) -> nn.Sequential:
    """The sinusoid of width model_channels -> Linear -> SiLU -> Linear to 4 * model_channels (`time_embed`)."""
    ted = cfg.time_embed_dim
    return nn.Sequential(nn.Linear(cfg.model_channels, ted), nn.SiLU(), nn.Linear(ted, ted))


def label_embedding(cfg: UNetConfig) -> nn.Module | None:
    """Class / pooled-text conditioning embedded to the time embedding's width (`label_emb`), or None."""
    ted = cfg.time_embed_dim
    if cfg.num_classes == "continuous":
        return nn.Linear(1, ted)
    if cfg.num_classes == "sequential":
        assert cfg.adm_in_channels is not None  # checked by the config
        return nn.Sequential(nn.Sequential(nn.Linear(cfg.adm_in_channels, ted), nn.SiLU(), nn.Linear(ted, ted)))
    if cfg.num_classes is not None:
        return nn.Embedding(cfg.num_classes, ted)
    return None


class BlockBuilder:
    """The modules of one config's plan: `block(plan)` is the top-level module the original puts at that place."""

    def __init__(self, cfg: UNetConfig) -> None:
        self.cfg = cfg

    def attention(self, a: AttentionPlan) -> nn.Module:
        cfg = self.cfg
        if a.kind == "spatial_transformer":
            return SpatialTransformer(
                a.channels,
                heads=a.heads,
                dim_head=a.head_channels,
                depth=a.depth,
                context_dims=list(a.context_dims),
                dropout=cfg.dropout,
                disable_self_attn=a.disable_self_attn,
                use_linear=cfg.use_linear_in_transformer,
                norm_groups=cfg.norm_groups,
            )
        return AttentionBlock(
            a.channels, num_heads=a.heads, new_attention_order=cfg.use_new_attention_order, norm_groups=cfg.norm_groups
        )

    def res_block(self, cin: int, cout: int, *, up: bool = False, down: bool = False) -> ResBlock:
        cfg = self.cfg
        return ResBlock(
            cin,
            cfg.time_embed_dim,
            cfg.dropout,
            out_channels=cout,
            dims=cfg.dims,
            use_scale_shift_norm=cfg.use_scale_shift_norm,
            up=up,
            down=down,
            norm_groups=cfg.norm_groups,
        )

    def block(self, b: BlockPlan) -> nn.Module:
        """The top-level module of one planned block (input conv, down, downsample, middle, up, output heads)."""
        cfg = self.cfg
        if b.category == "input_conv":
            return TimestepEmbedSequential(conv_nd(cfg.dims, b.in_channels, b.out_channels, 3, padding=1))
        if b.category == "downsample_block":
            layer = (
                self.res_block(b.in_channels, b.out_channels, down=True)
                if cfg.resblock_updown
                else Downsample(b.in_channels, cfg.conv_resample, dims=cfg.dims, out_channels=b.out_channels)
            )
            return TimestepEmbedSequential(layer)
        if b.stage == "down":
            return TimestepEmbedSequential(
                self.res_block(b.in_channels, b.out_channels), *map(self.attention, b.attention)
            )
        if b.stage == "mid":
            layers = [self.res_block(b.in_channels, b.out_channels)]
            if b.attention:  # ResBlock, attention, ResBlock; a lone ResBlock without attention (SSD-1B, Vega)
                layers += [self.attention(b.attention[0]), self.res_block(b.out_channels, b.out_channels)]
            return TimestepEmbedSequential(*layers)
        if b.stage == "up":
            layers = [self.res_block(b.in_channels, b.out_channels), *map(self.attention, b.attention)]
            if b.resample == "up":
                layers.append(
                    self.res_block(b.out_channels, b.out_channels, up=True)
                    if cfg.resblock_updown
                    else Upsample(b.out_channels, cfg.conv_resample, dims=cfg.dims, out_channels=b.out_channels)
                )
            return TimestepEmbedSequential(*layers)
        if b.path == "out":
            return nn.Sequential(
                normalization(b.in_channels, cfg.norm_groups),
                nn.SiLU(),
                conv_nd(cfg.dims, cfg.model_channels, b.out_channels, 3, padding=1),
            )
        if b.path == "id_predictor":
            return nn.Sequential(
                normalization(b.in_channels, cfg.norm_groups), conv_nd(cfg.dims, cfg.model_channels, b.out_channels, 1)
            )
        raise ValueError(f"no module for the planned block {b.path} ({b.category})")
