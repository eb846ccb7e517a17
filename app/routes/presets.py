"""GET /api/presets and /api/presets/{name}: the named models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.errors import ERROR_RESPONSES, ApiError, quote
from sdunet_core import PRESETS

router = APIRouter(prefix="/api/presets", tags=["presets"], responses=ERROR_RESPONSES)


# Plain data, no I/O: async handlers answered on the event loop, never waiting for a thread.
@router.get("")
async def list_presets() -> list[dict[str, Any]]:
    return [p.summary() for p in PRESETS.values()]


@router.get("/{name}")
async def get_preset(name: str) -> dict[str, Any]:
    preset = PRESETS.get(name)
    if preset is None:
        raise ApiError(404, "name", f"unknown preset {quote(name)}; known: {sorted(PRESETS)}")
    return {
        **preset.summary(),
        "source": preset.source,
        "config": preset.config.to_dict(),
        "ldm_params": preset.config.to_ldm(),
    }
