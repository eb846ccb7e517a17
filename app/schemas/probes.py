"""Request and response bodies of /api/probes and /api/correspondence: every field typed for /openapi.json."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdunet_core.probes.checkpoint import IMAGE_SIZE as CHECKPOINT_IMAGE_SIZE
from sdunet_core.probes.checkpoint import MAX_IMAGES as CHECKPOINT_MAX_IMAGES
from sdunet_core.probes.correspondence import DEFAULT_T, MAX_PAIRS


class ProbeRequest(BaseModel):
    """Linear probes of the chosen points for the chosen targets on N pictures of the twin's world."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: Literal["twin", "checkpoint"] = Field(
        "twin",
        description="the twin, or the server's checkpoint (started with --weights FILE; the pictures go through "
        f"its VAE at {CHECKPOINT_IMAGE_SIZE}x{CHECKPOINT_IMAGE_SIZE} px; at most {CHECKPOINT_MAX_IMAGES} pictures)",
    )

    preset: str = Field("twin", max_length=80, description="the twin's preset (its world gives the ground truth)")
    weights: Literal["shipped", "random"] = Field(
        "shipped", description="the trained weights, or seeded random ones (only when asked, and marked so)"
    )
    targets: list[str] = Field(
        ["shape", "colour", "size", "position", "background"], max_length=5, description="what each probe predicts"
    )
    points: list[str] = Field(["@outputs"], max_length=200, description="catalog names or groups (@all, @outputs)")
    n_images: int = Field(256, description="pictures drawn (a quarter held out by seed); at most 2048 (else 413)")
    timestep: int | None = Field(None, description="one timestep (or give timesteps)")
    timesteps: list[int] | None = Field(None, max_length=50, description="a sweep; default [250]")


class ProbeModel(BaseModel):
    """A model this server can probe."""

    model: Literal["twin", "checkpoint"]
    file: str | None = Field(description="the checkpoint's file name")
    max_images: int = Field(description="pictures per run at most (more: 413)")
    image_size: int = Field(description="pixels per side the model sees the world's 32x32 pictures at")
    usable: bool
    reason: str | None = Field(description="why the file cannot be probed, when it cannot")


class ProbeRow(BaseModel):
    point: str
    target: str
    t: int
    accuracy: float = Field(description="balanced accuracy on the held-out pictures")
    control_accuracy: float = Field(description="the same probe on shuffled labels (should sit near chance)")
    chance: float = Field(description="1/k for k classes")
    n_train: int
    n_test: int
    pooling: Literal["mask", "global"]


class ProbeResult(BaseModel):
    model: Literal["twin", "checkpoint"]
    checkpoint: str | None = Field(description="the checkpoint's file name when it was probed")
    preset: str | None = Field(description="the twin's preset (null for a checkpoint)")
    weights: str = Field(description="'shipped' or 'random' (the twin), 'checkpoint'")
    random_weights: bool
    n_images: int
    targets: list[str]
    timesteps: list[int]
    points: list[dict[str, Any]]
    recipe: dict[str, Any]
    rows: list[ProbeRow]
    best: list[ProbeRow]
    timings: dict[str, float]


class PCKRow(BaseModel):
    point: str
    t: int
    pck: float = Field(description="share of pairs whose match lies within radius_px of the target's keypoint")
    n_pairs: int
    radius_px: float
    chance: float = Field(description="share of a target's pixels within that radius of its keypoint")


class PCKResult(BaseModel):
    alpha: float
    keypoints: str
    rows: list[PCKRow]


class ProbeJob(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: dict[str, Any] = Field(description="{phase, done, total}")
    error: str | None = None
    result: ProbeResult | PCKResult | None = Field(None, description="a probe run's result, or a PCK run's")


class CorrespondenceRequest(BaseModel):
    """The pixel of the target picture most like pixel (x, y) of the source picture, by one point's features."""

    model_config = ConfigDict(extra="forbid", strict=True)

    point: str = Field(max_length=120, description="a catalog point with pixels")
    t: int = Field(DEFAULT_T, ge=0, le=999, description="timestep the pictures are noised to (DIFT: 261)")
    source_seed: int = Field(710_000, ge=0, lt=1_000_000, description="the source picture's seed (a one-object scene)")
    target_seed: int = Field(710_001, ge=0, lt=1_000_000, description="the target picture's seed")
    x: int = Field(16, description="source pixel column, 0-31")
    y: int = Field(16, description="source pixel row, 0-31")


class PCKRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    points: list[str] = Field(["@outputs"], max_length=200)
    t: int = Field(DEFAULT_T, ge=0, le=999)
    n_pairs: int = Field(32, description=f"generated pairs, 1 to {MAX_PAIRS}")
