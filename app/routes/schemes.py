"""POST /api/names (every block and module in every naming scheme) and /api/names/block-weights (a block-weight
spec resolved to each block's weight). Both take the model as /api/trace does: preset, config or ldm_params.

Plain `def` handlers: building the model on the meta device runs in the threadpool, never on the event loop. A bad
spec is a 422 on the field `spec` that says what is wrong and which lengths this model accepts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.errors import ERROR_RESPONSES
from app.names_schemas import BlockWeights, BlockWeightsRequest, NamesTable
from app.schemas import TraceRequest
from app.settings import Settings, get_settings
from app.tracing import resolve
from sdunet_core.names import names_table, parse_block_weights

router = APIRouter(prefix="/api/names", tags=["names"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


@router.post("", response_model=NamesTable)
def names(body: TraceRequest, settings: SettingsDep) -> Any:
    """Every top-level block and module, labelled in every scheme (original, diffusers, both LoRA key spellings,
    block-weight IDs, merge weights, kohya's block index), with the ID lists, presets and kohya slots."""
    return names_table(resolve(body, settings).config)


@router.post("/block-weights", response_model=BlockWeights)
def block_weights(body: BlockWeightsRequest, settings: SettingsDep) -> dict[str, Any]:
    """Each block's weight under a block-weight spec, as the block-weighting tools read it."""
    model = TraceRequest(preset=body.preset, config=body.config, ldm_params=body.ldm_params)
    return parse_block_weights(body.spec, resolve(model, settings).config).to_dict()
