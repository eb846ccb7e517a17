"""Forward hooks that read the catalog's points during one real forward and reduce them on the spot.

`Capture(model, points, ...)` is a context manager: it registers forward hooks on the modules the points name
(outputs of ResBlocks, transformers, resamplers, to_q / to_k / to_v, ff.net.0, the output head) and a
pre-hook on the model for its input, and removes every hook on exit, whatever happened. The model's forward is
untouched: hooks only read what passes.

Inside a hook each point is reduced at once (statistics, a preview) and the tensor is dropped, unless the point
is kept for export (`keep`) or for a comparison with a second timestep (`compare=True`: block outputs and other
non-map points are kept as float32 CPU copies). So memory stays at the model plus the largest activation plus
what was asked for.

Attention maps are never formed by the model (it uses a fused kernel). For a `*-map` point the hooks on the
attention's to_q and to_k keep q and k until both exist, then compute softmax(q kᵀ / √d) per head in chunks of
queries (at most `MAP_CHUNK_ELEMENTS` values at a time), reduce each chunk and drop it:
- statistics over every probability (range [0, 1] known in advance, so the histogram streams);
- self-map preview: the attention each pixel *receives*, averaged over heads and query pixels (a heat image; the
  values over all key pixels sum to 1);
- cross-map: the head-averaged map [queries, tokens] of the first batch item, kept for the word heat maps (each
  query pixel's values over all context tokens sum to 1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..model.unet import UNetModel
from .catalog import ActivationPoint
from .reduce import Preview, Stats, StreamingStats, as_tokens, cosine, heat_preview, pca_preview, tensor_stats

# Values of one chunk of an attention map (64 MiB in float32).
MAP_CHUNK_ELEMENTS = 1 << 24


@dataclass
class PointResult:
    point: ActivationPoint
    stats: Stats | None = None
    preview: Preview | None = None
    tensor: torch.Tensor | None = None  # the full activation, for export (CPU)
    heat: torch.Tensor | None = None  # cross-map: head-mean probabilities [queries, tokens] of batch item 0
    cosine: float | None = None  # with the same point at the comparison timestep


def grid(point: ActivationPoint, latent: tuple[int, ...]) -> tuple[int, int]:
    """Height and width of the point's pixels: the latent size over its factor."""
    return latent[-2] // point.factor, latent[-1] // point.factor


