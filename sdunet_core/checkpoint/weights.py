"""A local checkpoint's UNet weights, read tensor by tensor in our key names, and statistics of a module's weights.

The file's architecture comes from `detect.inspect_file` (header only). Tensors are read lazily: safetensors
files through `safe_open` (memory-mapped), `.ckpt`/`.pt` through `torch.load(weights_only=True, mmap=True)`, so
asking for one block's statistics reads that block alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ..model.unet import UNetModel
from .detect import Detection, inspect_file
from .diffusers_keys import to_diffusers_name
from .header import CheckpointError

HISTOGRAM_BINS = 64
# Values per tensor that feed the histogram: larger tensors are sampled with an even stride (mean, std and norm
# always use every value).
HISTOGRAM_SAMPLE = 1 << 20


@lru_cache(maxsize=4)
def open_weights(path: str) -> WeightsFile:
    """A WeightsFile per path, read once: the CLI checks the file before serving and the app then uses the same."""
    return WeightsFile(path)


class WeightsFile:
    """The UNet inside a checkpoint file, addressed by our state-dict keys."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.detection: Detection = inspect_file(self.path)
        det = self.detection
        if not det.exact:
            raise CheckpointError(
                "weights",
                f"{self.path.name} does not load strictly into the detected architecture: "
                f"{len(det.missing)} missing, {len(det.unexpected)} unexpected, {len(det.mismatched)} mismatched keys",
            )
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in UNetModel(det.config).state_dict().items()}
        self.shapes = shapes
        self._file_keys: dict[str, str] = {}
        for key in shapes:
            name = key if det.format == "ldm" else to_diffusers_name(key, det.config)
            if name is None:
                raise CheckpointError("weights", f"no diffusers name for {key}")
            self._file_keys[key] = det.prefix + name
        self._torch_dict: dict[str, torch.Tensor] | None = None

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.detection.config

    def read(self, keys: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
        """(our key, tensor as stored) for each key, opening the file once for all of them."""
        if self.path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(self.path), framework="pt") as f:
                for key in keys:
                    yield key, f.get_tensor(self._file_keys[key])
            return
        if self._torch_dict is None:
            obj = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)
            if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
                obj = obj["state_dict"]
            self._torch_dict = obj
        for key in keys:
            yield key, self._torch_dict[self._file_keys[key]]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.read(list(self._file_keys)))

    def keys_under(self, module_path: str) -> list[str]:
        """The state-dict keys of a module (and its children), in order."""
        if module_path == "":
            return list(self.shapes)
        prefix = module_path + "."
        return [k for k in self.shapes if k.startswith(prefix)]

    def stats(self, module_path: str) -> dict[str, Any]:
        """Mean, std, L2 norm, min and max of a module's weights (all of them, and per tensor), and a histogram.

        Statistics are of the finite values; NaN and infinite values (a broken fine-tune has them) are counted
        apart in `nonfinite`, and a tensor with no finite value reports null statistics.
        """
        keys = self.keys_under(module_path)
        if not keys:
            raise KeyError(module_path)
        per_tensor = []
        count, nonfinite, total, total_sq, lo, hi = 0, 0, 0.0, 0.0, math.inf, -math.inf
        samples = []
        for key, stored in self.read(keys):
            t = stored.detach().to(torch.float64).flatten()
            finite = torch.isfinite(t)
            bad = int(t.numel() - finite.sum())
            if bad:
                t = t[finite]
            s = _moments(t)
            per_tensor.append(
                {
                    "key": key,
                    "shape": list(self.shapes[key]),
                    "dtype": str(stored.dtype).removeprefix("torch."),
                    "nonfinite": bad,
                    **s.summary(),
                }
            )
            count, nonfinite, total, total_sq = count + s.n, nonfinite + bad, total + s.sum, total_sq + s.sum_sq
            if s.n:
                lo, hi = min(lo, s.min), max(hi, s.max)
                step = max(1, s.n // HISTOGRAM_SAMPLE)
                samples.append(t[::step].to(torch.float32))
        whole = _Moments(count, total, total_sq, lo, hi)
        return {
            "path": module_path,
            "count": count,
            "nonfinite": nonfinite,
            **whole.summary(),
            "histogram": _histogram(samples, lo, hi, count),
            "tensors": per_tensor,
        }


class _Moments(NamedTuple):
    n: int
    sum: float
    sum_sq: float
    min: float
    max: float

    def summary(self) -> dict[str, float | None]:
        if self.n == 0:
            return dict.fromkeys(("mean", "std", "norm", "min", "max"))
        mean = self.sum / self.n
        # A sum of squares can still overflow float64 (values near 1e308): report it as null, never as inf.
        norm = math.sqrt(self.sum_sq) if math.isfinite(self.sum_sq) else None
        var = self.sum_sq / self.n - mean * mean
        std = math.sqrt(max(var, 0.0)) if math.isfinite(var) else None
        return {
            "mean": mean if math.isfinite(mean) else None,
            "std": std,
            "norm": norm,
            "min": self.min,
            "max": self.max,
        }


def _moments(t: torch.Tensor) -> _Moments:
    if t.numel() == 0:
        return _Moments(0, 0.0, 0.0, math.inf, -math.inf)
    return _Moments(t.numel(), float(t.sum()), float((t * t).sum()), float(t.min()), float(t.max()))


def _histogram(samples: list[torch.Tensor], lo: float, hi: float, count: int) -> dict[str, Any]:
    if not samples:
        return {"edges": [], "counts": [], "sampled": False}
    values = torch.cat(samples)
    if hi > lo and math.isfinite(hi - lo):
        counts = torch.histc(values, bins=HISTOGRAM_BINS, min=lo, max=hi)
        edges = torch.linspace(lo, hi, HISTOGRAM_BINS + 1)
    else:  # a constant tensor (all zeros, say), or a range float32 cannot span: one bin
        counts, edges = torch.tensor([float(values.numel())]), torch.tensor([lo, hi])
    return {"edges": edges.tolist(), "counts": [int(c) for c in counts.tolist()], "sampled": values.numel() < count}
