"""JSON forms of the catalog and of a capture (the API returns these; docs in the README's Activations section).

Images come as base64 PNG (`encoding="png"`) or as flat row-major float lists with their shape
(`encoding="array"`). A PCA preview is RGB in [0, 1]; a heat image is one channel, 1.0 standing for `scale`.
Heat-map PNGs are 8-bit grey, 255 standing for the map's `max`; arrays are the probabilities themselves.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
import torch

from .catalog import KIND_TEXT, ActivationPoint
from .heatmaps import HeatMaps, HeatMapSet
from .reduce import Preview, encode_png
from .session import Outcome

Encoding = Literal["png", "array"]


def point_dict(p: ActivationPoint) -> dict[str, Any]:
    return {
        "name": p.name,
        "kind": p.kind,
        "description": KIND_TEXT[p.kind],
        "stage": p.stage,
        "level": p.level,
        "repeat": p.repeat,
        "transformer_block": p.transformer_block,
        "block_path": p.block_path,
        "module": p.module,
        "source": p.source,
        "layout": p.layout,
        "shape": list(p.shape),
        "factor": p.factor,
        "block_output": p.block_output,
        "spatial": p.spatial,
        "used_by": list(p.used_by),
    }


def _image(values: np.ndarray, encoding: Encoding) -> dict[str, Any]:
    h, w, c = values.shape
    out: dict[str, Any] = {"height": h, "width": w, "channels": c, "encoding": encoding, "png": None, "values": None}
    if encoding == "png":
        out["png"] = base64.b64encode(encode_png(values)).decode()
    else:
        out["values"] = [round(float(v), 5) for v in values.reshape(-1)]
    return out


def preview_dict(preview: Preview, encoding: Encoding) -> dict[str, Any]:
    return {
        "kind": preview.kind,
        "explained_variance": preview.explained_variance,
        "scale": preview.scale,
        **_image(preview.values, encoding),
    }


def _map_set(s: HeatMapSet, encoding: Encoding) -> dict[str, Any]:
    maps = []
    for entry in s.maps:
        top = float(entry.max())
        if encoding == "png":
            scaled = (entry / top if top > 0 else entry).unsqueeze(-1).numpy()
            maps.append({"max": top, **_image(scaled, "png")})
        else:
            h, w = entry.shape
            values = [float(v) for v in entry.reshape(-1).tolist()]
            maps.append({"max": top, "height": h, "width": w, "channels": 1, "encoding": "array", "png": None,
                         "values": values})  # fmt: skip
    h, w = s.maps.shape[1:]
    return {"name": s.name, "layers": s.layers, "height": h, "width": w, "maps": maps}


def heatmaps_dict(hm: HeatMaps, encoding: Encoding) -> dict[str, Any]:
    return {
        "tokens": hm.tokens,
        "normalisation": (
            "softmax over the context tokens, averaged over heads (and over layers for resolutions and overall); "
            "at every pixel the entries (the prompt's tokens, then <padding> summed) add up to 1"
        ),
        "layers": [_map_set(s, encoding) for s in hm.layers],
        "resolutions": [_map_set(s, encoding) for s in hm.resolutions],
        "overall": _map_set(hm.overall, encoding) if hm.overall is not None else None,
    }


def outcome_dict(outcome: Outcome, encoding: Encoding = "png") -> dict[str, Any]:
    activations = []
    for p in outcome.points:
        r = outcome.results[p.name]
        activations.append(
            {
                "name": p.name,
                "kind": p.kind,
                "module": p.module,
                "shape": list(p.shape),
                "layout": p.layout,
                "stats": r.stats.to_dict() if r.stats is not None else None,
                "preview": preview_dict(r.preview, encoding) if r.preview is not None else None,
                "cosine_to_compare": r.cosine,
            }
        )
    return {
        "random_weights": outcome.random_weights,
        "notice": outcome.notice,
        "inputs": outcome.inputs,
        "tokens": outcome.tokens,
        "activations": activations,
        "heatmaps": heatmaps_dict(outcome.heatmaps, encoding) if outcome.heatmaps is not None else None,
        "timings": outcome.timings,
    }


def kept_tensors(outcome: Outcome) -> dict[str, torch.Tensor]:
    """The full tensors of the points kept for export, by point name."""
    return {n: r.tensor for n, r in outcome.results.items() if r.tensor is not None and n in outcome.kept}
