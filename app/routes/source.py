"""GET /api/source/{kind}: the Python source of one of our block classes, for the page's "show code" panel;
GET /api/source: the names of those classes (the page offers "show code" for them, and calls the rest built-ins)."""

from __future__ import annotations

import inspect

from fastapi import APIRouter

from app.errors import ERROR_RESPONSES, ApiError
from sdunet_core.control import controlnet
from sdunet_core.model import attention, blocks, unet

router = APIRouter(prefix="/api/source", tags=["source"], responses=ERROR_RESPONSES)

# Only our own classes, by name: nothing else on the server can be read through this route.
_CLASSES = {
    cls.__name__: cls
    for module in (blocks, attention, unet, controlnet)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if cls.__module__ == module.__name__
}


@router.get("")
def kinds() -> list[str]:
    return sorted(_CLASSES)


@router.get("/{kind}")
def source(kind: str) -> dict[str, str]:
    cls = _CLASSES.get(kind)
    if cls is None:
        raise ApiError(404, "kind", f"no source for {kind!r}; known: {sorted(_CLASSES)}")
    return {"kind": kind, "module": cls.__module__, "source": inspect.getsource(cls)}
