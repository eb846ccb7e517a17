"""The twin's world: small pictures of coloured shapes on a coloured ground, drawn with Pillow, with their captions.

A scene has one or two objects. Each object has a colour, a shape, a size and a position; the ground has a colour.
`sample_scene(seed)` draws the scene's attributes, `render(scene)` paints it (at 4x, then averaged down, so edges
are antialiased as a photograph's would be) and returns the image with one pixel mask per object, and
`caption(scene)` says it in the grammar below. Everything follows from the seed: the same seed gives the same
scene, picture and caption on any machine.

The grammar (one object; the size, position and ground may be left out, and the picture then chooses them):
    a [small|large] <colour> <shape> [at the <top|bottom> <left|right> | in the center] [on a <ground> background]
two objects (both small; the relation says where the first is):
    a <colour> <shape> <left of|right of|above|below> a <colour> <shape> [on a <ground> background]

Why this world: 32x32 pixels is the smallest size at which a 9-pixel circle, square and triangle still differ
(their fill of the bounding box is about 0.79, 1.0 and 0.5), five colours far apart in RGB and three grounds far
from all of them keep the colour and the object/ground split unambiguous, and five positions on a 32-pixel grid
leave every object whole. The vocabulary is 27 words: small enough for a model trained on two CPU cores in an
hour to learn every word, rich enough for binding (which colour goes with which shape) to be a real question.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 32
_SCALE = 4  # drawn at 4x and averaged down: antialiased edges

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 45, 40),
    "green": (40, 170, 60),
    "blue": (45, 85, 225),
    "yellow": (240, 215, 35),
    "purple": (155, 60, 195),
}
GROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (22, 22, 22),
    "white": (236, 236, 236),
    "gray": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle")
SIZES: dict[str, float] = {"small": 9.0, "large": 15.0}  # side of the bounding box, in pixels at 32x32
POSITIONS: dict[str, tuple[float, float]] = {  # centre (x, y) in pixels at 32x32
    "top left": (9.5, 9.5),
    "top right": (22.5, 9.5),
    "bottom left": (9.5, 22.5),
    "bottom right": (22.5, 22.5),
    "center": (16.0, 16.0),
}
RELATIONS = ("left of", "right of", "above", "below")
JITTER = 1.5  # each object's centre moves up to this many pixels from its position's anchor

# How often a one-object caption leaves out its size, its position or its ground (each on its own).
OMIT = 0.1
TWO_OBJECTS = 0.4  # the share of scenes with two objects

SPECIAL = ("<pad>", "<start>", "<end>")
VOCABULARY: dict[str, tuple[str, ...]] = {
    "colours": tuple(COLOURS),
    "shapes": SHAPES,
    "sizes": tuple(SIZES),
    "positions": ("top", "bottom", "left", "right", "center"),
    "backgrounds": tuple(GROUNDS),
    "relations": ("of", "above", "below"),  # "left of" and "right of" reuse the position words
    "grammar": ("a", "at", "the", "in", "on", "background"),
}


@dataclass(frozen=True)
class Thing:
    """One object: its words, and where it is drawn (centre in pixels, side of its bounding box)."""

    colour: str
    shape: str
    size: str
    position: str  # the nearest of POSITIONS to its centre
    cx: float
    cy: float
    side: float


@dataclass(frozen=True)
class Scene:
    ground: str
    things: tuple[Thing, ...]
    relation: str | None = None  # two objects: where the first is relative to the second
    # The words a one-object caption leaves out ("size", "position", "ground").
    omitted: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return asdict(self)


def nearest_position(cx: float, cy: float) -> str:
    return min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)


def _one(rng: random.Random, ground: str) -> Scene:
    colour, shape = rng.choice(tuple(COLOURS)), rng.choice(SHAPES)
    size, position = rng.choice(tuple(SIZES)), rng.choice(tuple(POSITIONS))
    ax, ay = POSITIONS[position]
    cx, cy = ax + rng.uniform(-JITTER, JITTER), ay + rng.uniform(-JITTER, JITTER)
    omitted = tuple(word for word in ("size", "position", "ground") if rng.random() < OMIT)
    return Scene(ground, (Thing(colour, shape, size, position, cx, cy, SIZES[size]),), None, omitted)


def _two(rng: random.Random, ground: str) -> Scene:
    colours = rng.sample(tuple(COLOURS), 2)  # two colours: the reader tells the objects apart by colour too
    shapes = [rng.choice(SHAPES), rng.choice(SHAPES)]
    relation = rng.choice(RELATIONS)
    # The first object's and the second's centres along the relation's axis; the other axis is shared loosely.
    near, far = rng.uniform(7.5, 11.0), rng.uniform(21.0, 24.5)
    across = [rng.uniform(10.0, 22.0), rng.uniform(10.0, 22.0)]
    along = [near, far] if relation in ("left of", "above") else [far, near]
    things = []
    for i in range(2):
        cx, cy = (along[i], across[i]) if relation in ("left of", "right of") else (across[i], along[i])
        things.append(Thing(colours[i], shapes[i], "small", nearest_position(cx, cy), cx, cy, SIZES["small"]))
    return Scene(ground, tuple(things), relation)


def sample_scene(seed: int, two: bool | None = None) -> Scene:
    """The scene of a seed; `two` forces one (False) or two (True) objects."""
    rng = random.Random(seed)
    ground = rng.choice(tuple(GROUNDS))
    if two is None:
        two = rng.random() < TWO_OBJECTS
    return _two(rng, ground) if two else _one(rng, ground)


def caption(scene: Scene) -> str:
    """The scene in the grammar's words (see the module docstring)."""
    ground = "" if "ground" in scene.omitted else f" on a {scene.ground} background"
    if scene.relation is not None:
        a, b = scene.things
        return f"a {a.colour} {a.shape} {scene.relation} a {b.colour} {b.shape}{ground}"
    (t,) = scene.things
    size = "" if "size" in scene.omitted else f"{t.size} "
    if "position" in scene.omitted:
        where = ""
    else:
        where = " in the center" if t.position == "center" else f" at the {t.position}"
    return f"a {size}{t.colour} {t.shape}{where}{ground}"


