"""UNetModel against the original's numbers.

1. The shared goldens (`tests/data/*.safetensors`, made by the original CompVis code; format in `tests/data/README.md`):
   build from `unet_params`, load with strict=True, match `output` to 1e-4 of its scale. A perturbed weight and a
   flipped attention order must break the match, so the check is known to be able to fail.
2. Paths those goldens do not reach (linear projections, deeper transformers, class / sequential / continuous labels,
   disabled self-attention, num_attention_blocks, the new attention order, pooling, 1D and 3D, the codebook head):
   `ReferenceUNet` below is an independent forward written from the original code (CompVis latent-diffusion and
   stable-diffusion, Stability-AI stablediffusion and generative-models `openaimodel.py` / `attention.py`), with
   plain einsum attention and explicit rearranges over the state dict by key. It shares no code with sdunet_core
   and reads the original yaml parameters itself. UNetModel must match it on seeded random weights, and the
   reference must read every key of the state dict (so the module tree has nothing more and nothing less).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from sdunet_core import UNetConfig, UNetModel
from tests.conftest import DATA

TOLERANCE = 1e-4  # max |diff| / max |reference|, as the goldens' README asks
GOLDENS = ["tiny_sd1", "tiny_ldm_uncond"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from intra-op threads, and lose a lot to them on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    assert out.shape == ref.shape, (out.shape, ref.shape)
    return ((out - ref).abs().max() / ref.abs().max()).item()


def run(model: UNetModel, inputs: dict[str, torch.Tensor | None]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(inputs["x"], inputs["timesteps"], context=inputs.get("context"), y=inputs.get("y"))


# ---- 1. the shared goldens ------------------------------------------------------------------------------------
def load_golden(name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """(meta json, state dict, inputs by name, the original's output)."""
    meta = json.loads((DATA / f"{name}.json").read_text())
    tensors = load_file(DATA / f"{name}.safetensors")
    state = {k.removeprefix("state_dict."): v for k, v in tensors.items() if k.startswith("state_dict.")}
    inputs = {k.removeprefix("input."): v for k, v in tensors.items() if k.startswith("input.")}
    return meta, state, inputs, tensors["output"]


def golden_model(params: dict[str, Any], state: dict[str, torch.Tensor]) -> UNetModel:
    model = UNetModel(UNetConfig.from_ldm(params))
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_matches_original(name: str) -> None:
    meta, state, inputs, expected = load_golden(name)
    model = golden_model(meta["unet_params"], state)
    assert sum(p.numel() for p in model.parameters()) == meta["num_parameters"]
    assert len(model.state_dict()) == meta["state_dict_keys"]
    assert {f"input.{k}": list(v.shape) for k, v in inputs.items()} == meta["inputs"]
    assert list(expected.shape) == meta["output_shape"]
    assert relative_error(run(model, inputs), expected) < TOLERANCE


@pytest.mark.parametrize("name", GOLDENS)
def test_golden_fails_on_one_perturbed_weight(name: str) -> None:
    """The comparison is sharp enough to see one weight of one attention layer moved by 0.05."""
    meta, state, inputs, expected = load_golden(name)
    key = next(k for k in state if k.endswith(("attn2.to_k.weight", "qkv.weight")))
    state = dict(state)
    state[key] = state[key].clone()
    state[key].view(-1)[0] += 0.05
    assert relative_error(run(golden_model(meta["unet_params"], state), inputs), expected) > 10 * TOLERANCE


def test_golden_fails_on_the_wrong_attention_order() -> None:
    meta, state, inputs, expected = load_golden("tiny_ldm_uncond")
    assert not meta["unet_params"].get("use_new_attention_order", False)
    cfg = UNetConfig.from_ldm(meta["unet_params"])
    model = UNetModel(dataclasses.replace(cfg, use_new_attention_order=True))
    model.load_state_dict(state, strict=True)
    assert relative_error(run(model, inputs), expected) > 10 * TOLERANCE


def test_golden_fails_without_scale_shift_norm() -> None:
    """Dropping scale-shift changes emb_layers' shape: strict loading refuses the checkpoint."""
    meta, state, _, _ = load_golden("tiny_ldm_uncond")
    cfg = UNetConfig.from_ldm(meta["unet_params"])
    assert cfg.use_scale_shift_norm
    with pytest.raises(RuntimeError, match="emb_layers"):
        UNetModel(dataclasses.replace(cfg, use_scale_shift_norm=False)).load_state_dict(state, strict=True)


# ---- 2. an independent reference forward ----------------------------------------------------------------------
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


# Each case: the original yaml parameters, and the input's spatial size.
BASE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 2,
    "model_channels": 16,
    "norm_groups": 8,
    "num_res_blocks": 1,
    "channel_mult": [1, 2],
    "attention_resolutions": [1, 2],
}
# fmt: off
CASES: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    # SD 2.x: linear projections, head width, two transformer blocks per level.
    "linear_depth2": (
        {"use_spatial_transformer": True, "use_linear_in_transformer": True, "num_head_channels": 8,
         "transformer_depth": 2, "context_dim": 12, "legacy": False},
        (8, 8),
    ),
    # SDXL (sgm code, no use_spatial_transformer flag): per-level depth, deeper middle, pooled-vector labels.
    "sgm_sequential": (
        {"num_classes": "sequential", "adm_in_channels": 10, "use_linear_in_transformer": True,
         "num_head_channels": 8, "transformer_depth": [1, 2, 2], "transformer_depth_middle": 3, "context_dim": 12,
         "channel_mult": [1, 2, 2], "num_res_blocks": [1, 2, 1], "attention_resolutions": [2, 4]},
        (8, 8),
    ),
    # SD x4 upscaler: class labels, conv projections, self-attention disabled per level, fewer attention blocks.
    "classes_disabled_self_attention": (
        {"use_spatial_transformer": True, "num_heads": 2, "context_dim": 12, "num_classes": 7,
         "disable_self_attentions": [True, False], "disable_middle_self_attn": True, "num_res_blocks": 2,
         "num_attention_blocks": [1, 2], "legacy": False},
        (8, 8),
    ),
    # Plain attention in the new order, continuous labels, pooling instead of conv resampling, more heads going up.
    "continuous_new_order_pool": (
        {"num_classes": "continuous", "use_new_attention_order": True, "conv_resample": False, "num_heads": 2,
         "num_heads_upsample": 4, "channel_mult": [1, 2, 2], "attention_resolutions": [2, 4]},
        (8, 8),
    ),
    # legacy=False: plain attention gets width // num_heads per head, so num_heads_upsample has no effect.
    "legacy_false_heads_upsample": (
        {"num_heads": 2, "num_heads_upsample": 4, "legacy": False, "use_scale_shift_norm": True},
        (8, 8),
    ),
    "dims1_updown": (
        {"dims": 1, "num_head_channels": 8, "resblock_updown": True, "use_scale_shift_norm": True},
        (16,),
    ),
    "dims3_conv": ({"dims": 3, "num_heads": 2, "num_classes": 5}, (3, 8, 8)),
    "dims3_updown_new_order": (
        {"dims": 3, "num_head_channels": 8, "resblock_updown": True, "use_new_attention_order": True},
        (2, 8, 8),
    ),
    # An odd model_channels: the time embedding's sinusoid is padded with a zero column.
    "odd_width": ({"model_channels": 5, "norm_groups": 5, "num_heads": 1, "use_scale_shift_norm": True}, (4, 4)),
    # VQ models: the codebook head instead of the output conv.
    "codebook_head": (
        {"use_spatial_transformer": True, "num_heads": 2, "context_dim": 12, "n_embed": 11, "legacy": False},
        (8, 8),
    ),
}
# fmt: on


