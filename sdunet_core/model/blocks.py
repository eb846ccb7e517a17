"""The convolutional blocks of the UNet: ResBlock, Downsample, Upsample, the plain AttentionBlock, and the
container that routes the time embedding and the context to the blocks that take them.

Attribute names are the original ones (`in_layers`, `emb_layers`, `out_layers`, `skip_connection`, `op`,
`conv`, `qkv`, `proj_out`) so that checkpoints load unchanged. Shapes are `[batch, channels, *spatial]`.

Each block states what it is for the tracer (`category`, `takes_emb`, `takes_context`, `facts()`: the fields of
the trace schema, `sdunet_core/schema.py`) and the steps its forward performs (`flow()`, in the vocabulary of
`flow.py`), so that a new kind of block carries its own description.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .flow import chain, run, step


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 and cast back, as the original does for fp16 stability.

    The original keeps these layers' parameters in float32 when it converts a model to fp16; here the whole model
    may be cast, so the affine parameters are upcast for the computation too.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).type(x.dtype)


def normalization(channels: int, groups: int) -> GroupNorm32:
    return GroupNorm32(groups, channels)


def conv_nd(dims: int, *args, **kwargs) -> nn.Module:
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](*args, **kwargs)


def avg_pool_nd(dims: int, *args, **kwargs) -> nn.Module:
    return {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims](*args, **kwargs)


class TimestepBlock(nn.Module):
    """A block whose forward takes the time embedding as a second argument."""

    takes_emb: ClassVar[bool] = True
    # Children (paths below the block) whose input is the time embedding itself.
    emb_inputs: ClassVar[tuple[str, ...]] = ()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ContextBlock(nn.Module):
    """A block whose forward takes the context tokens as a second argument."""

    takes_context: ClassVar[bool] = True


class TimestepEmbedSequential(nn.Sequential):
    """A Sequential that hands `emb` to TimestepBlocks and `context` to ContextBlocks."""

    @property
    def takes_emb(self) -> bool:
        return any(isinstance(layer, TimestepBlock) for layer in self)

    @property
    def takes_context(self) -> bool:
        return any(isinstance(layer, ContextBlock) for layer in self)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb)
            elif isinstance(layer, ContextBlock):
                x = layer(x, context)
            else:
                x = layer(x)
        return x

    def flow(self) -> list[dict[str, Any]]:
        steps, h = [], "x"
        for name, layer in self.named_children():
            if isinstance(layer, TimestepBlock):
                steps.append(run(name, h, "emb"))
            elif isinstance(layer, ContextBlock):
                steps.append(run(name, h, "context"))
            else:
                steps.append(run(name, h))
            h = name
        return steps


class Upsample(nn.Module):
    """Nearest-neighbour x2, then (with conv resampling) a 3x3 conv: C x H x W -> C' x 2H x 2W."""

    category: ClassVar[str] = "upsample"

    def __init__(self, channels: int, use_conv: bool, *, dims: int = 2, out_channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        self.dims = dims
        if use_conv:
            self.conv = conv_nd(dims, channels, self.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 3:  # video-like input: keep the first axis, double height and width
            x = F.interpolate(x, (x.shape[2], x.shape[3] * 2, x.shape[4] * 2), mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x

    def facts(self) -> dict[str, Any]:
        return {"resample": {"direction": "up", "factor": 2, "method": "nearest_conv" if self.use_conv else "nearest"}}

    def flow(self) -> list[dict[str, Any]]:
        steps = [step("interpolate", "up", ["x"], "nearest-neighbour ×2")]
        return [*steps, run("conv", "up")] if self.use_conv else steps


class Downsample(nn.Module):
    """A 3x3 conv with stride 2 (or a 2x2 average pool without conv resampling): C x H x W -> C' x H/2 x W/2."""

    category: ClassVar[str] = "downsample"

    def __init__(self, channels: int, use_conv: bool, *, dims: int = 2, out_channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        stride = 2 if dims != 3 else (1, 2, 2)
        if use_conv:
            self.op = conv_nd(dims, channels, self.out_channels, 3, stride=stride, padding=1)
        else:
            if self.out_channels != channels:
                raise ValueError("average-pool downsampling cannot change the channel count")
            self.op = avg_pool_nd(dims, kernel_size=stride, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)

    def facts(self) -> dict[str, Any]:
        method = "conv_stride2" if self.use_conv else "avg_pool"
        return {"resample": {"direction": "down", "factor": 2, "method": method}}

    def flow(self) -> list[dict[str, Any]]:
        return [run("op", "x", text="3×3 conv, stride 2" if self.use_conv else "2×2 average pool")]


class ResBlock(TimestepBlock):
    """Two 3x3 convs with the time embedding added in between, and a residual path.

    in_layers: GroupNorm -> SiLU -> conv (C -> C'); emb_layers: SiLU -> Linear (emb -> C', or 2C' for
    scale-shift); out_layers: GroupNorm -> SiLU -> Dropout -> conv (C' -> C'); skip_connection: identity or a
    1x1 conv when C != C'. With `up`/`down` both paths are resampled inside the block.
    """

    category: ClassVar[str] = "resblock"
    emb_inputs = ("emb_layers", "emb_layers.0")

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        *,
        out_channels: int | None = None,
        dims: int = 2,
        use_scale_shift_norm: bool = False,
        up: bool = False,
        down: bool = False,
        norm_groups: int = 32,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.emb_channels = emb_channels
        self.dropout = dropout
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = "up" if up else "down" if down else None
        self.in_layers = nn.Sequential(
            normalization(channels, norm_groups), nn.SiLU(), conv_nd(dims, channels, self.out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd = Upsample(channels, False, dims=dims)
            self.x_upd = Upsample(channels, False, dims=dims)
        elif down:
            self.h_upd = Downsample(channels, False, dims=dims)
            self.x_upd = Downsample(channels, False, dims=dims)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels)
        )
        self.out_layers = nn.Sequential(
            normalization(self.out_channels, norm_groups),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            conv_nd(dims, self.out_channels, self.out_channels, 3, padding=1),
        )
        if self.out_channels == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            self.skip_connection = conv_nd(dims, channels, self.out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            # Resample between the activation and the conv, on the residual path too.
            *rest, conv = self.in_layers
            h = x
            for layer in rest:
                h = layer(h)
            h = conv(self.h_upd(h))
            x = self.x_upd(x)
        else:
            h = self.in_layers(x)  # [B, C, H, W] -> [B, C', H, W]
        emb_out = self.emb_layers(emb).type(h.dtype)  # [B, emb] -> [B, C'] (or [B, 2C'])
        emb_out = emb_out.reshape(*emb_out.shape, *([1] * (h.dim() - 2)))  # broadcast over every pixel
        if self.use_scale_shift_norm:
            norm, *rest = self.out_layers
            scale, shift = emb_out.chunk(2, dim=1)
            h = norm(h) * (1 + scale) + shift
            for layer in rest:
                h = layer(h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h

    def facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resblock": {
                "in_channels": self.channels,
                "out_channels": self.out_channels,
                "emb_channels": self.emb_channels,
                "scale_shift_norm": self.use_scale_shift_norm,
                "skip": "identity" if isinstance(self.skip_connection, nn.Identity) else "conv1x1",
                "dropout": self.dropout,
            }
        }
        if self.resample is not None:
            method = "resblock_nearest" if self.resample == "up" else "resblock_avg_pool"
            out["resample"] = {"direction": self.resample, "factor": 2, "method": method}
        return out

    def flow(self) -> list[dict[str, Any]]:
        # The steps of forward(), in its order: the residual path resampled like h (x_upd), then skip_connection.
        if self.updown:
            steps = [*chain(["in_layers.0", "in_layers.1", "h_upd", "in_layers.2"], "x"), run("x_upd", "x")]
            h, x = "in_layers.2", "x_upd"
        else:
            steps, h, x = [run("in_layers", "x")], "in_layers", "x"
        steps.append(run("emb_layers", "emb", text="the time embedding projected to this block's channels"))
        if self.use_scale_shift_norm:
            steps.append(run("out_layers.0", h))
            steps.append(step("scale_shift", "h", ["out_layers.0", "emb_layers"], "norm(h) · (1 + scale) + shift"))
            steps += chain(["out_layers.1", "out_layers.2", "out_layers.3"], "h")
        else:
            steps.append(step("add_embedding", "h", [h, "emb_layers"], "add the time embedding"))
            steps.append(run("out_layers", "h"))
        steps.append(run("skip_connection", x))
        steps.append(step("residual_add", "out", ["skip_connection", steps[-2]["out"]], "residual add"))
        return steps


class AttentionBlock(nn.Module):
    """Plain multi-head self-attention over all positions (unconditional LDMs).

    GroupNorm -> qkv (1x1 conv, C -> 3C) -> attention -> proj_out (1x1 conv) -> + x.
    """

    category: ClassVar[str] = "attention_block"

    def __init__(
        self, channels: int, *, num_heads: int, new_attention_order: bool = False, norm_groups: int = 32
    ) -> None:
        super().__init__()
        self.channels = channels
        self.num_heads = num_heads
        self.new_attention_order = new_attention_order
        self.norm = normalization(channels, norm_groups)
        self.qkv = conv_nd(1, channels, channels * 3, 1)
        self.proj_out = conv_nd(1, channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)  # [B, C, H, W] -> [B, C, T]
        qkv = self.qkv(self.norm(x))  # [B, 3C, T]
        t, heads, ch = x.shape[-1], self.num_heads, c // self.num_heads
        if self.new_attention_order:
            # q, k, v split first, then heads: [B, 3, H, ch, T]
            q, k, v = qkv.reshape(b, 3, heads, ch, t).unbind(1)
        else:
            # The legacy order splits heads first: [B, H, 3 * ch, T]
            q, k, v = qkv.reshape(b, heads, 3 * ch, t).split(ch, dim=2)
        # [B, H, ch, T] -> [B, H, T, ch]; softmax(q k^T / sqrt(ch)) v
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        h = h.transpose(-1, -2).reshape(b, c, t)  # back to [B, C, T]
        h = self.proj_out(h)
        return (x + h).reshape(b, c, *spatial)

    def facts(self) -> dict[str, Any]:
        heads = self.num_heads
        return {
            "attention": {
                "kind": "attention_block",
                "channels": self.channels,
                "heads": heads,
                "head_channels": self.channels // heads,
                "qkv_order": "new" if self.new_attention_order else "legacy",
            }
        }

    def flow(self) -> list[dict[str, Any]]:
        order = "q, k, v first, then heads" if self.new_attention_order else "heads first, then q, k, v"
        return [
            step("to_tokens", "tokens", ["x"], "flatten: B×C×H×W → B×C×(H·W)"),
            *chain(["norm", "qkv"], "tokens"),
            step("attention", "attended", ["qkv"], f"split q, k, v ({order}) · softmax(QKᵀ/√d)·V"),
            run("proj_out", "attended"),
            step("residual_add", "sum", ["tokens", "proj_out"], "residual add"),
            step("to_map", "out", ["sum"], "back to a map: B×C×(H·W) → B×C×H×W"),
        ]
