"""GET /api/compare (two models side by side) and GET /api/scaling (one model across image sizes)."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from app.deps import PoolDep, SettingsDep, StoreDep
from app.errors import ERROR_RESPONSES, ApiError, quote
from app.resolve import resolve
from app.schemas.trace import TraceRequest
from app.settings import Settings
from app.tracing import TraceSpec
from sdunet_core import PRESETS
from sdunet_core.schema import Totals, Trace, TraceInput
from sdunet_core.tracer.compare import Comparison, Scaling, ScalingPoint, compare_traces, scaling_point

router = APIRouter(prefix="/api", tags=["analysis"], responses=ERROR_RESPONSES)
MAX_SIZES = 12


def _spec(settings: Settings, preset: str, image_size: list[int] | None, field: str, size_field: str) -> TraceSpec:
    try:
        return resolve(TraceRequest(preset=preset, image_size=image_size), settings)
    except ValidationError as exc:  # a size past the request model's own bounds (sizes=1048577)
        error = exc.errors()[0]
        renamed = {"preset": field, "image_size": size_field}.get(str(error["loc"][0]), size_field)
        raise ApiError(422, renamed, f"{quote(image_size)}: {error['msg']}") from None
    except ApiError as exc:
        # Name the query parameter the user gave, not the internal field.
        renamed = {"preset": field, "image_size": size_field}.get(exc.field or "", exc.field)
        raise ApiError(exc.status, renamed, exc.reason) from None


def _size(value: int | None) -> list[int] | None:
    return [value, value] if value is not None else None


@router.get("/compare", response_model=Comparison)
async def compare(
    settings: SettingsDep,
    store: StoreDep,
    b: Annotated[str, Query(max_length=64, description="second preset (a variant, read against a)")],
    a: Annotated[
        str | None, Query(max_length=64, description="first preset; by default b's parent when b is a variant")
    ] = None,
    image_size: Annotated[int | None, Query(ge=8, le=2**20, description="square image size in pixels for both")] = None,
) -> Response:
    if a is None:
        parent = PRESETS[b].variant_of if b in PRESETS else None
        if parent is None:
            raise ApiError(422, "a", f"{quote(b)} is not a variant of another preset; give a")
        a = parent
    specs = [_spec(settings, name, _size(image_size), f, "image_size") for name, f in ((a, "a"), (b, "b"))]
    # Both traces at once: one per worker.
    ta, tb = await asyncio.gather(*(store.get(s) for s in specs))
    key = (ta.etag, tb.etag)  # content hashes: the same pair of traces always compares the same
    body = _COMPARED.get(key)
    if body is None:
        # Parsing two traces and comparing them takes tens of milliseconds of CPU: never on the event loop, where
        # every other request (health, cached traces) would wait behind it.
        body = await run_in_threadpool(_compare_json, ta.body, tb.body)
        _COMPARED.put(key, body)
    return Response(body, media_type="application/json")


def _compare_json(a: bytes, b: bytes) -> bytes:
    comparison = compare_traces(Trace.model_validate_json(a), Trace.model_validate_json(b))
    return comparison.model_dump_json().encode()


class _Answers:
    """The last few comparisons' JSON by their traces' ETags (a comparison is a few tens of kB)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple[str, str], body: bytes) -> None:
        with self._lock:
            self._items[key] = body
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_COMPARED = _Answers(64)


@router.get("/scaling", response_model=Scaling)
async def scaling(
    settings: SettingsDep,
    store: StoreDep,
    pool: PoolDep,
    preset: Annotated[str, Query(max_length=64, description="a preset name")],
    sizes: Annotated[
        str, Query(max_length=200, description="comma-separated square image sizes in pixels")
    ] = "256,512,768,1024",
) -> Scaling:
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
    specs = [_spec(settings, preset, [v, v], "preset", "sizes") for v in sorted(set(values))]
    points: dict[tuple[int, ...], ScalingPoint] = {}
    for spec in specs:  # sizes traced already answer from the store
        if (item := store.peek(spec)) is not None:
            points[spec.sample_size] = scaling_point(TraceInput(**item.input), Totals(**item.totals))
    missing = [s for s in specs if s.sample_size not in points]
    # The rest as whole-model figures only (sdunet_core.tracer.trace.trace_totals: one model, built once per worker),
    # the sizes dealt over the workers largest first, so that both cores work.
    groups = [missing[::-1][i :: pool.size] for i in range(pool.size)]
    first = specs[0]
    args = (first.preset, first.config.to_dict())
    futures = [
        pool.submit("totals", *args, [s.sample_size for s in g], first.batch, first.context_tokens,
                    time_limit_s=settings.trace_time_limit_s, what="the scaling sweep")
        for g in groups if g
    ]  # fmt: skip
    for result in await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)):
        for inp, totals in result:
            point = scaling_point(TraceInput(**inp), Totals(**totals))
            points[tuple(point.sample_size)] = point
    return Scaling(preset=preset, points=[points[s.sample_size] for s in specs])
