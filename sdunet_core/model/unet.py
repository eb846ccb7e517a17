"""UNetModel: the diffusion UNet of LDM, SD 1.x, SD 2.x and SDXL, built from a `UNetConfig`.

Its state dict has the original keys and shapes (a checkpoint's `model.diffusion_model.*` loads with
strict=True once the prefix is dropped) and its forward matches the original numerically. It records, while
it is built, which stage and level each top-level block belongs to and which input block each output block
concatenates (`block_map`), so that nobody has to parse indices later.

References: `ldm/modules/diffusionmodules/openaimodel.py` (CompVis latent-diffusion, stable-diffusion;
Stability-AI stablediffusion) and `sgm/modules/diffusionmodules/openaimodel.py` (Stability-AI
generative-models).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .blocks import TimestepEmbedSequential
from .builder import BlockBuilder, label_embedding, time_embedding
from .config import UNetConfig
from .flow import embedding_steps, run, step
from .plan import BlockPlan, embedding_plans, plan_blocks


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [B] -> [B, dim]: cosines then sines of geometrically spaced frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:  # pad odd widths with a zero column (dim=1 has no sinusoid at all: the column is the embedding)
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], 1)], dim=-1)
    return emb


class UNetModel(nn.Module):
    """The full UNet: time embedding, down stage, middle block, up stage with skips, output head."""

    category = "model"
    takes_emb = True  # it computes the embedding from the timesteps and hands it to every ResBlock

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.plan: list[BlockPlan] = plan_blocks(cfg)
        build = BlockBuilder(cfg)

        # 1. Time embedding: sinusoid of width model_channels -> Linear -> SiLU -> Linear to 4 * model_channels;
        #    the class / pooled-text conditioning, if any, embedded to the same width and added to it.
        self.time_embed = time_embedding(cfg)
        label = label_embedding(cfg)
        if label is not None:
            self.label_emb = label

        # 2. Down stage, 3. middle block, 4. up stage, 5. output: one module per planned block (builder.py).
        # Registered in the original's order (input, middle, output): state-dict keys and module order follow it.
        self.input_blocks = nn.ModuleList()
        # Replaced in place when the plan reaches the middle block; None for the pruned UNets that have none.
        self.middle_block: TimestepEmbedSequential | None = (
            TimestepEmbedSequential() if cfg.middle_block is not None else None
        )
        self.output_blocks = nn.ModuleList()
        for b in self.plan:
            module = build.block(b)
            if b.stage == "down":
                self.input_blocks.append(module)
            elif b.stage == "mid":
                self.middle_block = module
            elif b.stage == "up":
                self.output_blocks.append(module)
            else:  # the output head, and the codebook head of VQ models
                setattr(self, b.path, module)

    # ---- the model's map of itself ----------------------------------------------------------------------
    @property
    def block_map(self) -> dict[str, BlockPlan]:
        """Top-level block path -> its stage, level, category and skip source (embeddings included)."""
        return {b.path: b for b in [*embedding_plans(self.config), *self.plan]}

    @property
    def takes_context(self) -> bool:
        return self.config.use_spatial_transformer

    @property
    def skips(self) -> list[tuple[str, str]]:
        """(input block, output block) pairs: the output block concatenates the input block's output."""
        return [(b.skip_from, b.path) for b in self.plan if b.skip_from is not None]

    def flow(self) -> list[dict[str, Any]]:
        """forward()'s steps, block by block: the skips saved on the way down are concatenated on the way up."""
        steps, emb = embedding_steps(hasattr(self, "label_emb"))
        h = "x"
        for b in self.plan:
            if b.skip_from is not None:
                cat = f"{b.path}:in"
                steps.append(step("concat", cat, [h, b.skip_from], f"concatenate the skip from {b.skip_from}"))
                h = cat
            if b.stage == "out":
                if b.path == "out" and hasattr(self, "id_predictor"):
                    continue  # a VQ model's forward ends in its codebook head instead
                steps.append(run(b.path, h))
            else:
                steps.append(run(b.path, h, emb, "context") if self.takes_context else run(b.path, h, emb))
            h = b.path
        return steps

    # ---- forward ------------------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: [B, in_channels, H, W]; timesteps: [B]; context: [B, tokens, context_dim]; y: [B] or [B, adm]."""
        if (y is not None) != hasattr(self, "label_emb"):
            raise ValueError("y must be given if and only if the model is class-conditional (num_classes)")
        # 1. Time (and class) embedding: [B] -> [B, 4 * model_channels]
        t_emb = timestep_embedding(timesteps, self.config.model_channels).to(self.time_embed[0].weight.dtype)
        emb = self.time_embed(t_emb)
        if y is not None:
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"y has batch {y.shape[0]}, x has batch {x.shape[0]}")
            emb = emb + self.label_emb(y)
        # 2. Down stage: keep every block's output for the skips.
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
        # 3. Middle block at the lowest resolution (pruned UNets may have none).
        if self.middle_block is not None:
            h = self.middle_block(h, emb, context)
        # 4. Up stage: concatenate the matching down output (last in, first out) on the channel axis.
        for block in self.output_blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, emb, context)
        # 5. Output head back to latent channels (or codebook logits).
        h = h.type(x.dtype)
        return self.id_predictor(h) if hasattr(self, "id_predictor") else self.out(h)
