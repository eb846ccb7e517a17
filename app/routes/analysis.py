"""GET /api/compare (two models side by side) and GET /api/scaling (one model across image sizes)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.deps import SettingsDep, StoreDep
from app.errors import ERROR_RESPONSES, ApiError, quote
from app.resolve import resolve
from app.schemas import TraceRequest
from app.settings import Settings
from app.tracing import TraceSpec
from sdunet_core.compare import compare_traces, scaling_point

router = APIRouter(prefix="/api", tags=["analysis"], responses=ERROR_RESPONSES)
MAX_SIZES = 12


def _spec(settings: Settings, preset: str, image_size: list[int] | None, field: str, size_field: str) -> TraceSpec:
    try:
        return resolve(TraceRequest(preset=preset, image_size=image_size), settings)
    except ApiError as exc:
        # Name the query parameter the user gave, not the internal field.
        renamed = {"preset": field, "image_size": size_field}.get(exc.field or "", exc.field)
        raise ApiError(exc.status, renamed, exc.reason) from None


def _size(value: int | None) -> list[int] | None:
    return [value, value] if value is not None else None


@router.get("/compare")
async def compare(
    settings: SettingsDep,
    store: StoreDep,
    a: Annotated[str, Query(max_length=64, description="first preset")],
    b: Annotated[str, Query(max_length=64, description="second preset")],
    image_size: Annotated[int | None, Query(ge=8, le=2**20, description="square image size in pixels for both")] = None,
) -> dict[str, Any]:
    specs = [_spec(settings, name, _size(image_size), f, "image_size") for name, f in ((a, "a"), (b, "b"))]
    # Both traces at once: one per worker.
    ta, tb = await asyncio.gather(*(store.get(s) for s in specs))
    return compare_traces(json.loads(ta.body), json.loads(tb.body))


@router.get("/scaling")
async def scaling(
    settings: SettingsDep,
    store: StoreDep,
    preset: Annotated[str, Query(max_length=64, description="a preset name")],
    sizes: Annotated[
        str, Query(max_length=200, description="comma-separated square image sizes in pixels")
    ] = "256,512,768,1024",
) -> dict[str, Any]:
    try:
        values = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise ApiError(422, "sizes", f"must be comma-separated integers, got {quote(sizes)}") from None
    if not values:
        raise ApiError(422, "sizes", "give at least one size")
    if len(values) > MAX_SIZES:
        raise ApiError(413, "sizes", f"{len(values)} sizes is over the limit of {MAX_SIZES}")
    if any(v < 8 for v in values):
        raise ApiError(422, "sizes", f"sizes must be at least 8 pixels, got {values}")
    # Every size at once, spread over the workers, the largest first (it takes longest); the points need only
    # the totals and the input of each trace.
    specs = [_spec(settings, preset, [v, v], "preset", "sizes") for v in sorted(set(values), reverse=True)]
    traces = await asyncio.gather(*(store.get(s) for s in specs))
    return {"preset": preset, "points": [scaling_point(t.summary()) for t in reversed(traces)]}
