"""The probe's images: one-object scenes of the twin's world with their ground truth, and the train/test split.

Seeds start at PROBE_SEED_BASE: below the training seeds (train.TRAIN_SEED_BASE) and apart from the gates'
(evaluate.EVAL_SEED_BASE), so a probe never reads a picture the model was trained on.

Why one-object scenes: every attribute is then drawn uniformly (3 shapes, 5 colours, 2 sizes, 5 positions,
3 grounds), so chance is about 1/k for every target and a shuffled-label control has a level to sit at. Two-object
scenes are all small and keep their objects apart, which would skew size and position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..twin import world

PROBE_SEED_BASE = 700_000
TEST_EVERY = 4  # the images whose seed is a multiple of 4 are held out (a quarter), the rest train the probe

# Each target: its classes, and whether it is read from the object (masked pool) or the whole picture.
TARGETS: dict[str, tuple[tuple[str, ...], str]] = {
    "shape": (world.SHAPES, "mask"),
    "colour": (tuple(world.COLOURS), "mask"),
    "size": (tuple(world.SIZES), "mask"),
    "position": (tuple(world.POSITIONS), "mask"),
    "background": (tuple(world.GROUNDS), "global"),
}


@dataclass
class ProbeSet:
    seeds: list[int]
    images: np.ndarray  # [N, 32, 32, 3] uint8
    masks: np.ndarray  # [N, 32, 32] bool, the object's pixels
    labels: dict[str, np.ndarray]  # target -> class index per image
    test: np.ndarray  # [N] bool, held out

    @property
    def n(self) -> int:
        return len(self.seeds)


def probe_set(n_images: int, seed_base: int = PROBE_SEED_BASE) -> ProbeSet:
    """`n_images` one-object scenes from `seed_base` on, with their labels and the split by seed."""
    seeds = [seed_base + i for i in range(n_images)]
    images, masks = [], []
    labels: dict[str, list[int]] = {t: [] for t in TARGETS}
    for seed in seeds:
        scene, _, image, (mask,) = world.example(seed, two=False)
        thing = scene.things[0]
        images.append(image)
        masks.append(mask)
        values = {"shape": thing.shape, "colour": thing.colour, "size": thing.size, "position": thing.position,
                  "background": scene.ground}  # fmt: skip
        for target, (classes, _) in TARGETS.items():
            labels[target].append(classes.index(values[target]))
    test = np.array([s % TEST_EVERY == 0 for s in seeds])
    return ProbeSet(seeds, np.stack(images), np.stack(masks), {t: np.array(v) for t, v in labels.items()}, test)
