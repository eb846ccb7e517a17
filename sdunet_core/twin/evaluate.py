"""The twin's gates, measured: what the attribute reader finds in generated pictures, and where words attend.

- `fidelity`: captions drawn from the grammar with seeds the training never used (EVAL_SEED_BASE and up), one
  picture each (the caption's seed is the noise's seed), read back by `reader.read`. A stated attribute is right
  when an object the reader finds has it (one-object captions: the largest object); a two-object caption is
  right when both objects are found with their colour and shape and the relation holds between them.
- `unconditional`: pictures for the empty caption; each should be one or two objects on a ground.
- `heat_iou`: the Activations view's word heat maps (head- and layer-averaged cross-attention, `heatmaps.build`)
  for pictures of the world noised to a timestep, captioned with their own caption: for the object's shape word,
  the map upsampled to 32x32 and cut at half its maximum, against the object's mask (IoU), and the mean of the
  shape word's map inside the mask against the background word's there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import reader, world
from .model import Twin
from .sampling import generate_many, to_uint8

EVAL_SEED_BASE = 500_000  # below the training seeds (train.TRAIN_SEED_BASE) and apart from the tests' small seeds
HEAT_THRESHOLD = 0.5  # a pixel is in a word's region where its map is at least half the map's maximum


@dataclass
class Fidelity:
    n: int
    colour: float
    shape: float
    size: float
    position: float
    ground: float
    judged: dict[str, int]  # how many captions stated each attribute


def _pictures(model: Twin, captions: list[str], seeds: list[int], steps: int, guidance: float) -> list[np.ndarray]:
    out = []
    for i in range(0, len(captions), 50):  # batches of 50 pictures (100 UNet rows with guidance)
        x = generate_many(model, captions[i : i + 50], seeds[i : i + 50], steps=steps, guidance=guidance)
        out.extend(to_uint8(x[j : j + 1]) for j in range(x.shape[0]))
    return out


def fidelity(model: Twin, n: int = 100, steps: int = 50, guidance: float = 3.0, offset: int = 0) -> Fidelity:
    seeds = [EVAL_SEED_BASE + offset + i for i in range(n)]
    scenes = [world.sample_scene(s, two=False) for s in seeds]
    captions = [world.caption(s) for s in scenes]
    right = dict.fromkeys(("colour", "shape", "size", "position", "ground"), 0)
    judged = dict.fromkeys(right, 0)
    for scene, picture in zip(scenes, _pictures(model, captions, seeds, steps, guidance), strict=True):
        seen = reader.read(picture)
        thing = scene.things[0]
        stated = {"colour": True, "shape": True, "size": "size" not in scene.omitted}
        stated |= {"position": "position" not in scene.omitted, "ground": "ground" not in scene.omitted}
        first = seen.objects[0] if seen.objects else None
        found = {
            "colour": first is not None and first.colour == thing.colour,
            "shape": first is not None and first.shape == thing.shape,
            "size": first is not None and first.size == thing.size,
            "position": first is not None and first.position == thing.position,
            "ground": seen.ground == scene.ground,
        }
        for key, said in stated.items():
            if said:
                judged[key] += 1
                right[key] += found[key]
    rate = {k: right[k] / max(1, judged[k]) for k in right}
    return Fidelity(n, **rate, judged=judged)


def two_objects(model: Twin, n: int = 100, steps: int = 50, guidance: float = 3.0) -> dict[str, float]:
    """Shares of two-object captions with both objects right, and with the relation right too."""
    seeds = [EVAL_SEED_BASE + 10_000 + i for i in range(n)]
    scenes = [world.sample_scene(s, two=True) for s in seeds]
    both = with_relation = 0
    for scene, picture in zip(scenes, _pictures(model, [world.caption(s) for s in scenes], seeds, steps, guidance),
                              strict=True):  # fmt: skip
        objects = reader.read(picture).objects
        matched = []
        for thing in scene.things:
            hit = next((o for o in objects if o.colour == thing.colour and o.shape == thing.shape), None)
            matched.append(hit)
        if all(matched):
            both += 1
            with_relation += reader.relation(matched[0], matched[1]) == scene.relation  # type: ignore[arg-type]
    return {"n": n, "both_right": both / n, "both_and_relation": with_relation / n}


def unconditional(model: Twin, n: int = 100, steps: int = 50) -> float:
    """The share of pictures for the empty caption with one or two objects on a ground."""
    seeds = [EVAL_SEED_BASE + 20_000 + i for i in range(n)]
    pictures = _pictures(model, [""] * n, seeds, steps, guidance=1.0)
    return sum(1 <= len(reader.read(p).objects) <= 2 for p in pictures) / n


@dataclass
class HeatScore:
    n: int
    mean_iou: float  # the shape word's region against the object's mask
    shape_beats_background: float  # share of pictures where the shape word's map inside the mask is higher
    colour_iou: float  # the same for the colour word
    colour_beats_background: float


def heat_iou(n: int = 40, timestep: int = 300) -> HeatScore:
    """Word heat maps of the shipped twin (through the Activations view's capture) against the objects' masks."""
    from ..activations.session import CaptureSpec, Explorer

    explorer = Explorer.twin()
    ious: dict[str, list[float]] = {"shape": [], "colour": []}
    beats = {"shape": 0, "colour": 0}
    for i in range(n):
        seed = EVAL_SEED_BASE + 30_000 + i
        scene, text, image, masks = world.example(seed, two=False)
        if "ground" in scene.omitted:  # the background word is the comparison
            text = f"{text} on a {scene.ground} background"
        picture = torch.from_numpy(image).permute(2, 0, 1).float() / 255
        out = explorer.run(CaptureSpec(["@cross-maps"], timestep, prompt=text, seed=seed, image=picture,
                                       sample_size=(world.IMAGE_SIZE, world.IMAGE_SIZE), previews=False))  # fmt: skip
        assert out.heatmaps is not None and out.heatmaps.overall is not None
        maps = F.interpolate(out.heatmaps.overall.maps[None], size=image.shape[:2], mode="bilinear")[0]
        texts = [t["text"] for t in out.heatmaps.tokens]
        ground_map = maps[texts.index("background")]
        mask = torch.from_numpy(masks[0])
        for role, word in (("shape", scene.things[0].shape), ("colour", scene.things[0].colour)):
            word_map = maps[texts.index(word)]
            region = word_map >= HEAT_THRESHOLD * word_map.max()
            ious[role].append(float((region & mask).sum() / (region | mask).sum()))
            beats[role] += float(word_map[mask].mean()) > float(ground_map[mask].mean())
    return HeatScore(n, float(np.mean(ious["shape"])), beats["shape"] / n, float(np.mean(ious["colour"])),
                     beats["colour"] / n)  # fmt: skip
