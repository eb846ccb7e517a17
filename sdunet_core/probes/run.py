"""A probe run from request to result: check the request, draw the images, then per timestep one forward per image
(every chosen point hooked at once) and one linear probe per point and target.

The pictures are the twin's world (it gives every picture's ground truth). The model probed is the twin
(`model="twin"`, the default) or the server's checkpoint (`model="checkpoint"`: the pictures through its VAE, see
`checkpoint`). The twin's shipped weights are its default; seeded random weights (the same architecture,
PyTorch's default initialisation) are run only when asked for with `weights="random"`, and the result says so: a
probe on random weights measures what the architecture alone passes on (the input's colours survive a random
network), not what a model learned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..activations.catalog import ActivationPoint, catalog, resolve_points
from ..activations.conditioning import InputError
from ..presets import load_preset
from ..twin.model import PRESET, Twin, shipped, weights_shipped
from ..twin.sampling import one_thread
from ..twin.text import MAX_TOKENS
from ..twin.world import IMAGE_SIZE
from . import checkpoint as ckpt
from . import linear
from .features import Pooled, pooled_features
from .world import PROBE_SEED_BASE, TARGETS, TEST_EVERY, ProbeSet, probe_set

MIN_IMAGES = 40  # ten held-out images at least
MAX_IMAGES = 2048  # past this a request is refused with 413 (a run is minutes, not hours, on two cores)
MAX_TIMESTEPS = 20
DEFAULT_POINTS = ["@outputs"]
DEFAULT_TIMESTEPS = [250]
RANDOM_WEIGHTS_SEED = 0

Progress = Callable[[str, int, int], None]  # (phase, done, total)


class Cancelled(Exception):
    """The run was cancelled between two of its steps."""


@dataclass
class ProbeSpec:
    points: list[str] = field(default_factory=lambda: list(DEFAULT_POINTS))
    targets: list[str] = field(default_factory=lambda: list(TARGETS))
    timesteps: list[int] = field(default_factory=lambda: list(DEFAULT_TIMESTEPS))
    n_images: int = 256
    preset: str = PRESET
    weights: str = "shipped"  # or "random", only when asked for
    model: str = "twin"  # or "checkpoint": the file below
    checkpoint: str | None = None  # the server's checkpoint, where it has one


def twin_points() -> tuple[ActivationPoint, ...]:
    """The twin's catalog at its picture size and context length (the same one the Activations view uses)."""
    return catalog(load_preset(PRESET).config, (IMAGE_SIZE, IMAGE_SIZE), MAX_TOKENS)


def check(spec: ProbeSpec) -> list[ActivationPoint]:
    """The request's points, resolved; InputError naming the field for anything that cannot run.
    (n_images over the model's bound is an InputError on n_images too; the API answers it with 413.)"""
    if spec.model == "checkpoint":
        if spec.checkpoint is None:
            raise InputError(
                "model",
                "this server has no checkpoint to probe: start it with `serve --weights FILE` (a single-file SD "
                "checkpoint with its VAE and text encoder); the twin is probed without one",
            )
        if spec.weights != "shipped":
            raise InputError("weights", "'random' applies to the twin; a checkpoint is probed with its own weights")
        ckpt.check_file(spec.checkpoint)
        limit, known = ckpt.MAX_IMAGES, lambda: ckpt.points_of(spec.checkpoint)
    elif spec.model == "twin":
        check_twin(spec)
        limit, known = MAX_IMAGES, twin_points
    else:
        raise InputError("model", f"{spec.model!r}: use 'twin' or 'checkpoint'")
    if not MIN_IMAGES <= spec.n_images <= limit:
        raise InputError("n_images", f"{spec.n_images}: choose {MIN_IMAGES} to {limit} images for the {spec.model}")
    unknown = [t for t in spec.targets if t not in TARGETS]
    if unknown or not spec.targets:
        raise InputError("targets", f"unknown target {unknown[0]!r}" if unknown else "choose at least one target")
    if not spec.timesteps or len(spec.timesteps) > MAX_TIMESTEPS:
        raise InputError("timesteps", f"choose 1 to {MAX_TIMESTEPS} timesteps")
    for t in spec.timesteps:
        if not 0 <= t <= 999:
            raise InputError("timesteps", f"{t} is out of range: SD's schedule has timesteps 0 to 999")
    try:
        points = resolve_points(known(), spec.points)
    except KeyError as exc:
        raise InputError("points", f"unknown point {exc.args[0]!r}; see the catalog for the names") from None
    if not points:
        raise InputError("points", "choose at least one point (a name from the catalog or a group such as @all)")
    return points


def check_twin(spec: ProbeSpec) -> None:
    if spec.preset != PRESET:
        raise InputError(
            "preset",
            f"only the twin can be probed: its drawn world gives every picture's ground truth; {spec.preset!r} has "
            "no such world here",
        )
    if spec.weights not in ("shipped", "random"):
        raise InputError("weights", f"{spec.weights!r}: use 'shipped' (the trained twin) or 'random'")
    if spec.weights == "shipped" and not weights_shipped():
        raise InputError(
            "weights",
            "the twin's trained weights are not installed, and a probe on random weights measures the architecture, "
            "not what a model learned; ask for weights='random' to run it anyway",
        )