def attention_chunks(q: torch.Tensor, k: torch.Tensor, heads: int):
    """softmax(q kᵀ / √d) per head for q [B, N, heads·d], k [B, M, heads·d], as [B, heads, n, M] query chunks."""
    b, n, inner = q.shape
    m = k.shape[1]
    d = inner // heads
    qh = q.reshape(b, n, heads, d).transpose(1, 2).float()
    kh = k.reshape(b, m, heads, d).transpose(1, 2).float()
    step = max(1, MAP_CHUNK_ELEMENTS // (b * heads * m))
    scale = 1.0 / math.sqrt(d)
    for start in range(0, n, step):
        scores = (qh[:, :, start : start + step] @ kh.transpose(-1, -2)) * scale
        yield start, scores.softmax(dim=-1)


class Capture:
    """Hooks for `points` on `model` during the forwards run inside `with Capture(...)`."""

    def __init__(
        self,
        model: UNetModel,
        points: list[ActivationPoint],
        latent_size: tuple[int, ...],
        *,
        keep: frozenset[str] = frozenset(),
        previews: bool = True,
        compare: bool = False,
    ) -> None:
        self.model = model
        self.points = points
        self.latent_size = latent_size
        self.keep = keep
        self.previews = previews
        self.compare = compare
        self.results: dict[str, PointResult] = {p.name: PointResult(p) for p in points}
        self._reference: dict[str, torch.Tensor] | None = None  # set for the second (comparison) forward
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._pending_q: dict[str, torch.Tensor] = {}
        self.reduce_seconds = 0.0  # time spent in the hooks' reductions (the capture's own cost)

    # ---- hooks ------------------------------------------------------------------------------------------
    def __enter__(self) -> Capture:
        by_module: dict[str, list[ActivationPoint]] = {}
        maps: dict[str, list[ActivationPoint]] = {}
        for p in self.points:
            if p.source == "attention-map":
                maps.setdefault(p.module, []).append(p)
            elif p.source == "output":
                by_module.setdefault(p.module, []).append(p)
        try:
            for name, pts in by_module.items():
                self._hook(name, lambda _m, _a, out, pts=pts: self._outputs(pts, out))
            for attn_name, pts in maps.items():
                attn = self.model.get_submodule(attn_name)
                self._hook(f"{attn_name}.to_q", lambda _m, _a, out, a=attn_name: self._pending_q.__setitem__(a, out))
                self._hook(f"{attn_name}.to_k", lambda _m, _a, out, a=attn, pts=pts: self._maps(a, pts, out))
            inputs = [p for p in self.points if p.source == "input"]
            if inputs:
                self._handles.append(
                    self.model.register_forward_pre_hook(lambda _m, args, pts=inputs: self._outputs(pts, args[0]))
                )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._pending_q.clear()

    def _hook(self, module: str, fn) -> None:  # type: ignore[no-untyped-def]
        self._handles.append(self.model.get_submodule(module).register_forward_hook(fn))

    # ---- reductions -------------------------------------------------------------------------------------
    def start_comparison(self) -> None:
        """The next forward is the comparison one: cosine against what the first kept, nothing else."""
        self._reference = {n: r.tensor for n, r in self.results.items() if r.tensor is not None and n in self._cmp}
        for name in self._cmp - self.keep:
            self.results[name].tensor = None

    @property
    def _cmp(self) -> set[str]:
        return {p.name for p in self.points if self.compare and p.source != "attention-map"}

    def _outputs(self, points: list[ActivationPoint], out: torch.Tensor) -> None:
        started = time.perf_counter()
        self._reduce_outputs(points, out)
        self.reduce_seconds += time.perf_counter() - started

    def _reduce_outputs(self, points: list[ActivationPoint], out: torch.Tensor) -> None:
        for p in points:
            r = self.results[p.name]
            if self._reference is not None:
                if p.name in self._reference:
                    r.cosine = cosine(self._reference[p.name], out)
                continue
            r.stats = tensor_stats(out)
            if self.previews and p.spatial:
                h, w = grid(p, self.latent_size)
                r.preview = pca_preview(as_tokens(out, p.layout), h, w)
            if p.name in self.keep or p.name in self._cmp:
                r.tensor = out.detach().float().cpu().clone()

    def _maps(self, attn: nn.Module, points: list[ActivationPoint], k: torch.Tensor) -> None:
        if self._reference is not None:
            return
        started = time.perf_counter()
        self._reduce_maps(attn, points, k)
        self.reduce_seconds += time.perf_counter() - started

    def _reduce_maps(self, attn: nn.Module, points: list[ActivationPoint], k: torch.Tensor) -> None:
        q = self._pending_q.pop(next(iter(points)).module)
        heads = attn.heads
        b, n, m = q.shape[0], q.shape[1], k.shape[1]
        for p in points:
            stats = StreamingStats(0.0, 1.0)
            keep = p.name in self.keep
            full = torch.empty(b, heads, n, m) if keep else None
            received = torch.zeros(m, dtype=torch.float64, device=q.device)
            heat = torch.empty(n, m) if p.kind == "cross-map" else None
            for start, probs in attention_chunks(q, k, heads):
                stats.add(probs)
                first = probs[0]
                if heat is not None:
                    heat[start : start + first.shape[1]] = first.mean(dim=0).cpu()
                received += first.double().sum(dim=(0, 1))
                if full is not None:
                    full[:, :, start : start + first.shape[1]] = probs.cpu()
            r = self.results[p.name]
            r.stats = stats.result()
            r.tensor = full
            r.heat = heat
            if self.previews and p.kind == "self-map" and m == n:
                h, w = grid(p, self.latent_size)
                r.preview = heat_preview((received / (heads * n)).float().reshape(h, w).cpu())


@dataclass
class ForwardInputs:
    """The UNet's arguments for one capture (batch 1): the noised latent, timestep, context and y."""

    x: torch.Tensor
    timestep: int
    context: torch.Tensor | None
    y: torch.Tensor | None
    extra: dict = field(default_factory=dict)

    def at(self, timestep: int, x: torch.Tensor | None = None) -> ForwardInputs:
        return ForwardInputs(self.x if x is None else x, timestep, self.context, self.y, self.extra)


def run_forward(model: UNetModel, inputs: ForwardInputs) -> torch.Tensor:
    """One forward in eval mode without gradients."""
    device = next(model.parameters()).device
    t = torch.full((inputs.x.shape[0],), float(inputs.timestep), device=device)
    with torch.inference_mode():
        return model(
            inputs.x.to(device),
            t,
            None if inputs.context is None else inputs.context.to(device),
            None if inputs.y is None else inputs.y.to(device),
        )
