"""GET /api/compare (two models side by side) and GET /api/scaling (one model across image sizes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.errors import ERROR_RESPONSES, ApiError
from app.schemas import TraceRequest
from app.settings import Settings, get_settings
from app.tracing import TraceCache, resolve
from sdunet_core.compare import Comparison, Scaling, compare_traces, scaling_point
from sdunet_core.schema import Trace

router = APIRouter(prefix="/api", tags=["analysis"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]
MAX_SIZES = 12


def _trace(
    request: Request, settings: Settings, preset: str, image_size: list[int] | None, field: str, size_field: str
) -> Trace:
    try:
        spec = resolve(TraceRequest(preset=preset, image_size=image_size), settings)
    except ApiError as exc:
        # Name the query parameter the user gave, not the internal field.
        renamed = {"preset": field, "image_size": size_field}.get(exc.field or "", exc.field)
        raise ApiError(exc.status, renamed, exc.reason) from None
    cache: TraceCache = request.app.state.trace_cache
    return Trace.model_validate_json(cache.get(spec).body)


def _size(value: int | None) -> list[int] | None:
    return [value, value] if value is not None else None


@router.get("/compare", response_model=Comparison)
async def compare(
    request: Request,
    settings: SettingsDep,
    a: Annotated[str, Query(description="first preset")],
    b: Annotated[str, Query(description="second preset")],
    image_size: Annotated[int | None, Query(ge=8, description="square image size in pixels for both")] = None,
) -> Comparison:
    ta = await run_in_threadpool(_trace, request, settings, a, _size(image_size), "a", "image_size")
    tb = await run_in_threadpool(_trace, request, settings, b, _size(image_size), "b", "image_size")
    return compare_traces(ta, tb)


@router.get("/scaling", response_model=Scaling)
async def scaling(
    request: Request,
    settings: SettingsDep,
    preset: Annotated[str, Query(description="a preset name")],
    sizes: Annotated[str, Query(description="comma-separated square image sizes in pixels")] = "256,512,768,1024",
) -> Scaling:
    try:
        values = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise ApiError(422, "sizes", f"must be comma-separated integers, got {sizes!r}") from None
    if not values:
        raise ApiError(422, "sizes", "give at least one size")
    if len(values) > MAX_SIZES:
        raise ApiError(413, "sizes", f"{len(values)} sizes is over the limit of {MAX_SIZES}")
    if any(v < 8 for v in values):
        raise ApiError(422, "sizes", f"sizes must be at least 8 pixels, got {values}")
    points = []
    for v in sorted(set(values)):
        trace = await run_in_threadpool(_trace, request, settings, preset, [v, v], "preset", "sizes")
        points.append(scaling_point(trace))
    return Scaling(preset=preset, points=points)
