"""A local checkpoint's UNet weights, read tensor by tensor in our key names, and statistics of a module's weights.

The file's architecture comes from `checkpoint.inspect_file` (header only). Tensors are read lazily: safetensors
files through `safe_open` (memory-mapped), `.ckpt`/`.pt` through `torch.load(weights_only=True, mmap=True)`, so
asking for one block's statistics reads that block alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Detection, inspect_file
from .diffusers_keys import to_diffusers_name
from .header import CheckpointError
from .unet import UNetModel

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
        """Mean, std, L2 norm, min and max of a module's weights (all of them, and per tensor), and a histogram."""
        keys = self.keys_under(module_path)
        if not keys:
            raise KeyError(module_path)
        per_tensor = []
        count, total, total_sq, lo, hi = 0, 0.0, 0.0, math.inf, -math.inf
        samples = []
        for key, stored in self.read(keys):
            t = stored.detach().to(torch.float64).flatten()
            n = t.numel()
            s, sq = float(t.sum()), float((t * t).sum())
            tmin, tmax = float(t.min()), float(t.max())
            mean = s / n
            per_tensor.append(
                {
                    "key": key,
                    "shape": list(self.shapes[key]),
                    "dtype": str(stored.dtype).removeprefix("torch."),
                    "mean": mean,
                    "std": math.sqrt(max(sq / n - mean * mean, 0.0)),
                    "norm": math.sqrt(sq),
                    "min": tmin,
                    "max": tmax,
                }
            )
            count, total, total_sq = count + n, total + s, total_sq + sq
            lo, hi = min(lo, tmin), max(hi, tmax)
            step = max(1, n // HISTOGRAM_SAMPLE)
            samples.append(t[::step].to(torch.float32))
        mean = total / count
        values = torch.cat(samples)
        if hi > lo:
            counts = torch.histc(values, bins=HISTOGRAM_BINS, min=lo, max=hi)
            edges = torch.linspace(lo, hi, HISTOGRAM_BINS + 1)
        else:  # a constant tensor (all zeros, say): one bin
            counts, edges = torch.tensor([float(values.numel())]), torch.tensor([lo, hi])
        return {
            "path": module_path,
            "count": count,
            "mean": mean,
            "std": math.sqrt(max(total_sq / count - mean * mean, 0.0)),
            "norm": math.sqrt(total_sq),
            "min": lo,
            "max": hi,
            "histogram": {
                "edges": edges.tolist(),
                "counts": [int(c) for c in counts.tolist()],
                "sampled": values.numel() < count,
            },
            "tensors": per_tensor,
        }
