"""An independent forward of the original UNetModel, written from the original code (CompVis latent-diffusion and
stable-diffusion, Stability-AI stablediffusion and generative-models `openaimodel.py` / `attention.py`), with plain
einsum attention and explicit rearranges over a state dict by key. It shares no code with sdunet_core and reads the
original yaml parameters itself; tests/test_model_golden.py checks UNetModel against it on the paths the shared
goldens do not reach."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

# The original constructors' defaults (openaimodel.py), plus our norm_groups (the original hard-codes 32).
ORIGINAL_DEFAULTS: dict[str, Any] = {
    "channel_mult": [1, 2, 4, 8],
    "conv_resample": True,
    "dims": 2,
    "num_classes": None,
    "num_heads": -1,
    "num_head_channels": -1,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": False,
    "resblock_updown": False,
    "use_new_attention_order": False,
    "transformer_depth": 1,
    "transformer_depth_middle": None,
    "context_dim": None,
    "n_embed": None,
    "legacy": True,
    "disable_self_attentions": None,
    "num_attention_blocks": None,
    "disable_middle_self_attn": False,
    "use_linear_in_transformer": False,
    "norm_groups": 32,
}


class ReferenceUNet:
    """The original UNetModel's forward, written out over a state dict; records every key it reads."""

    def __init__(self, params: dict[str, Any], state: dict[str, torch.Tensor]) -> None:
        p = {**ORIGINAL_DEFAULTS, **params}
        levels = len(p["channel_mult"])
        per_level = lambda v: list(v) if isinstance(v, list) else [v] * levels  # noqa: E731
        self.p = p
        self.state = state
        self.read: set[str] = set()
        self.num_res_blocks = per_level(p["num_res_blocks"])
        self.depth = per_level(p["transformer_depth"])
        self.depth_middle = p["transformer_depth_middle"] or self.depth[-1]
        # sgm's UNetModel (no use_spatial_transformer flag) always builds SpatialTransformers.
        self.spatial = p.get("use_spatial_transformer", p["context_dim"] is not None)

    # -- state dict access
    def w(self, key: str) -> torch.Tensor:
        self.read.add(key)
        return self.state[key]

    def linear(self, prefix: str, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
        return F.linear(x, self.w(f"{prefix}.weight"), self.w(f"{prefix}.bias") if bias else None)

    def conv(self, prefix: str, x: torch.Tensor, dims: int, stride: Any = 1, padding: int = 1) -> torch.Tensor:
        conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
        return conv(x, self.w(f"{prefix}.weight"), self.w(f"{prefix}.bias"), stride=stride, padding=padding)

    def group_norm(self, prefix: str, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        return F.group_norm(x, self.p["norm_groups"], self.w(f"{prefix}.weight"), self.w(f"{prefix}.bias"), eps)

    def layer_norm(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w(f"{prefix}.weight"), self.w(f"{prefix}.bias"))

    # -- resampling
    def resize(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        """Upsample / Downsample without conv: nearest x2 or 2x2 average pool (3D: height and width only)."""
        dims = self.p["dims"]
        if direction == "up":
            if dims == 3:
                return F.interpolate(x, (x.shape[2], x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
            return F.interpolate(x, scale_factor=2, mode="nearest")
        stride = (1, 2, 2) if dims == 3 else 2
        return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[dims - 1](x, kernel_size=stride, stride=stride)

    def downsample(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        dims = self.p["dims"]
        if self.p["conv_resample"]:
            return self.conv(f"{prefix}.op", x, dims, stride=(1, 2, 2) if dims == 3 else 2)
        return self.resize(x, "down")

    def upsample(self, prefix: str, x: torch.Tensor) -> torch.Tensor:
        x = self.resize(x, "up")
        return self.conv(f"{prefix}.conv", x, self.p["dims"]) if self.p["conv_resample"] else x

    # -- ResBlock
    def res_block(self, prefix: str, x: torch.Tensor, emb: torch.Tensor, out_ch: int, updown: str = "") -> torch.Tensor:
        dims = self.p["dims"]
        h = F.silu(self.group_norm(f"{prefix}.in_layers.0", x))
        if updown:
            h, x = self.resize(h, updown), self.resize(x, updown)
        h = self.conv(f"{prefix}.in_layers.2", h, dims)
        e = self.linear(f"{prefix}.emb_layers.1", F.silu(emb))
        e = e.reshape(*e.shape, *[1] * dims)
        if self.p["use_scale_shift_norm"]:
            scale, shift = e.chunk(2, dim=1)
            h = self.group_norm(f"{prefix}.out_layers.0", h) * (1 + scale) + shift
        else:
            h = self.group_norm(f"{prefix}.out_layers.0", h + e)
        h = self.conv(f"{prefix}.out_layers.3", F.silu(h), dims)
        skip = x if x.shape[1] == out_ch else self.conv(f"{prefix}.skip_connection", x, dims, padding=0)
        return skip + h

    # -- attention
    def heads(self, ch: int, up: bool) -> tuple[int, int]:
        """(heads, head width) of the attention layer at width ch, the way openaimodel.py works them out."""
        num_heads, head_ch = self.p["num_heads"], self.p["num_head_channels"]
        if head_ch == -1:
            dim_head = ch // num_heads
        else:
            num_heads, dim_head = ch // head_ch, head_ch
        if self.p["legacy"]:
            dim_head = ch // num_heads if self.spatial else head_ch
        if self.spatial:
            return num_heads, dim_head
        # AttentionBlock(ch, num_heads=num_heads (num_heads_upsample on the way up), num_head_channels=dim_head)
        if dim_head != -1:
            return ch // dim_head, dim_head
        if up and self.p["num_heads_upsample"] != -1:
            num_heads = self.p["num_heads_upsample"]
        return num_heads, ch // num_heads

    def attention_block(self, prefix: str, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)  # b c *s -> b c t
        t = x.shape[-1]
        qkv = F.conv1d(
            self.group_norm(f"{prefix}.norm", x), self.w(f"{prefix}.qkv.weight"), self.w(f"{prefix}.qkv.bias")
        )
        ch = c // heads
        scale = 1 / math.sqrt(math.sqrt(ch))
        if self.p["use_new_attention_order"]:  # QKVAttention: split q, k, v, then heads
            q, k, v = qkv.chunk(3, dim=1)
            q, k, v = (u.reshape(b * heads, ch, t) for u in (q * scale, k * scale, v))
        else:  # QKVAttentionLegacy: split heads, then q, k, v
            q, k, v = qkv.reshape(b * heads, ch * 3, t).split(ch, dim=1)
            q, k = q * scale, k * scale
        weight = torch.einsum("bct,bcs->bts", q, k).softmax(dim=-1)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(b, -1, t)
        h = F.conv1d(a, self.w(f"{prefix}.proj_out.weight"), self.w(f"{prefix}.proj_out.bias"))
        return (x + h).reshape(b, c, *spatial)

    def cross_attention(self, prefix: str, x: torch.Tensor, context: torch.Tensor | None, heads: int) -> torch.Tensor:
        context = x if context is None else context
        q = self.linear(f"{prefix}.to_q", x, bias=False)
        k = self.linear(f"{prefix}.to_k", context, bias=False)
        v = self.linear(f"{prefix}.to_v", context, bias=False)
        b, n, inner = q.shape
        d = inner // heads
        # b n (h d) -> (b h) n d
        q, k, v = (u.reshape(b, -1, heads, d).permute(0, 2, 1, 3).reshape(b * heads, -1, d) for u in (q, k, v))
        sim = torch.einsum("bid,bjd->bij", q, k) * d**-0.5
        out = torch.einsum("bij,bjd->bid", sim.softmax(dim=-1), v)
        out = out.reshape(b, heads, n, d).permute(0, 2, 1, 3).reshape(b, n, inner)  # (b h) n d -> b n (h d)
        return self.linear(f"{prefix}.to_out.0", out)

    def spatial_transformer(
        self, prefix: str, x: torch.Tensor, context: torch.Tensor, heads: int, depth: int, disable_sa: bool
    ) -> torch.Tensor:
        b, _, height, width = x.shape
        linear = self.p["use_linear_in_transformer"]
        h = F.group_norm(x, self.p["norm_groups"], self.w(f"{prefix}.norm.weight"), self.w(f"{prefix}.norm.bias"), 1e-6)
        if not linear:
            h = self.conv(f"{prefix}.proj_in", h, 2, padding=0)
        h = h.permute(0, 2, 3, 1).reshape(b, height * width, -1)  # b c h w -> b (h w) c
        if linear:
            h = self.linear(f"{prefix}.proj_in", h)
        first_context = context if disable_sa else None  # with self-attention disabled, attn1 reads the context
        for i in range(depth):
            p = f"{prefix}.transformer_blocks.{i}"
            h = self.cross_attention(f"{p}.attn1", self.layer_norm(f"{p}.norm1", h), first_context, heads) + h
            h = self.cross_attention(f"{p}.attn2", self.layer_norm(f"{p}.norm2", h), context, heads) + h
            value, gate = self.linear(f"{p}.ff.net.0.proj", self.layer_norm(f"{p}.norm3", h)).chunk(2, dim=-1)
            h = self.linear(f"{p}.ff.net.2", value * F.gelu(gate)) + h
        if linear:
            h = self.linear(f"{prefix}.proj_out", h)
        h = h.reshape(b, height, width, -1).permute(0, 3, 1, 2)  # b (h w) c -> b c h w
        if not linear:
            h = self.conv(f"{prefix}.proj_out", h, 2, padding=0)
        return h + x

    def attention(
        self, prefix: str, x: torch.Tensor, context: Any, level: int | None, up: bool = False
    ) -> torch.Tensor:
        heads, _ = self.heads(x.shape[1], up)
        if not self.spatial:
            return self.attention_block(prefix, x, heads)
        if level is None:  # the middle block
            return self.spatial_transformer(
                prefix, x, context, heads, self.depth_middle, self.p["disable_middle_self_attn"]
            )
        disabled = self.p["disable_self_attentions"]
        return self.spatial_transformer(
            prefix, x, context, heads, self.depth[level], bool(disabled and disabled[level])
        )

    def has_attention(self, ds: int, level: int, nr: int) -> bool:
        blocks = self.p["num_attention_blocks"]
        return ds in self.p["attention_resolutions"] and (blocks is None or nr < blocks[level])

    # -- the U
    def __call__(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        p, mc, dims = self.p, self.p["model_channels"], self.p["dims"]
        half = mc // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = timesteps[:, None].float() * freqs[None]
        t_emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if mc % 2:
            t_emb = torch.cat([t_emb, torch.zeros_like(t_emb[:, :1])], dim=-1)
        emb = self.linear("time_embed.2", F.silu(self.linear("time_embed.0", t_emb)))
        if p["num_classes"] == "sequential":
            emb = emb + self.linear("label_emb.0.2", F.silu(self.linear("label_emb.0.0", y)))
        elif p["num_classes"] == "continuous":
            emb = emb + self.linear("label_emb", y)
        elif p["num_classes"] is not None:
            emb = emb + F.embedding(y, self.w("label_emb.weight"))

        hs = [self.conv("input_blocks.0.0", x, dims)]
        h, ds, index = hs[0], 1, 1
        for level, mult in enumerate(p["channel_mult"]):
            for nr in range(self.num_res_blocks[level]):
                h = self.res_block(f"input_blocks.{index}.0", h, emb, mult * mc)
                if self.has_attention(ds, level, nr):
                    h = self.attention(f"input_blocks.{index}.1", h, context, level)
                hs.append(h)
                index += 1
            if level != len(p["channel_mult"]) - 1:
                prefix = f"input_blocks.{index}.0"
                if p["resblock_updown"]:
                    h = self.res_block(prefix, h, emb, h.shape[1], updown="down")
                else:
                    h = self.downsample(prefix, h)
                hs.append(h)
                index += 1
                ds *= 2

        h = self.res_block("middle_block.0", h, emb, h.shape[1])
        h = self.attention("middle_block.1", h, context, None)
        h = self.res_block("middle_block.2", h, emb, h.shape[1])

        index = 0
        for level, mult in reversed(list(enumerate(p["channel_mult"]))):
            for i in range(self.num_res_blocks[level] + 1):
                prefix = f"output_blocks.{index}"
                h = self.res_block(f"{prefix}.0", torch.cat([h, hs.pop()], dim=1), emb, mult * mc)
                n = 1
                if self.has_attention(ds, level, i):
                    h = self.attention(f"{prefix}.1", h, context, level, up=True)
                    n = 2
                if level and i == self.num_res_blocks[level]:
                    if p["resblock_updown"]:
                        h = self.res_block(f"{prefix}.{n}", h, emb, h.shape[1], updown="up")
                    else:
                        h = self.upsample(f"{prefix}.{n}", h)
                    ds //= 2
                index += 1
        assert not hs
        if p["n_embed"] is not None:
            # The original builds `out` for VQ models too, and leaves it unused.
            self.read.update(k for k in self.state if k.startswith("out."))
            return self.conv("id_predictor.1", self.group_norm("id_predictor.0", h), dims, padding=0)
        return self.conv("out.2", F.silu(self.group_norm("out.0", h)), dims)
