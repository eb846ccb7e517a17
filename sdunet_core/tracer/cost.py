"""What a model costs before it is built: module count, parameters and activation bytes, from a `UNetConfig`
and the input sizes alone.

A server must bound the work a request asks for before doing it: building a UNet with a million blocks takes
minutes and gigabytes even on the meta device. `estimate_cost()` walks the plan of the U (`plan_blocks`, the walk
`UNetModel` builds from) and adds up, per block, what its modules hold and what their forward produces, with
the layer sizes of `blocks.py` and `attention.py`. It is exact for the models we build (the tests compare it with
real traces of several presets), and it costs microseconds per block: no tensor, no module is made.

- `modules`: every entry of `UNetModel(config).named_modules()`, the root included (one node per module in a
  trace).
- `params`: the parameter count.
- `activation_bytes`: the bytes of every leaf module's output in one forward (a trace's
  `totals["activation_bytes"]`), at `element_bytes` per value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..model.config import AttentionPlan, BlockPlan, UNetConfig, plan_blocks


@dataclass(frozen=True)
class Cost:
    """Sizes of one model and one forward pass. Values are element counts until `Cost.activation_bytes`."""

    modules: int
    params: int
    activation_bytes: int


@dataclass
class _Tally:
    modules: int = 0
    params: int = 0
    values: int = 0  # leaf output elements

    def add(self, modules: int = 0, params: int = 0, values: int = 0) -> None:
        self.modules += modules
        self.params += params
        self.values += values


def _conv(cin: int, cout: int, kernel: int, dims: int) -> int:
    return cin * cout * kernel**dims + cout


def _linear(cin: int, cout: int, bias: bool = True) -> int:
    return cin * cout + (cout if bias else 0)


def _resample(spatial: tuple[int, ...], dims: int, up: bool) -> tuple[int, ...]:
    """Sizes after a x2 resample; 3D models keep their first axis (as `Upsample` / `Downsample` do)."""
    keep = spatial[:1] if dims == 3 else ()
    rest = spatial[1:] if dims == 3 else spatial
    return keep + tuple(s * 2 if up else -(-s // 2) for s in rest)


class _Walk:
    """Adds up the modules of `UNetModel(cfg)` block by block, following `blocks.py` and `attention.py`."""

    def __init__(self, cfg: UNetConfig, batch: int, tokens: int) -> None:
        self.cfg = cfg
        self.b = batch
        self.tokens = tokens
        self.ted = cfg.time_embed_dim
        self.k = 3**cfg.dims  # a 3x3 (x3) kernel
        self.t = _Tally()

    # ---- layers --------------------------------------------------------------------------------------
    def res_block(self, cin: int, cout: int, pixels: int, out_pixels: int, updown: bool) -> None:
        cfg, b, t = self.cfg, self.b, self.t
        emb = 2 * cout if cfg.use_scale_shift_norm else cout
        # self + in_layers (Sequential, norm, SiLU, conv) + emb_layers (Sequential, SiLU, Linear)
        # + out_layers (Sequential, norm, SiLU, Dropout, conv) + skip_connection.
        t.add(modules=1 + 4 + 3 + 5 + 1)
        t.add(params=2 * cin + _conv(cin, cout, 3, cfg.dims) + _linear(self.ted, emb))
        t.add(params=2 * cout + _conv(cout, cout, 3, cfg.dims) + (0 if cin == cout else _conv(cin, cout, 1, cfg.dims)))
        t.add(values=b * (self.ted + emb))  # emb_layers: SiLU, Linear
        t.add(values=2 * b * cin * pixels + b * cout * out_pixels)  # norm, SiLU, then the conv after resampling
        t.add(values=4 * b * cout * out_pixels)  # out_layers
        t.add(values=b * cout * out_pixels)  # skip: identity (its input, resampled) or a 1x1 conv
        if updown:
            # h_upd and x_upd: an Upsample without conv (a leaf) or a Downsample holding an AvgPool.
            up = out_pixels > pixels
            t.add(modules=2 if up else 4, values=2 * b * cin * out_pixels)
        else:
            t.add(modules=1)  # one Identity shared by h_upd and x_upd, never called

    def downsample(self, cin: int, cout: int, out_pixels: int) -> None:
        cfg = self.cfg
        params = _conv(cin, cout, 3, cfg.dims) if cfg.conv_resample else 0
        self.t.add(modules=2, params=params, values=self.b * cout * out_pixels)  # self + op (conv or AvgPool)

    def upsample(self, channels: int, out_pixels: int) -> None:
        if self.cfg.conv_resample:
            self.t.add(modules=2, params=_conv(channels, channels, 3, self.cfg.dims))
        else:
            self.t.add(modules=1)  # a leaf: its own output counts
        self.t.add(values=self.b * channels * out_pixels)

    def attention(self, a: AttentionPlan, pixels: int) -> None:
        b, c, t = self.b, a.channels, self.t
        if a.kind == "attention_block":
            # self + norm + qkv + proj_out
            t.add(modules=4, params=2 * c + _linear(c, 3 * c) + _linear(c, c), values=5 * b * c * pixels)
            return
        inner = a.heads * a.head_channels
        # self + norm + proj_in + transformer_blocks (ModuleList) + proj_out; 1x1 conv and Linear hold the same.
        t.add(modules=5, params=2 * c + _linear(c, inner) + _linear(inner, c))
        t.add(values=b * pixels * (2 * c + inner))
        for context in a.context_dims:
            self._transformer_block(inner, context, a.disable_self_attn, pixels)

    def _transformer_block(self, d: int, context: int | None, self_disabled: bool, pixels: int) -> None:
        b, t, n = self.b, self.t, self.tokens
        ctx = context or d
        first = ctx if self_disabled else d  # attn1's keys and values read the context when self-attention is off
        # self + attn1 and attn2 (self, to_q, to_k, to_v, to_out Sequential of Linear and Dropout: 7 each)
        # + ff (self, net, GEGLU, its proj, Dropout, Linear: 6) + norm1..3.
        t.add(modules=1 + 7 + 7 + 6 + 3)
        attn1 = _linear(d, d, False) + 2 * _linear(first, d, False) + _linear(d, d)
        attn2 = _linear(d, d, False) + 2 * _linear(ctx, d, False) + _linear(d, d)
        ff = _linear(d, 8 * d) + _linear(4 * d, d)
        t.add(params=attn1 + attn2 + ff + 3 * 2 * d)
        kv1 = 2 * n if self_disabled else 2 * pixels
        # norms 3, q 2, attention outputs (Linear, Dropout) 4, GEGLU proj 8, Dropout 4, Linear 1; keys and values.
        t.add(values=b * d * (pixels * (3 + 2 + 4 + 8 + 4 + 1) + kv1 + 2 * n))

    # ---- blocks ----------------------------------------------------------------------------------------
    def block(self, block: BlockPlan, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Add one top-level block; return the spatial size of its output."""
        cfg, b, t = self.cfg, self.b, self.t
        pixels = math.prod(spatial)
        if block.category == "input_conv":
            t.add(modules=2, params=_conv(block.in_channels, block.out_channels, 3, cfg.dims))
            t.add(values=b * block.out_channels * pixels)
            return spatial
        if block.path == "out":
            # Sequential of norm, SiLU, conv.
            t.add(modules=4, params=2 * block.in_channels + _conv(block.in_channels, block.out_channels, 3, cfg.dims))
            if cfg.n_embed is None:  # with a codebook head the forward returns its logits and never runs `out`
                t.add(values=b * pixels * (2 * block.in_channels + block.out_channels))
            return spatial
        if block.path == "id_predictor":
            t.add(modules=3, params=2 * block.in_channels + _conv(block.in_channels, block.out_channels, 1, cfg.dims))
            t.add(values=b * pixels * (block.in_channels + block.out_channels))
            return spatial
        t.add(modules=1)  # the TimestepEmbedSequential
        if block.category == "downsample_block":
            out = _resample(spatial, cfg.dims, up=False)
            if cfg.resblock_updown:
                self.res_block(block.in_channels, block.out_channels, pixels, math.prod(out), updown=True)
            else:
                self.downsample(block.in_channels, block.out_channels, math.prod(out))
            return out
        self.res_block(block.in_channels, block.out_channels, pixels, pixels, updown=False)
        for a in block.attention:
            self.attention(a, pixels)
        if block.stage == "mid" and block.attention:  # ResBlock, attention, ResBlock (or a lone ResBlock)
            self.res_block(block.out_channels, block.out_channels, pixels, pixels, updown=False)
        if block.resample == "up":
            out = _resample(spatial, cfg.dims, up=True)
            if cfg.resblock_updown:
                self.res_block(block.out_channels, block.out_channels, pixels, math.prod(out), updown=True)
            else:
                self.upsample(block.out_channels, math.prod(out))
            return out
        return spatial

    def embeddings(self) -> None:
        cfg, b, t, ted = self.cfg, self.b, self.t, self.ted
        # Sequential of Linear, SiLU, Linear.
        t.add(modules=4, params=_linear(cfg.model_channels, ted) + _linear(ted, ted), values=3 * b * ted)
        if cfg.num_classes == "continuous":
            t.add(modules=1, params=_linear(1, ted), values=b * ted)
        elif cfg.num_classes == "sequential":
            assert cfg.adm_in_channels is not None  # checked by the config
            t.add(modules=5, params=_linear(cfg.adm_in_channels, ted) + _linear(ted, ted), values=3 * b * ted)
        elif cfg.num_classes is not None:
            t.add(modules=1, params=cfg.num_classes * ted, values=b * ted)  # an Embedding


def estimate_cost(
    config: UNetConfig,
    sample_size: tuple[int, ...],
    *,
    batch: int = 1,
    context_tokens: int | None = None,
    element_bytes: int = 4,
) -> Cost:
    """The modules, parameters and activation bytes of `UNetModel(config)` and one forward at these sizes.

    `context_tokens` is the number of context tokens (77 when not given, as the tracer uses); ignored by models
    without spatial transformers.
    """
    walk = _Walk(config, batch, context_tokens or 77)
    walk.t.add(modules=3)  # the root, input_blocks, output_blocks (the middle block, if any, is counted as a block)
    walk.embeddings()
    spatial = tuple(sample_size)
    for block in plan_blocks(config):
        spatial = walk.block(block, spatial)
    t = walk.t
    return Cost(modules=t.modules, params=t.params, activation_bytes=t.values * element_bytes)
