"""The values of a LoRA file's `.alpha` scalars, read straight from a safetensors file (a few bytes each).

The header gives each scalar's dtype and byte range (relative to the end of the header); nothing else of the file
is read. A `.ckpt` / `.pt` file is only ever opened on the meta device (`header.read_torch_checkpoint`), so its
alphas stay unknown.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

from ..checkpoint.header import METADATA_KEY

_FORMATS = {"F16": "<e", "F32": "<f", "F64": "<d", "I8": "<b", "U8": "<B", "I16": "<h", "I32": "<i", "I64": "<q"}
MAX_ALPHAS = 50_000


def _decode(dtype: str, raw: bytes) -> float | None:
    if dtype == "BF16" and len(raw) == 2:
        return struct.unpack("<f", b"\0\0" + raw)[0]  # bfloat16 is the top half of a float32
    fmt = _FORMATS.get(dtype)
    if fmt is None or len(raw) != struct.calcsize(fmt):
        return None
    value = float(struct.unpack(fmt, raw)[0])
    return value if math.isfinite(value) else None


def read_alphas(path: str | Path, header: dict[str, Any]) -> dict[str, float]:
    """Tensor name -> value for every one-element `.alpha` tensor of a safetensors file."""
    path = Path(path)
    out: dict[str, float] = {}
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            return out
        start = 8 + int.from_bytes(head, "little")
        for name, entry in header.items():
            if name == METADATA_KEY or not name.endswith("alpha") or len(out) >= MAX_ALPHAS:
                continue
            offsets = entry.get("data_offsets")
            if not offsets or math.prod(entry.get("shape", [])) != 1:
                continue
            f.seek(start + offsets[0])
            value = _decode(entry["dtype"], f.read(offsets[1] - offsets[0]))
            if value is not None:
                out[name] = value
    return out
