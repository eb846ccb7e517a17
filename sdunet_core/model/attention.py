"""The transformer side of the UNet: CrossAttention, FeedForward (GEGLU), BasicTransformerBlock and
SpatialTransformer, with the original attribute names (`to_q`, `to_k`, `to_v`, `to_out`, `ff.net`, `attn1`,
`attn2`, `norm1..3`, `proj_in`, `transformer_blocks`, `proj_out`).

Attention runs through `torch.nn.functional.scaled_dot_product_attention`, which computes the same
softmax(QK^T / sqrt(d_head)) V as the original einsums and picks a fused kernel where one exists.

As in blocks.py, each class states what it is for the tracer (`category`, `takes_context`, `facts()`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ContextBlock
from .flow import chain, run, step


class CrossAttention(nn.Module):
    """Multi-head attention from x to a context (self-attention when no context is given).

    to_q from x; to_k, to_v from the context (or x); no bias; heads split; to_out = Linear + Dropout.
    """

    def __init__(
        self, query_dim: int, *, context_dim: int | None = None, heads: int, dim_head: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        # Keys and values come from the context when it has a width of its own; else from x (self-attention).
        self.context_dim = context_dim
        context_dim = context_dim or query_dim
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b, n, _ = x.shape
        m = context.shape[1]
        # [B, N, heads * d] -> [B, heads, N, d]
        q = self.to_q(x).view(b, n, self.heads, self.dim_head).transpose(1, 2)
        k = self.to_k(context).view(b, m, self.heads, self.dim_head).transpose(1, 2)
        v = self.to_v(context).view(b, m, self.heads, self.dim_head).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, N, d]
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)

    @property
    def takes_context(self) -> bool:
        return self.context_dim is not None

    @property
    def context_inputs(self) -> tuple[str, ...]:
        """Children whose input is the context: the key and value projections of a cross-attention."""
        return ("to_k", "to_v") if self.takes_context else ()

    @property
    def category(self) -> str:
        return "cross_attention" if self.takes_context else "self_attention"

    def facts(self) -> dict[str, Any]:
        return {
            "attention": {
                "kind": self.category,
                "channels": self.heads * self.dim_head,
                "heads": self.heads,
                "head_channels": self.dim_head,
                "context_dim": self.context_dim,
            }
        }

    def flow(self) -> list[dict[str, Any]]:
        kv = "context" if self.takes_context else "x"
        return [
            run("to_q", "x", text="queries from x"),
            run("to_k", kv, text=f"keys from {kv}"),
            run("to_v", kv, text=f"values from {kv}"),
            step("attention", "attended", ["to_q", "to_k", "to_v"], "softmax(QKᵀ/√d)·V"),
            run("to_out", "attended"),
        ]


class GEGLU(nn.Module):
    """Linear d -> 2 * inner, split into value and gate, value * GELU(gate)."""

    category: ClassVar[str] = "geglu"

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)

    def flow(self) -> list[dict[str, Any]]:
        return [run("proj", "x"), step("gate", "out", ["proj"], "halves: value · GELU(gate)")]


class FeedForward(nn.Module):
    """GEGLU (d -> 4d) -> Dropout -> Linear (4d -> d), as `ff.net.0..2`."""

    category: ClassVar[str] = "feed_forward"

    def __init__(self, dim: int, *, mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def flow(self) -> list[dict[str, Any]]:
        return chain(["net.0", "net.1", "net.2"], "x")


class BasicTransformerBlock(nn.Module):
    """Self-attention, cross-attention to the context, feed-forward; each pre-normed with a residual add."""

    category: ClassVar[str] = "transformer_block"
    takes_context: ClassVar[bool] = True

    def __init__(
        self,
        dim: int,
        *,
        heads: int,
        dim_head: int,
        context_dim: int | None,
        dropout: float = 0.0,
        disable_self_attn: bool = False,
    ) -> None:
        super().__init__()
        self.disable_self_attn = disable_self_attn
        # With self-attention disabled (SD x4 upscaler), attn1 attends to the context as well.
        self.attn1 = CrossAttention(
            dim, heads=heads, dim_head=dim_head, dropout=dropout, context_dim=context_dim if disable_self_attn else None
        )
        self.ff = FeedForward(dim, dropout=dropout)
        self.attn2 = CrossAttention(dim, context_dim=context_dim, heads=heads, dim_head=dim_head, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), context if self.disable_self_attn else None)  # [B, HW, C]
        x = x + self.attn2(self.norm2(x), context)  # queries from pixels, keys/values from the text tokens
        return x + self.ff(self.norm3(x))

    def facts(self) -> dict[str, Any]:
        attn = self.attn2
        return {
            "attention": {
                "kind": "transformer_block",
                "channels": attn.heads * attn.dim_head,
                "heads": attn.heads,
                "head_channels": attn.dim_head,
                "context_dim": attn.context_dim,
                "self_attention_disabled": self.disable_self_attn,
            }
        }

    def flow(self) -> list[dict[str, Any]]:
        # Each sub-layer is pre-normed and wrapped in its own residual add.
        attn1 = ["norm1", "context"] if self.disable_self_attn else ["norm1"]
        return [
            run("norm1", "x"),
            run("attn1", *attn1),
            step("residual_add", "h1", ["x", "attn1"], "residual add"),
            run("norm2", "h1"),
            run("attn2", "norm2", "context"),
            step("residual_add", "h2", ["h1", "attn2"], "residual add"),
            run("norm3", "h2"),
            run("ff", "norm3"),
            step("residual_add", "out", ["h2", "ff"], "residual add"),
        ]


class SpatialTransformer(ContextBlock):
    """GroupNorm -> proj_in -> [B, C, H, W] as [B, H*W, C] -> transformer blocks -> back -> proj_out -> + input.

    proj_in / proj_out are 1x1 convs (SD 1.x) or Linear layers applied on the tokens (SD 2.x, SDXL).
    """

    category: ClassVar[str] = "spatial_transformer"

    def __init__(
        self,
        channels: int,
        *,
        heads: int,
        dim_head: int,
        depth: int = 1,
        context_dims: list[int | None],
        dropout: float = 0.0,
        disable_self_attn: bool = False,
        use_linear: bool = False,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        self.channels = channels
        self.heads = heads
        self.dim_head = dim_head
        self.disable_self_attn = disable_self_attn
        self.use_linear = use_linear
        # The original's Normalize: a plain GroupNorm with eps 1e-6 (the ResBlocks' GroupNorm32 uses 1e-5).
        self.norm = nn.GroupNorm(num_groups=norm_groups, num_channels=channels, eps=1e-6, affine=True)
        self.proj_in = nn.Linear(channels, inner) if use_linear else nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(
                inner,
                heads=heads,
                dim_head=dim_head,
                context_dim=context_dims[d],
                dropout=dropout,
                disable_self_attn=disable_self_attn,
            )
            for d in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels) if use_linear else nn.Conv2d(inner, channels, 1)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, _, h, w = x.shape
        x_in = x
        x = self.norm(x)
        if not self.use_linear:
            x = self.proj_in(x)  # [B, C, H, W] -> [B, inner, H, W]
        x = x.flatten(2).transpose(1, 2)  # -> [B, H*W, inner]
        if self.use_linear:
            x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context)
        if self.use_linear:
            x = self.proj_out(x)
        x = x.transpose(1, 2).reshape(b, -1, h, w)  # -> [B, inner, H, W]
        if not self.use_linear:
            x = self.proj_out(x)
        return x + x_in

    def facts(self) -> dict[str, Any]:
        blocks = list(self.transformer_blocks)
        return {
            "attention": {
                "kind": "spatial_transformer",
                "channels": self.heads * self.dim_head,
                "heads": self.heads,
                "head_channels": self.dim_head,
                "depth": len(blocks),
                "context_dim": blocks[0].attn2.context_dim if blocks else None,
                "self_attention_disabled": self.disable_self_attn,
                "projection": "linear" if self.use_linear else "conv",
            }
        }

    def flow(self) -> list[dict[str, Any]]:
        to_tokens = "to tokens: B×C×H×W → B×(H·W)×C"
        to_map = "back to a map: B×(H·W)×C → B×C×H×W"
        steps = [run("norm", "x")]
        if self.use_linear:  # Linear projections run on the tokens: reshape first, project after
            steps += [step("to_tokens", "tokens", ["norm"], to_tokens), run("proj_in", "tokens")]
        else:  # 1x1 conv projections run on the map: project first, reshape after
            steps += [run("proj_in", "norm"), step("to_tokens", "tokens", ["proj_in"], to_tokens)]
        h = steps[-1]["out"]
        for i in range(len(self.transformer_blocks)):
            steps.append(run(f"transformer_blocks.{i}", h, "context"))
            h = f"transformer_blocks.{i}"
        if self.use_linear:
            steps += [run("proj_out", h), step("to_map", "map", ["proj_out"], to_map)]
        else:
            steps += [step("to_map", "map", [h], to_map), run("proj_out", "map")]
        steps.append(step("residual_add", "out", ["x", steps[-1]["out"]], "residual add"))
        return steps
