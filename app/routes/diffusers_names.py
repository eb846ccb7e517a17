"""POST /api/diffusers-names: every module's name in diffusers' UNet2DConditionModel (or, for a ControlNet preset,
its ControlNetModel), for the details panel."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import PoolDep, SettingsDep
from app.errors import ERROR_RESPONSES
from app.resolve import resolve
from app.schemas.trace import TraceRequest

router = APIRouter(prefix="/api", tags=["names"], responses=ERROR_RESPONSES)


@router.post("/diffusers-names")
async def diffusers_names(body: TraceRequest, settings: SettingsDep, pool: PoolDep) -> dict[str, Any]:
    """Our module path -> the diffusers module path, for modules that hold weights (null where diffusers has no
    one-to-one module: parameter-free layers like SiLU, Dropout or an identity skip are arranged differently)."""
    # Resolving applies the limits on the model before a worker builds it (on the meta device, under a time limit).
    spec = await run_in_threadpool(resolve, body, settings, control=True)
    # A ControlNet preset: the names in diffusers' ControlNetModel.
    control = spec.control.to_dict() if spec.control is not None else None
    names = pool.submit(
        "diffusers_names",
        spec.config.to_dict(),
        control,
        time_limit_s=settings.trace_time_limit_s,
        what="naming the modules",
    )
    return await asyncio.wrap_future(names)
