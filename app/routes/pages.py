"""The HTML page (kept out of the OpenAPI schema) and plotly.js served from the installed plotly package."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from app.modules import module_closure
from app.routes.checkpoint import MAX_BODY_BYTES
from app.settings import Settings, get_settings

router = APIRouter(include_in_schema=False)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def page_limits(settings: Settings) -> dict[str, int]:
    """The limits the page checks before it asks (the server checks them again): one place, the server's. A static
    site (app/commands/site_export.py) writes the same into its page."""
    return {"max_image_size": settings.max_image_size, "max_header_bytes": MAX_BODY_BYTES}


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    templates = request.app.state.templates
    settings = get_settings()
    # Every module the page imports, preloaded at once rather than found one import after another.
    modules = module_closure(settings.static_dir / "js")
    context = {"settings": settings, "limits": page_limits(settings), "modules": modules}
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    # Served from the installed package so the page works offline and never loads a CDN.
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(get_settings().static_dir / "favicon.svg", media_type="image/svg+xml")
