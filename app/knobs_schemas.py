"""Request and response bodies of /api/ablation: the sweep that removes each block (or skip) in turn."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]


class AblationRequest(BaseModel):
    """Each top-level block (or each skip) of the twin's U removed in turn, over captions and seeds."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompts: list[str] = Field(
        ["a large red circle at the top left on a black background"],
        min_length=1,
        max_length=8,
        description="captions in the twin's words; every caption runs with every seed",
    )
    seeds: list[Seed] = Field([0, 1, 2, 3, 4, 5, 6, 7], min_length=1, max_length=32, description="noise seeds")
    steps: int = Field(20, ge=1, le=100, description="DDIM steps per picture")
    guidance: float = Field(3.0, ge=0, le=20, description="classifier-free guidance scale")
    what: Literal["blocks", "skips"] = Field("blocks", description="ablate blocks (output x0) or skips (zeros)")


class Effect(BaseModel):
    target: str = Field(description="the block removed (or the output block whose skip was cut)")
    ssim_drop: float = Field(description="mean 1 - SSIM against the baseline")
    mse: float = Field(description="mean squared error against the baseline, pixel values 0..1")
    verdict_change: float = Field(description="share of pictures whose reading changed")


class AblationResult(BaseModel):
    what: str
    pictures: int
    steps: int
    effects: list[Effect]
    ranking: list[str] = Field(description="targets by SSIM drop, largest first")


class AblationJob(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    progress: dict[str, Any] = Field(description="{done, total}: the baseline, then one per target")
    error: str | None = None
    result: AblationResult | None = None
