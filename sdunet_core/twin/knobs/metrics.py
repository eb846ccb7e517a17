"""Pixel metrics between two pictures of the twin: MSE, SSIM and a difference picture.

No image library here has SSIM (scikit-image is not installed), so it is written out. The formula is Wang,
Bovik, Sheikh and Simoncelli, "Image quality assessment: from error visibility to structural similarity" (IEEE
TIP 2004), eq. 13: SSIM = ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)), with the local
statistics taken under an 11-tap Gaussian window of σ 1.5, C1 = (0.01 L)², C2 = (0.03 L)², L the range (1 here),
averaged over the picture and the three channels. scipy's `gaussian_filter` (truncate 3.5: radius 5) gives the
window, with edges reflected; this is the variant scikit-image computes with `gaussian_weights=True,
use_sample_covariance=False`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA = 1.5
TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5: the paper's 11 x 11 window
C1 = 0.01**2
C2 = 0.03**2


def _unit(picture: np.ndarray) -> np.ndarray:
    return picture.astype(np.float64) / 255.0


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 pictures, with values in 0..1."""
    return float(((_unit(a) - _unit(b)) ** 2).mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 [H, W, 3] pictures (1: identical)."""
    x, y = _unit(a), _unit(b)
    scores = []
    for c in range(x.shape[-1]):
        xc, yc = x[..., c], y[..., c]

        def blur(v: np.ndarray) -> np.ndarray:
            return gaussian_filter(v, SIGMA, truncate=TRUNCATE, mode="reflect")

        mx, my = blur(xc), blur(yc)
        vx = blur(xc * xc) - mx * mx
        vy = blur(yc * yc) - my * my
        cxy = blur(xc * yc) - mx * my
        s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
        scores.append(s.mean())
    return float(np.mean(scores))


def difference_picture(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| per channel, doubled so that small changes show (0: black), as uint8 [H, W, 3]."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)) * 2
    return np.clip(diff, 0, 255).astype(np.uint8)