def _outline(thing: Thing) -> list[tuple[float, float]] | tuple[float, float, float, float]:
    """The shape at 4x: a box for the circle and square, three corners for the triangle (apex up)."""
    s = _SCALE
    half = thing.side / 2
    x0, y0, x1, y1 = (thing.cx - half) * s, (thing.cy - half) * s, (thing.cx + half) * s, (thing.cy + half) * s
    if thing.shape == "triangle":
        return [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    return (x0, y0, x1, y1)


def render(scene: Scene) -> tuple[np.ndarray, list[np.ndarray]]:
    """(RGB uint8 [32, 32, 3], one boolean mask [32, 32] per object, in the scene's order)."""
    big = IMAGE_SIZE * _SCALE
    canvas = Image.new("RGB", (big, big), GROUNDS[scene.ground])
    draw = ImageDraw.Draw(canvas)
    masks = []
    for thing in scene.things:
        layer = Image.new("L", (big, big), 0)
        outline, pen = _outline(thing), ImageDraw.Draw(layer)
        if thing.shape == "circle":
            draw.ellipse(outline, fill=COLOURS[thing.colour])
            pen.ellipse(outline, fill=255)
        elif thing.shape == "square":
            draw.rectangle(outline, fill=COLOURS[thing.colour])
            pen.rectangle(outline, fill=255)
        else:
            draw.polygon(outline, fill=COLOURS[thing.colour])
            pen.polygon(outline, fill=255)
        # A pixel belongs to the object when at least half of it is covered.
        masks.append(np.asarray(layer.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)) >= 128)
    image = np.asarray(canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX), dtype=np.uint8)
    return image, masks


def example(seed: int, two: bool | None = None) -> tuple[Scene, str, np.ndarray, list[np.ndarray]]:
    """A seed's scene, its caption, its picture and its masks."""
    scene = sample_scene(seed, two)
    image, masks = render(scene)
    return scene, caption(scene), image, masks


def batch(seeds: list[int]) -> tuple[np.ndarray, list[str]]:
    """Pictures [N, 32, 32, 3] uint8 and captions of the seeds."""
    images, captions = [], []
    for seed in seeds:
        _, text, image, _ = example(seed)
        images.append(image)
        captions.append(text)
    return np.stack(images), captions


def words() -> list[str]:
    """Every word the grammar uses, in the vocabulary's order."""
    return [w for group in VOCABULARY.values() for w in group]


EXAMPLES = (
    "a large red circle at the top left on a black background",
    "a small blue square in the center on a white background",
    "a yellow triangle at the bottom right on a gray background",
    "a green circle left of a purple triangle on a black background",
    "a red square above a blue circle on a white background",
    "a purple triangle",
)
