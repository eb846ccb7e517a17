"""GET /api/presets and /api/presets/{name}: the named models."""

from __future__ import annotations

from fastapi import APIRouter

from app.errors import ERROR_RESPONSES, ApiError, quote
from sdunet_core import PRESETS
from sdunet_core.presets import PresetDetail, PresetSummary

router = APIRouter(prefix="/api/presets", tags=["presets"], responses=ERROR_RESPONSES)


# Plain data, no I/O: async handlers answered on the event loop, never waiting for a thread.
@router.get("", response_model=list[PresetSummary])
async def list_presets() -> list[PresetSummary]:
    return [p.summary() for p in PRESETS.values()]


@router.get("/{name}", response_model=PresetDetail)
async def get_preset(name: str) -> PresetDetail:
    preset = PRESETS.get(name)
    if preset is None:
        raise ApiError(404, "name", f"unknown preset {quote(name)}; known: {sorted(PRESETS)}")
    return preset.detail()
