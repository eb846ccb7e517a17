"""GET /api/controlnet/presets and /api/controlnet/presets/{name}: the named ControlNets (trace them with
POST /api/trace {"preset": "controlnet-sd15"})."""

from __future__ import annotations

from fastapi import APIRouter

from app.errors import ERROR_RESPONSES, ApiError, quote
from sdunet_core.control.presets import CONTROLNET_PRESETS, ControlNetPresetSummary, summary

router = APIRouter(prefix="/api/controlnet", tags=["controlnet"], responses=ERROR_RESPONSES)


@router.get("/presets", response_model=list[ControlNetPresetSummary])
async def list_controlnet_presets() -> list[ControlNetPresetSummary]:
    return [summary(p) for p in CONTROLNET_PRESETS.values()]


@router.get("/presets/{name}", response_model=ControlNetPresetSummary)
async def get_controlnet_preset(name: str) -> ControlNetPresetSummary:
    preset = CONTROLNET_PRESETS.get(name)
    if preset is None:
        raise ApiError(404, "name", f"unknown ControlNet preset {quote(name)}; known: {sorted(CONTROLNET_PRESETS)}")
    return summary(preset)