def model_for(weights: str) -> Twin:
    if weights == "shipped":
        return shipped().model
    torch.manual_seed(RANDOM_WEIGHTS_SEED)
    return Twin().eval()


def recipe(spec: ProbeSpec) -> dict[str, Any]:
    out = {
        "images": f"one-object scenes of the twin's world, seeds {PROBE_SEED_BASE} to "
        f"{PROBE_SEED_BASE + spec.n_images - 1} (never trained on)",
        "split": f"by seed: seeds divisible by {TEST_EVERY} are held out, the rest train the probe",
        "input": "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (SD's schedule, eps from the image's seed), "
        "the empty caption",
        "pooling": {
            "global": "mean over the point's pixels (for attention maps: the attention each key receives, averaged "
            "over heads and query pixels; cross-attention k and v: mean over the text tokens)",
            "mask": "the same mean weighted by the object's mask at the point's resolution",
            "per_target": {t: how for t, (_, how) in TARGETS.items()},
        },
        **linear.recipe(),
    }
    if spec.model == "checkpoint":
        out.update(ckpt.recipe_input(spec.checkpoint))  # the pictures through the checkpoint's VAE
    return out


def run(spec: ProbeSpec, progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> dict:
    """Probe every chosen point for every target at every timestep; the result as JSON-ready data."""
    points = check(spec)
    started = time.perf_counter()
    data = probe_set(spec.n_images)
    fits = len(points) * len(spec.targets)
    encoding = spec.n_images if spec.model == "checkpoint" else 0  # a checkpoint encodes each picture once
    total = encoding + len(spec.timesteps) * (spec.n_images + fits)
    done = 0

    def step(phase: str, n: int) -> None:
        nonlocal done
        if cancelled is not None and cancelled():
            raise Cancelled
        done += n
        if progress is not None:
            progress(phase, done, total)

    rows: list[dict[str, Any]] = []
    forward_s = fit_s = 0.0
    with one_thread():
        if spec.model == "checkpoint":
            latents = ckpt.encode(spec.checkpoint, data, progress=lambda n: step("VAE encode", n))
            features_at = partial(ckpt.pooled, spec.checkpoint, points, latents, data)
        else:
            features_at = twin_features(spec, points, data)
        for t in spec.timesteps:
            t0 = time.perf_counter()
            pooled = features_at(t, progress=lambda n, t=t: step(f"forward t={t}", n))
            t1 = time.perf_counter()
            for p in points:
                for target in spec.targets:
                    classes, how = TARGETS[target]
                    x = (pooled.mask if how == "mask" else pooled.glob)[p.name]
                    score = linear.probe(x, data.labels[target], data.test, len(classes))
                    rows.append({"point": p.name, "target": target, "t": t, **linear.as_dict(score), "pooling": how})
                    step(f"probes t={t}", 1)
            forward_s += t1 - t0
            fit_s += time.perf_counter() - t1
    on_checkpoint = spec.model == "checkpoint"
    return {
        "model": spec.model,
        "checkpoint": Path(spec.checkpoint).name if on_checkpoint else None,
        "preset": None if on_checkpoint else spec.preset,
        "weights": "checkpoint" if on_checkpoint else spec.weights,
        "random_weights": spec.weights == "random",
        "n_images": spec.n_images,
        "targets": list(spec.targets),
        "timesteps": list(spec.timesteps),
        "points": [point_info(p) for p in points],
        "recipe": recipe(spec),
        "rows": rows,
        "best": best(rows),
        "timings": {"forward_s": forward_s, "fit_s": fit_s, "total_s": time.perf_counter() - started},
    }


def twin_features(spec: ProbeSpec, points: list[ActivationPoint], data: ProbeSet) -> Callable[..., Pooled]:
    """features(t, progress=...) of the twin (shipped or random weights) for the run's pictures."""
    return partial(pooled_features, model_for(spec.weights), points, data.images, data.masks, data.seeds)


def point_info(p: ActivationPoint) -> dict[str, Any]:
    return {"name": p.name, "kind": p.kind, "stage": p.stage, "level": p.level, "block_path": p.block_path,
            "module": p.module, "layout": p.layout}  # fmt: skip


def best(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best point per target and timestep (ties: the first in forward order)."""
    top: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["target"], r["t"])
        if key not in top or r["accuracy"] > top[key]["accuracy"]:
            top[key] = r
    return list(top.values())


def as_csv(result: dict) -> str:
    """The rows as CSV (one header line; the recipe stays in the JSON)."""
    cols = ["point", "target", "t", "accuracy", "control_accuracy", "chance", "n_train", "n_test", "pooling"]
    lines = [",".join(cols)]
    for r in result["rows"]:
        lines.append(",".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    return "\n".join(lines) + "\n"


def chance_gap(rows: list[dict[str, Any]]) -> float:
    """The largest distance of a shuffled-label control from chance (the gate: within 0.10)."""
    return float(max(abs(r["control_accuracy"] - r["chance"]) for r in rows)) if rows else 0.0
