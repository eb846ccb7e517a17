"""The attribute reader: what a picture of the twin's world shows, read from its pixels alone.

It is the judge of the twin's gates, so it knows nothing the picture does not show:
- the ground is the colour of the border pixels (their median), named by the nearest ground colour;
- object pixels are those farther than `FOREGROUND` from the ground's colour; they are split into connected
  regions (4-neighbours), and regions under `MIN_PIXELS` are specks, not objects;
- an object's colour is the palette colour nearest to its pixels' median colour;
- its position is the anchor nearest to the centre of its bounding box, its size the box's larger side against
  the midpoint of the two sizes;
- its shape from how much of its bounding box it fills (a moment of order zero over the box): a square fills
  all of it, a circle pi/4 of it, a triangle half of it. The two cut points sit between those values, where the
  generator's own pictures, antialiased at 32 pixels, never fall (tests/test_twin_world.py measures it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .world import COLOURS, GROUNDS, SIZES, nearest_position

FOREGROUND = 60.0  # RGB distance from the ground's colour past which a pixel belongs to an object
MIN_PIXELS = 12  # smaller regions are noise
SQUARE_FILL = 0.89  # fill of the bounding box at or above which a shape is a square
TRIANGLE_FILL = 0.66  # ... below which it is a triangle; a circle in between


@dataclass(frozen=True)
class Seen:
    """One object as the reader sees it."""

    colour: str
    shape: str
    size: str
    position: str
    cx: float
    cy: float
    pixels: int
    fill: float


@dataclass(frozen=True)
class Reading:
    ground: str
    objects: tuple[Seen, ...]  # largest first
    mask: np.ndarray  # every object pixel


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    return min(palette, key=lambda name: float(((np.array(palette[name]) - rgb) ** 2).sum()))


def _regions(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """Connected regions of True pixels (4-neighbourhood), by breadth-first search: pictures are 32x32."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    regions = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, region = deque([(int(y0), int(x0))]), []
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        regions.append(region)
    return regions


def _object(image: np.ndarray, region: list[tuple[int, int]]) -> Seen:
    ys = np.array([p[0] for p in region])
    xs = np.array([p[1] for p in region])
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = len(region) / float(height * width)
    shape = "square" if fill >= SQUARE_FILL else "triangle" if fill < TRIANGLE_FILL else "circle"
    side = max(height, width)
    size = "large" if side >= sum(SIZES.values()) / 2 else "small"
    # The bounding box's centre (in the generator's coordinates, where pixel i spans i..i+1): a triangle's centroid
    # sits a sixth of its height below the centre the generator placed it at, the box's centre does not.
    cx = (xs.min() + xs.max() + 1) / 2.0
    cy = (ys.min() + ys.max() + 1) / 2.0
    colour = _nearest(np.median(image[ys, xs].astype(float), axis=0), COLOURS)
    return Seen(colour, shape, size, nearest_position(cx, cy), cx, cy, len(region), round(fill, 3))


def read(image: np.ndarray) -> Reading:
    """Read an RGB uint8 [32, 32, 3] picture of the world."""
    img = image.astype(float)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    ground_rgb = np.median(border, axis=0)
    mask = np.sqrt(((img - ground_rgb) ** 2).sum(axis=-1)) > FOREGROUND
    objects = [_object(image, r) for r in _regions(mask) if len(r) >= MIN_PIXELS]
    objects.sort(key=lambda o: -o.pixels)
    return Reading(_nearest(ground_rgb, GROUNDS), tuple(objects), mask)


def relation(first: Seen, second: Seen) -> str:
    """Where `first` is relative to `second`, along the axis on which they are farther apart."""
    dx, dy = first.cx - second.cx, first.cy - second.cy
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"
