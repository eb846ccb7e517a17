"""Semantic correspondence, DIFT's use of the features: the pixel of a second picture most like a pixel of the first.

A point's features are read per pixel (conv maps and token features as they are; an attention map's row per query
pixel, averaged over heads), upsampled bilinearly to the picture's 32x32 as DIFT upsamples to the image, and
compared by cosine similarity: the source pixel's vector against every target pixel's. The best match is the
target pixel of highest similarity.

PCK (DIFT's benchmark measure, here on generated pairs): for pairs of one-object scenes, the source keypoint is the
object's centre, the match counts as correct when it lies within PCK_ALPHA x 32 pixels (3.2) of the target object's
centre. `chance` is the share of the target's pixels within that radius of its centre (what a random pixel scores).
Cross-attention k and v come from the text alone, so they have no pixels to match: they are refused.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..activations.capture import Capture, attention_chunks
from ..activations.catalog import ActivationPoint, resolve_points
from ..activations.conditioning import InputError
from ..twin import world
from ..twin.model import Twin
from ..twin.world import IMAGE_SIZE
from .features import HOOKED_FORWARD, noised, schedule
from .run import twin_points

PCK_ALPHA = 0.1
RADIUS = PCK_ALPHA * IMAGE_SIZE
PAIR_SEED_BASE = 710_000  # apart from the probes' images and below the training seeds
MAX_PAIRS = 256
DEFAULT_T = 261  # DIFT's timestep for SD 2.1


Sink = Callable[[str, torch.Tensor], None]  # (point name, its features [B, D, 32, 32]) as the hook sees them


class PixelCapture(Capture):
    """`Capture`'s hooks handing each point's per-pixel features at 32x32 to `sink` and dropping them (PCK over
    every point would otherwise hold up to 256 values x 1024 pixels per picture and point)."""

    def __init__(self, model: nn.Module, points: list[ActivationPoint], sink: Sink) -> None:
        super().__init__(model, points, (IMAGE_SIZE, IMAGE_SIZE), previews=False)  # type: ignore[arg-type]
        self.sink = sink

    def _keep(self, p: ActivationPoint, grid: torch.Tensor) -> None:
        self.sink(p.name, F.interpolate(grid, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear"))

    def _reduce_outputs(self, points: list[ActivationPoint], out: torch.Tensor) -> None:
        x = out.detach().float()
        for p in points:
            side = IMAGE_SIZE // p.factor
            # BNC: tokens are the block's pixels, row-major.
            grid = x.transpose(1, 2).reshape(x.shape[0], -1, side, side) if p.layout == "BNC" else x
            self._keep(p, grid)

    def _reduce_maps(self, attn: nn.Module, points: list[ActivationPoint], k: torch.Tensor) -> None:
        q = self._pending_q.pop(next(iter(points)).module)
        rows = torch.cat([probs.float().mean(1) for _, probs in attention_chunks(q, k, attn.heads)], dim=1)
        side = IMAGE_SIZE // points[0].factor
        for p in points:
            self._keep(p, rows.transpose(1, 2).reshape(rows.shape[0], -1, side, side))


def pixel_points(names: list[str], field: str = "points") -> list[ActivationPoint]:
    try:
        points = resolve_points(twin_points(), names)
    except KeyError as exc:
        raise InputError(field, f"unknown point {exc.args[0]!r}; see the catalog for the names") from None
    if not points:
        raise InputError(field, "choose at least one point")
    if field == "points":  # a group: the points without pixels are left out
        points = [p for p in points if p.layout != "BTC"] if len(names) > 1 or names[0].startswith("@") else points
    flat = [p.name for p in points if p.layout == "BTC"]
    if flat:
        raise InputError(field, f"{flat[0]} comes from the text alone (cross-attention k or v): it has no pixels")
    return points


@torch.inference_mode()
def pixel_features(model: Twin, points: list[ActivationPoint], seeds: list[int], t: int, sink: Sink) -> None:
    """Per-pixel features [B, D, 32, 32] of each point for the one-object scenes of `seeds`, noised to t, handed to
    `sink` point by point during one forward."""
    images = np.stack([world.example(s, two=False)[2] for s in seeds])
    x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = noised(x0, seeds, t, schedule(model))
    with HOOKED_FORWARD, PixelCapture(model.unet, points, sink):
        b = x.shape[0]
        model.unet(x, torch.full((b,), t, dtype=torch.long), model.context([""]).expand(b, -1, -1))


def similarity(src: torch.Tensor, xy: tuple[int, int], tgt: torch.Tensor) -> torch.Tensor:
    """Cosine similarity [32, 32] of the source pixel (x, y)'s features [D, 32, 32] with every target pixel's."""
    v = src[:, xy[1], xy[0]]
    return F.cosine_similarity(tgt, v[:, None, None], dim=0)


def best_match(sim: torch.Tensor) -> tuple[int, int]:
    i = int(sim.flatten().argmax())
    return i % sim.shape[1], i // sim.shape[1]


def centre(seed: int) -> tuple[float, float]:
    thing = world.sample_scene(seed, two=False).things[0]
    return thing.cx, thing.cy


def png_data_url(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def match(model: Twin, point: str, t: int, source_seed: int, target_seed: int, x: int, y: int) -> dict:
    """The target pixel most like the source pixel (x, y), with the similarity map and both pictures."""
    if point.startswith("@"):
        raise InputError("point", "name one point, not a group")
    (p,) = pixel_points([point], "point")
    for name, v in (("x", x), ("y", y)):
        if not 0 <= v < IMAGE_SIZE:
            raise InputError(name, f"{v} is outside the {IMAGE_SIZE}-pixel picture")
    kept: dict[str, torch.Tensor] = {}
    pixel_features(model, [p], [source_seed, target_seed], t, kept.__setitem__)
    feats = kept[p.name]
    sim = similarity(feats[0], (x, y), feats[1])
    mx, my = best_match(sim)
    out = {"point": p.name, "t": t, "x": x, "y": y, "match": {"x": mx, "y": my}}
    for role, seed in (("source", source_seed), ("target", target_seed)):
        scene, text, image, _ = world.example(seed, two=False)
        out[role] = {"seed": seed, "caption": text, "image": png_data_url(image),
                     "centre": {"x": scene.things[0].cx, "y": scene.things[0].cy}}  # fmt: skip
    out["similarity"] = [[round(float(v), 4) for v in row] for row in sim]
    return out


@dataclass(frozen=True)
class PCKRow:
    point: str
    t: int
    pck: float
    n_pairs: int
    radius_px: float
    chance: float


def chance_pck(seeds: list[int]) -> float:
    """The mean share of a target's pixels within RADIUS of its object's centre."""
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5
    shares = [np.mean((xs - cx) ** 2 + (ys - cy) ** 2 <= RADIUS**2) for cx, cy in map(centre, seeds)]
    return float(np.mean(shares))


def pck(
    model: Twin,
    names: list[str],
    t: int = DEFAULT_T,
    n_pairs: int = 32,
    batch: int = 16,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[PCKRow]:
    """PCK@PCK_ALPHA of each point over `n_pairs` generated pairs (object centres as keypoints)."""
    points = check_pck(names, t, n_pairs)
    pairs = [(PAIR_SEED_BASE + 2 * i, PAIR_SEED_BASE + 2 * i + 1) for i in range(n_pairs)]
    right = dict.fromkeys((p.name for p in points), 0)
    for start in range(0, n_pairs, batch):
        chunk = pairs[start : start + batch]
        keys = [(centre(src), centre(tgt)) for src, tgt in chunk]

        def score(name: str, f: torch.Tensor, chunk: list = chunk, keys: list = keys) -> None:
            for i, ((sx, sy), (tx, ty)) in enumerate(keys):
                mx, my = best_match(similarity(f[i], (int(sx), int(sy)), f[len(chunk) + i]))
                right[name] += (mx + 0.5 - tx) ** 2 + (my + 0.5 - ty) ** 2 <= RADIUS**2

        pixel_features(model, points, [s for s, _ in chunk] + [s for _, s in chunk], t, score)
        if progress is not None:
            progress("pairs", start + len(chunk), n_pairs)
    chance = chance_pck([tgt for _, tgt in pairs])
    return [PCKRow(p.name, t, right[p.name] / n_pairs, n_pairs, RADIUS, chance) for p in points]


def check_pck(names: list[str], t: int, n_pairs: int) -> list[ActivationPoint]:
    points = pixel_points(names)
    if not 0 <= t <= 999:
        raise InputError("t", f"{t} is out of range: SD's schedule has timesteps 0 to 999")
    if not 1 <= n_pairs <= MAX_PAIRS:
        raise InputError("n_pairs", f"{n_pairs}: choose 1 to {MAX_PAIRS} pairs")
    return points
