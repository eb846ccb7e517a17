"""Reductions of one activation to what a person can look at: statistics, a histogram, a PCA preview, PNG bytes.

Each runs on the tensor while the forward hook holds it, so nothing larger than the preview outlives the hook.

- statistics: mean, population std, min and max of every value (float32 arithmetic), and a histogram of
  `HISTOGRAM_BINS` equal bins over [min, max];
- PCA preview: the values at each pixel as a feature vector (channels of a conv map, the embedding of a token),
  centred, projected on the first three principal components, each mapped to [0, 1] between its 1st and 99th
  percentile and shown as R, G, B at the point's own resolution. The axes are found on at most `SAMPLE_ROWS`
  evenly strided pixels (so a preview costs a small part of the forward it watches): exactly (an
  eigendecomposition of the smaller Gram matrix) up to `EXACT_PCA_WORK`, past it by `torch.pca_lowrank` with a
  fixed seed; every pixel is then projected. Each axis's sign is fixed so that its largest loading is positive,
  so the same input gives the same colours; `explained_variance` is the share of all the variance along each
  shown axis.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch

HISTOGRAM_BINS = 64
# N x min(N, C)^2 multiply-adds: past this the exact eigendecomposition costs a noticeable part of a forward.
EXACT_PCA_WORK = 20_000_000
# Rows (pixels) the axes are found on; every pixel is then projected on them.
SAMPLE_ROWS = 1024


@dataclass
class Stats:
    count: int
    mean: float
    std: float
    min: float
    max: float
    edges: list[float]
    counts: list[int]

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "histogram": {"edges": self.edges, "counts": self.counts},
        }


def tensor_stats(t: torch.Tensor) -> Stats:
    """Statistics of every value of `t`."""
    flat = t.detach().reshape(-1).float()
    std, mean = torch.std_mean(flat, correction=0)
    lo_t, hi_t = torch.aminmax(flat)
    lo, hi = float(lo_t), float(hi_t)
    return Stats(flat.numel(), float(mean), float(std), lo, hi, *histogram(flat, lo, hi))


def histogram(flat: torch.Tensor, lo: float, hi: float) -> tuple[list[float], list[int]]:
    """Edges and counts of HISTOGRAM_BINS equal bins over [lo, hi] (one bin for a constant tensor)."""
    if hi > lo:
        counts = torch.histc(flat, bins=HISTOGRAM_BINS, min=lo, max=hi)
        edges = torch.linspace(lo, hi, HISTOGRAM_BINS + 1, dtype=torch.float64)
        return edges.tolist(), [int(c) for c in counts.tolist()]
    return [lo, hi], [flat.numel()]


class StreamingStats:
    """The same statistics over values seen in chunks, for a known range (attention probabilities: [0, 1])."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.counts = torch.zeros(HISTOGRAM_BINS, dtype=torch.float64)

    def add(self, chunk: torch.Tensor) -> None:
        flat = chunk.detach().reshape(-1).float()
        self.n += flat.numel()
        self.total += float(flat.double().sum())
        self.total_sq += float((flat.double() ** 2).sum())
        self.min = min(self.min, float(flat.min()))
        self.max = max(self.max, float(flat.max()))
        self.counts += torch.histc(flat, bins=HISTOGRAM_BINS, min=self.lo, max=self.hi).double()

    def result(self) -> Stats:
        mean = self.total / self.n
        std = math.sqrt(max(self.total_sq / self.n - mean * mean, 0.0))
        edges = torch.linspace(self.lo, self.hi, HISTOGRAM_BINS + 1, dtype=torch.float64).tolist()
        return Stats(self.n, mean, std, self.min, self.max, edges, [int(c) for c in self.counts.tolist()])


@dataclass
class Preview:
    """An image of an activation: `values` [height, width, channels] in [0, 1]."""

    kind: str  # "pca-rgb" (three principal components) or "heat" (one value per pixel)
    values: np.ndarray
    explained_variance: list[float] | None = None  # share of the variance of each shown component
    scale: float | None = None  # for "heat": the value that 1.0 stands for

    def png(self) -> bytes:
        return encode_png(self.values)


