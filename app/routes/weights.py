"""The weights file given at start (`sdunet-explorer serve --weights FILE`): what it holds, and per-module weight
statistics for the details panel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.deps import WeightsDep
from app.errors import ERROR_RESPONSES, ApiError, quote

router = APIRouter(prefix="/api/weights", tags=["weights"], responses=ERROR_RESPONSES)


@router.get("")
def info(weights: WeightsDep) -> dict[str, Any]:
    det = weights.detection
    return {
        "file": weights.path.name,
        "format": det.format,
        "prefix": det.prefix,
        "preset": det.preset,
        "config": det.config.to_dict(),
        "ldm_params": det.config.to_ldm_or_none(),
        "num_parameters": det.num_parameters,
    }


@router.get("/stats")
async def stats(
    request: Request,
    weights: WeightsDep,
    path: Annotated[str, Query(max_length=500, description="a module path, '' for the root")],
) -> Any:
    cache: dict[str, Any] = request.app.state.weight_stats
    if path not in cache:
        if not weights.keys_under(path):
            raise ApiError(404, "path", f"no weights under module {quote(path)}")
        cache[path] = await run_in_threadpool(weights.stats, path)
        while len(cache) > 256:
            cache.pop(next(iter(cache)))
    return cache[path]
