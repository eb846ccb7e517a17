"""The weights file given at start (`sdunet-explorer serve --weights FILE`): what it holds, and per-module weight
statistics for the details panel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.errors import ERROR_RESPONSES, ApiError
from sdunet_core.weights import WeightsFile

router = APIRouter(prefix="/api/weights", tags=["weights"], responses=ERROR_RESPONSES)


def get_weights(request: Request) -> WeightsFile:
    weights = getattr(request.app.state, "weights", None)
    if weights is None:
        raise ApiError(404, None, "no weights file was given (start the server with --weights FILE)")
    return weights


@router.get("")
def info(request: Request) -> dict[str, Any]:
    weights = get_weights(request)
    det = weights.detection
    return {
        "file": weights.path.name,
        "format": det.format,
        "prefix": det.prefix,
        "preset": det.preset,
        "config": det.config.to_dict(),
        "ldm_params": det.config.to_ldm(),
        "num_parameters": det.num_parameters,
    }


@router.get("/stats")
async def stats(request: Request, path: Annotated[str, Query(description="a module path, '' for the root")]) -> Any:
    weights = get_weights(request)
    cache: dict[str, Any] = request.app.state.weight_stats
    if path not in cache:
        if not weights.keys_under(path):
            raise ApiError(404, "path", f"no weights under module {path!r}")
        cache[path] = await run_in_threadpool(weights.stats, path)
        while len(cache) > 256:
            cache.pop(next(iter(cache)))
    return cache[path]
