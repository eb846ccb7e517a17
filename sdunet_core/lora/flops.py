"""The FLOPs an unmerged LoRA adds to one forward, from the shapes a trace recorded at each patched module.

Only each trace node's `path`, `inputs` and `outputs` are read. A module's positions are the
elements of its input (output) over its channels: batch x tokens for a Linear (whose channels are the last axis),
batch x height x width for a convolution (channels on axis 1). `ModuleTensors.flops` turns positions into FLOPs
(see `algos` for what is counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..schema import Node, TensorSpec
from .detect import LoraDetection


def _positions(spec: list[TensorSpec] | None, kind: str | None) -> int | None:
    if not spec:
        return None
    shape = spec[0].shape
    if len(shape) < 2:
        return None
    channels = shape[-1] if kind == "linear" else shape[1]
    return math.prod(shape) // channels if channels else 0


def add_flops(detection: LoraDetection, nodes: Iterable[Node], inputs: dict[str, Any]) -> None:
    """Fill in every UNet module's FLOPs from the trace nodes; `inputs` says what was traced (size, batch)."""
    by_path = {n.path: n for n in nodes}
    missing = []
    for m in detection.modules:
        node = by_path.get(m.path or "")
        n_in = _positions(node.inputs, m.kind) if node else None
        n_out = _positions(node.outputs, m.kind) if node else None
        if n_in is None or n_out is None:
            missing.append(m.path or m.lora_key)
            m.flops = None
            continue
        m.flops = m.tensors.flops(n_in, n_out)
    detection.flops = {
        **inputs,
        "counted": "2 FLOPs per multiply-add of the unmerged modules' own layers, for one UNet forward",
    }
    if missing:
        detection.notes.append(f"no traced shapes for {len(missing)} modules (counted as 0): {', '.join(missing[:5])}")
