"""Knobs on the running UNet: forward hooks and a wrapped forward, installed for one sampling run and removed after.

The model's code stays as it is. Each knob acts through the part of the forward it names:
- `scale`: a forward hook on the top-level block returns its output times the factor. The forward keeps that
  output both as the next block's input and, for an input block, as the skip (`skips.append(h)` after the call),
  so scaling an input block scales what its skip carries too;
- `cut_skip`: the UNet concatenates `[h, skip]` on the channel axis just before the output block runs, so a
  forward *pre*-hook on that output block replaces the last `skip_channels` channels of its input;
- `token_weight`: cross-attention's output for query i is Σ_j p_ij v_j (p: the softmax over the caption's tokens).
  Multiplying p_ij by x for the word's token j is the same as multiplying v_j by x, so a hook on every `attn2.to_v`
  scales the word's rows of v in the caption's half of the batch; the fused attention kernel stays as it is, and
  ×1 multiplies by one exactly;
- `cache`: on steps between recomputations the UNet call is replaced by a shallow forward (the outermost input
  block, the outermost output block and the head) that takes the deep branch's feature from the last full step.

Every hook reads the step it is on from `Knobs.step`, which the sampling loop sets before each UNet call, and
acts on the batch rows `Knobs.rows` (all by default; the knob lane's when a baseline shares the batch): the other
rows pass through untouched (multiplied by exactly 1, or copied).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ...model.plan import plan_blocks
from ...model.unet import UNetModel, timestep_embedding
from .specs import Knob


class Knobs:
    """The knobs of one run, with the state the hooks share: the step, which rows are the caption's, the cache."""

    def __init__(self, unet: UNetModel, knobs: list[Knob]) -> None:
        self.unet = unet
        self.knobs = knobs
        self.step = 0
        self.rows = slice(None)  # the batch rows the knobs act on (a baseline lane's rows are left alone)
        self.cond_rows = slice(None)  # the acted-on rows that carry the caption (not the negative / empty one)
        self.cached: torch.Tensor | None = None  # the deep branch's output at the last full step
        self.full_calls = 0
        self.shallow_calls = 0
        plan = {b.path: b for b in plan_blocks(unet.config)}
        self.skip_channels = {p: b.skip_channels for p, b in plan.items() if b.skip_from is not None}
        cache = next((k for k in knobs if k.kind == "cache"), None)
        self.cache = cache if cache is not None and cache.every > 1 else None
        # The thread whose forwards the hooks act on (the one that installed them): a baseline running beside the
        # knob run on another thread (run.sample_beside) goes through the same modules untouched.
        self.owner: int | None = None

    # ---- per-step questions the loop asks ----------------------------------------------------------------
    def active(self, kind: str) -> list[Knob]:
        return [k for k in self.knobs if k.kind == kind and k.active(self.step)]

    def shallow_step(self) -> bool:
        """Whether this step reuses the cached deep feature (DeepCache: full every k-th step of its range)."""
        k = self.cache
        if k is None or not k.active(self.step) or self.cached is None:
            return False
        return (self.step - k.from_step) % k.every != 0

    # ---- hooks -------------------------------------------------------------------------------------------
    def _mine(self) -> bool:
        return threading.get_ident() == self.owner

    def _scale_hook(self, path: str):  # type: ignore[no-untyped-def]
        def hook(_m: nn.Module, _args: Any, out: torch.Tensor) -> torch.Tensor | None:
            if not self._mine():
                return None
            factor = 1.0
            for k in self.active("scale"):
                factor *= k.factors.get(path, 1.0)
            if not any(path in k.factors for k in self.active("scale")):
                return None
            if self.rows == slice(None):
                return out * factor
            per_row = torch.ones(out.shape[0], *([1] * (out.dim() - 1)), dtype=out.dtype)
            per_row[self.rows] = factor
            return out * per_row

        return hook

    def _skip_hook(self, path: str):  # type: ignore[no-untyped-def]
        channels = self.skip_channels[path]

        def hook(_m: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            cuts = [k for k in self.active("cut_skip") if path in k.skips]
            if not cuts or not self._mine():
                return None
            h = args[0]
            rows = self.rows
            trunk, skip = h[rows, :-channels], h[rows, -channels:]
            if cuts[-1].mode == "zero":
                skip = torch.zeros_like(skip)
            else:  # each channel's spatial mean: its level stays, where things are goes
                skip = skip.mean(dim=(2, 3), keepdim=True).expand_as(skip)
            if rows == slice(None):
                return (torch.cat([trunk, skip], dim=1), *args[1:])
            h = h.clone()
            h[rows, -channels:] = skip
            return (h, *args[1:])

        return hook

    def _value_hook(self):  # type: ignore[no-untyped-def]
        def hook(_m: nn.Module, _args: Any, v: torch.Tensor) -> torch.Tensor | None:
            knobs = self.active("token_weight")
            if not knobs or not self._mine():
                return None
            factor = torch.ones(v.shape[0], v.shape[1], 1, dtype=v.dtype)
            for k in knobs:
                for pos in k.positions:
                    factor[self.cond_rows, pos] *= k.weight
            return v * factor

        return hook

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The hooks on the UNet for the run's length, removed however it ends (torchinfo's discipline)."""
        handles = []
        u = self.unet
        self.owner = threading.get_ident()
        try:
            blocks = dict(self._blocks())
            scaled = {p for k in self.knobs if k.kind == "scale" for p in k.factors}
            for path in scaled:
                handles.append(blocks[path].register_forward_hook(self._scale_hook(path)))
            cut = {p for k in self.knobs if k.kind == "cut_skip" for p in k.skips}
            for path in cut:
                handles.append(blocks[path].register_forward_pre_hook(self._skip_hook(path)))
            if any(k.kind == "token_weight" for k in self.knobs):
                for name, module in u.named_modules():
                    if name.endswith("attn2"):
                        handles.append(module.to_v.register_forward_hook(self._value_hook()))
            if self.cache is not None:
                handles.append(u.output_blocks[-2].register_forward_hook(self._keep_deep))
            yield
        finally:
            for h in handles:
                h.remove()

    def _blocks(self) -> Iterator[tuple[str, nn.Module]]:
        u = self.unet
        yield from ((f"input_blocks.{i}", b) for i, b in enumerate(u.input_blocks))
        if u.middle_block is not None:
            yield "middle_block", u.middle_block
        yield from ((f"output_blocks.{i}", b) for i, b in enumerate(u.output_blocks))

    def _keep_deep(self, _m: nn.Module, _args: Any, out: torch.Tensor) -> None:
        if self._mine():
            self.cached = out

    # ---- the call --------------------------------------------------------------------------------------
    def unet_call(self, _step: int, _t: int, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """`call` in the shape sampling.denoise calls the UNet (the step is already in `self.step`)."""
        return self.call(x, t, context)

    def call(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.shallow_step():
            self.shallow_calls += 1
            return shallow_forward(self.unet, x, t, context, self.cached)  # type: ignore[arg-type]
        self.full_calls += 1
        return self.unet(x, t, context)


def shallow_forward(
    u: UNetModel, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor, deep: torch.Tensor
) -> torch.Tensor:
    """DeepCache's cheap step: the outermost input block, the cached deep feature in place of everything below it,
    the outermost output block (which concatenates the fresh skip) and the head. Mirrors UNetModel.forward's
    stages 1, 2 (first block only), 4 (last block only) and 5."""
    t_emb = timestep_embedding(timesteps, u.config.model_channels).to(u.time_embed[0].weight.dtype)
    emb = u.time_embed(t_emb)
    skip = u.input_blocks[0](x, emb, context)
    h = torch.cat([deep, skip], dim=1)
    h = u.output_blocks[-1](h, emb, context)
    return u.out(h.type(x.dtype))


@lru_cache(maxsize=4)
def block_macs(preset: str = "twin") -> dict[str, int]:
    """MACs of one forward (batch 1) per top-level block, from the trace (meta device: shapes only)."""
    from ...tracer.trace import trace_unet

    trace = trace_unet(preset)
    return {n.path: n.macs for n in trace.nodes}  # "" is the whole model


def macs_per_call(preset: str = "twin") -> tuple[int, int]:
    """(a full forward's MACs, a shallow step's MACs), batch 1, from the trace."""
    macs = block_macs(preset)
    full = macs[""]
    outer = ["time_embed", "input_blocks.0", f"output_blocks.{_last_output(macs)}", "out"]
    return full, sum(macs[p] for p in outer)


def _last_output(macs: dict[str, int]) -> int:
    return max(int(p.split(".")[1]) for p in macs if p.startswith("output_blocks.") and p.count(".") == 1)