def as_tokens(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The first batch item as [pixels, channels]: BCHW -> [H*W, C]; BNC is already so."""
    x = t.detach()[0].float()
    if layout == "BCHW":
        return x.reshape(x.shape[0], -1).T
    return x


def _principal_axes(rows: torch.Tensor, q: int) -> torch.Tensor:
    """The first q principal axes [C, q] of the centred sample rows [n, C]."""
    n, c = rows.shape
    if n * min(n, c) ** 2 <= EXACT_PCA_WORK:
        if c <= n:
            return torch.linalg.eigh(rows.T @ rows)[1][:, -q:].flip(1)
        # The n x n Gram matrix: its eigenvectors mapped back through the rows are the axes.
        axes = rows.T @ torch.linalg.eigh(rows @ rows.T)[1][:, -q:].flip(1)
        return axes / axes.norm(dim=0, keepdim=True).clamp_min(1e-12)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.pca_lowrank(rows, q=min(q + 3, n, c), center=False, niter=2)[2][:, :q]


def pca_preview(tokens: torch.Tensor, height: int, width: int) -> Preview:
    """The first three principal components of tokens [H*W, C] as an RGB image [H, W, 3].

    Nothing of the tokens' size is copied: the mean is subtracted from the sampled rows and from the projections,
    and a channel-first view (a conv map's tokens) is read channel by channel, as it lies in memory.
    """
    x = tokens.float()
    n = x.shape[0]
    channel_first = not x.is_contiguous() and x.T.is_contiguous()
    mean = x.mean(dim=0)
    total = float(torch.linalg.vector_norm(x) ** 2) - n * float(mean @ mean)
    q = min(3, n, x.shape[1])
    stride = math.ceil(n / SAMPLE_ROWS)
    # The sampled pixels as rows, centred (made contiguous from a [C, N] storage).
    rows = (x.T[:, ::stride] - mean[:, None]).T.contiguous() if channel_first else x[::stride] - mean
    axes = _principal_axes(rows, q)
    # A sign per component, fixed by its largest loading: the same input always gives the same colours.
    axes = axes * (torch.sign(axes.gather(0, axes.abs().argmax(dim=0, keepdim=True))).clamp_min(0) * 2 - 1)
    offset = mean @ axes
    proj = (axes.T @ x.T).T - offset if channel_first else x @ axes - offset  # [H*W, q]
    # The share of all the variance that lies along each shown axis, over every pixel.
    explained = [float(v) / total if total > 0 else 0.0 for v in (proj * proj).sum(dim=0).tolist()]
    proj = proj.reshape(height, width, q)
    if q < 3:  # fewer than three channels: the missing colours stay black
        proj = torch.cat([proj, proj.new_zeros(height, width, 3 - q)], dim=-1)
    flat = proj.reshape(-1, 3)
    lo = torch.quantile(flat, 0.01, dim=0)
    hi = torch.quantile(flat, 0.99, dim=0)
    rgb = ((proj - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return Preview("pca-rgb", rgb.cpu().numpy(), explained_variance=explained)


def heat_preview(values: torch.Tensor) -> Preview:
    """A one-channel image [H, W, 1] of non-negative values, scaled by their maximum."""
    scale = float(values.max()) if values.numel() else 0.0
    img = (values / scale if scale > 0 else values).clamp(0, 1)
    return Preview("heat", img.unsqueeze(-1).float().cpu().numpy(), scale=scale)


def encode_png(values: np.ndarray) -> bytes:
    """[H, W, 1 or 3] floats in [0, 1] -> 8-bit grey or RGB PNG bytes."""
    from PIL import Image

    img = np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    # A 2-D uint8 array is read as grey ("L"), [H, W, 3] as RGB.
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
    return buf.getvalue()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two activations as flat vectors (float64 sums)."""
    x = a.reshape(-1).double()
    y = b.reshape(-1).double().to(x.device)
    denom = float(x.norm() * y.norm())
    return float(x @ y) / denom if denom > 0 else 0.0