def random_state(model: UNetModel, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights scaled by fan-in, so activations and attention logits stay O(1) and nothing is zero."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        w = torch.randn(t.shape, generator=g)
        if t.dim() > 1:
            w = w / math.sqrt(t[0].numel())
        elif name.endswith("weight"):  # norm scales around 1
            w = 1 + 0.3 * w
        else:
            w = 0.3 * w
        out[name] = w
    return out


def case_inputs(params: dict[str, Any], size: tuple[int, ...], seed: int) -> dict[str, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    batch = 2
    nc = params.get("num_classes")
    y: torch.Tensor | None = None
    if nc == "sequential":
        y = torch.randn(batch, params["adm_in_channels"], generator=g)
    elif nc == "continuous":
        y = torch.rand(batch, 1, generator=g)
    elif nc is not None:
        y = torch.randint(0, nc, (batch,), generator=g)
    ctx = params.get("context_dim")
    return {
        "x": torch.randn(batch, params["in_channels"], *size, generator=g),
        "timesteps": torch.tensor([3.0, 917.5]),
        "context": torch.randn(batch, 5, ctx, generator=g) if ctx else None,
        "y": y,
    }


def reference_case(name: str) -> tuple[dict[str, Any], UNetModel, dict[str, torch.Tensor], dict[str, Any]]:
    params = {**BASE, **CASES[name][0]}
    model = UNetModel(UNetConfig.from_ldm(params))
    state = random_state(model, seed=0)
    model.load_state_dict(state, strict=True)
    return params, model, state, case_inputs(params, CASES[name][1], seed=1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_the_independent_reference(name: str) -> None:
    params, model, state, inputs = reference_case(name)
    ref = ReferenceUNet(params, state)
    with torch.no_grad():
        expected = ref(**inputs)
    assert ref.read == set(state), f"keys the reference never read: {sorted(set(state) - ref.read)[:5]}"
    out = run(model, inputs)
    out_channels = params.get("n_embed") or params["out_channels"]
    assert out.shape == (2, out_channels, *CASES[name][1])
    assert relative_error(out, expected) < TOLERANCE


@pytest.mark.parametrize("name", GOLDENS)
def test_reference_reproduces_the_shared_goldens(name: str) -> None:
    """The reference itself against the original code's output: its reading of openaimodel.py is checked too."""
    meta, state, inputs, expected = load_golden(name)
    ref = ReferenceUNet(meta["unet_params"], state)
    with torch.no_grad():
        out = ref(**inputs)
    assert ref.read == set(state)
    assert relative_error(out, expected) < TOLERANCE


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("continuous_new_order_pool", {"use_new_attention_order": False}),
        ("dims3_updown_new_order", {"use_new_attention_order": False}),
        ("continuous_new_order_pool", {"num_heads_upsample": -1}),
        ("legacy_false_heads_upsample", {"legacy": True}),
        ("linear_depth2", {"num_head_channels": 4}),
        ("classes_disabled_self_attention", {"num_heads": 4}),
    ],
)
def test_reference_comparison_can_fail(name: str, change: dict[str, Any]) -> None:
    """The reference given one changed option (same weights) no longer matches: every option above is seen."""
    params, model, state, inputs = reference_case(name)
    with torch.no_grad():
        expected = ReferenceUNet({**params, **change}, state)(**inputs)
    assert relative_error(run(model, inputs), expected) > 10 * TOLERANCE
