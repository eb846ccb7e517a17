"""POST /api/names (every block and module in every naming scheme) and /api/names/block-weights (a block-weight
spec resolved to each block's weight). Both take the model as /api/trace does: preset, config, ldm_params or
diffusers_config.

The names table builds the model on the meta device: in a worker process, like every model build. The block
weights need the plan alone. A bad spec is a 422 on the field `spec` that says what is wrong and which lengths this
model accepts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import PoolDep, SettingsDep
from app.errors import ERROR_RESPONSES
from app.resolve import resolve
from app.schemas.names import BlockWeights, BlockWeightsRequest, NamesTable
from app.schemas.trace import TraceRequest
from sdunet_core.names import parse_block_weights

router = APIRouter(prefix="/api/names", tags=["names"], responses=ERROR_RESPONSES)


@router.post("", response_model=NamesTable)
async def names(body: TraceRequest, settings: SettingsDep, pool: PoolDep) -> Any:
    """Every top-level block and module, labelled in every scheme (original, diffusers, both LoRA key spellings,
    block-weight IDs, merge weights, kohya's block index), with the ID lists, presets and kohya slots."""
    spec = await run_in_threadpool(resolve, body, settings)
    task = pool.submit("names", spec.config.to_dict(), time_limit_s=settings.trace_time_limit_s, what="the names")
    return await asyncio.wrap_future(task)


@router.post("/block-weights", response_model=BlockWeights)
def block_weights(body: BlockWeightsRequest, settings: SettingsDep) -> dict[str, Any]:
    """Each block's weight under a block-weight spec, as the block-weighting tools read it."""
    model = TraceRequest(
        preset=body.preset, config=body.config, ldm_params=body.ldm_params, diffusers_config=body.diffusers_config
    )
    return parse_block_weights(body.spec, resolve(model, settings).config).to_dict()
