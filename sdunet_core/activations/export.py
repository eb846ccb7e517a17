"""Chosen activations of one or more images as one `.safetensors` file.

Each point is one tensor named after it (the file sorts its tensors; `points` in the metadata keeps the forward
order), the images stacked on the first axis in the order given (every capture
runs at batch 1, so a point of shape [1, ...] becomes [images, ...]). The file's metadata says what was run:
`format` ("sdunet-explorer activations"), `points`, `modules` (point -> module path, JSON), `images`, `timestep`,
`prompt`, `seed`, `random_weights`, `latent_source`, `context_source`, `sample_size`.
"""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from .conditioning import InputError
from .session import CaptureSpec, Explorer

FORMAT = "sdunet-explorer activations"


def export_activations(
    explorer: Explorer, spec: CaptureSpec, images: list[tuple[str, bytes | torch.Tensor | None]]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) for `spec.keep` at each of `images` ((name, image or None for a seeded latent))."""
    per_point: dict[str, list[torch.Tensor]] = {}
    outcome = None
    for index, (label, image) in enumerate(images):
        try:
            outcome = explorer.run(replace(spec, image=image, points=[], previews=False, compare_timestep=None))
        except InputError as exc:
            if exc.field != "image" or not label.startswith("images["):
                raise
            raise InputError(f"images.{index}", exc.reason) from None  # which of the images, as the API names it
        for name in outcome.kept:
            per_point.setdefault(name, []).append(outcome.results[name].tensor)
    assert outcome is not None
    order = [p.name for p in outcome.points if p.name in per_point]  # forward order, as in the catalog
    tensors = {name: torch.cat(per_point[name]).contiguous() for name in order}
    modules = {p.name: p.module for p in outcome.points if p.name in tensors}
    metadata = {
        "format": FORMAT,
        "points": json.dumps(list(tensors)),
        "modules": json.dumps(modules),
        "images": json.dumps([name for name, _ in images]),
        "timestep": str(spec.timestep),
        "prompt": spec.prompt,
        "seed": str(spec.seed),
        "random_weights": json.dumps(outcome.random_weights),
        "latent_source": outcome.inputs["latent_source"],
        "context_source": outcome.inputs["context_source"],
        "sample_size": json.dumps(outcome.inputs["sample_size"]),
    }
    return tensors, metadata


def to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata=metadata)
