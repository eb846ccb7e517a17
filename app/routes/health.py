"""GET /api/health: is the service up, which torch, which device."""

from __future__ import annotations

from functools import cache

import torch
from fastapi import APIRouter

from app.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api", tags=["health"], responses=ERROR_RESPONSES)


@cache
def _facts() -> dict[str, str | None]:
    cuda = torch.cuda.is_available()
    return {
        "status": "ok",
        "torch": torch.__version__,
        "device": "cuda" if cuda else "cpu",
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }


# async and without I/O: answered on the event loop, so it stays fast however busy the threadpool is.
@router.get("/health")
async def health() -> dict[str, str | None]:
    return _facts()
