"""Word heat maps from the cross-attention maps a capture kept, per layer, per resolution and overall.

How they are normalised (and what the tests check): a layer's map is softmax(q kᵀ / √d) averaged over its heads,
so at every pixel its values over the 77 context tokens sum to 1. The maps returned list the prompt's own tokens
(start, pieces, end) one by one, and the padding positions after the end token added together as one entry, so
at every pixel the entries returned sum to 1. A resolution's map is the mean of its layers' maps; the overall map
is the mean of every layer's map after bilinear upsampling to the finest resolution among them. Both are convex
combinations of maps that sum to 1, so they sum to 1 at every pixel too. (DAAM sums instead of averaging and
upsamples bicubically; a mean keeps the values probabilities.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .capture import PointResult, grid

PADDING = "<padding>"


@dataclass
class HeatMapSet:
    name: str  # a point name, "resolution HxW", or "all"
    layers: list[str]
    maps: torch.Tensor  # [entries, h, w]


@dataclass
class HeatMaps:
    tokens: list[dict]  # {index, id, text}: index is the position in the context, -1 for the padding entry
    layers: list[HeatMapSet]
    resolutions: list[HeatMapSet]
    overall: HeatMapSet | None


def _entries(heat: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """[pixels, 77] -> [entries, pixels]: the prompt's tokens, then the padding summed (when there is padding)."""
    own = heat[:, :n_tokens].T
    if heat.shape[1] > n_tokens:
        return torch.cat([own, heat[:, n_tokens:].sum(dim=1, keepdim=True).T])
    return own


def build(results: list[PointResult], ids: list[int], texts: list[str], latent: tuple[int, ...]) -> HeatMaps:
    """Heat maps from the cross-map results (those with `heat`), for a prompt of `ids`."""
    n = len(ids)
    tokens = [{"index": i, "id": ids[i], "text": texts[i]} for i in range(n)]
    layers: list[HeatMapSet] = []
    for r in results:
        if r.heat is None:
            continue
        h, w = grid(r.point, latent)
        if r.heat.shape[1] > n and tokens[-1]["index"] != -1:
            tokens.append({"index": -1, "id": -1, "text": PADDING})
        layers.append(HeatMapSet(r.point.name, [r.point.name], _entries(r.heat, n).reshape(-1, h, w)))
    by_res: dict[tuple[int, int], list[HeatMapSet]] = {}
    for layer in layers:
        by_res.setdefault(tuple(layer.maps.shape[1:]), []).append(layer)
    resolutions = [
        HeatMapSet(f"resolution {h}x{w}", [m.name for m in group], torch.stack([m.maps for m in group]).mean(0))
        for (h, w), group in sorted(by_res.items(), reverse=True)
    ]
    overall = None
    if layers:
        size = max(by_res, key=lambda s: s[0] * s[1])
        up = [
            F.interpolate(m.maps[None], size=size, mode="bilinear", align_corners=False)[0]
            if tuple(m.maps.shape[1:]) != size
            else m.maps
            for m in layers
        ]
        overall = HeatMapSet("all", [m.name for m in layers], torch.stack(up).mean(0))
    return HeatMaps(tokens, layers, resolutions, overall)
