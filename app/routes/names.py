"""POST /api/diffusers-names: every module's name in diffusers' UNet2DConditionModel, for the details panel."""

from __future__ import annotations

from typing import Any

import torch
from fastapi import APIRouter

from app.errors import ERROR_RESPONSES
from app.schemas import TraceRequest
from app.settings import get_settings
from app.tracing import resolve
from sdunet_core import UNetModel
from sdunet_core.diffusers_keys import keymap_for, unsupported_reason

router = APIRouter(prefix="/api", tags=["names"], responses=ERROR_RESPONSES)


@router.post("/diffusers-names")
def diffusers_names(body: TraceRequest) -> dict[str, Any]:
    """Our module path -> the diffusers module path, for modules that hold weights (null where diffusers has no
    one-to-one module: parameter-free layers like SiLU, Dropout or an identity skip are arranged differently)."""
    config = resolve(body, get_settings()).config
    reason = unsupported_reason(config)
    keymap = None if reason else keymap_for(config)
    if keymap is None:
        return {"supported": False, "reason": reason or "diffusers has no layout for this model", "names": {}}
    with torch.device("meta"):
        modules = [(p, m) for p, m in UNetModel(config).named_modules() if p]
    names = {p: keymap.to_diffusers(p) if any(True for _ in m.parameters()) else None for p, m in modules}
    return {"supported": True, "reason": None, "names": names}
