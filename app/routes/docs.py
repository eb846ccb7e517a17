"""/docs (Swagger UI) and /redoc, served from the files the fastapi-offline package ships: no CDN, so the API
docs work offline and under the app's own Content-Security-Policy.

FastAPI's own docs pages load their scripts from a CDN and start Swagger UI with an inline script, which
`script-src 'self'` blocks. Here the pages are plain HTML, the start-up script is a file of its own, and only
these pages widen the policy where the libraries need it (Redoc runs its search in a worker made from a blob).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.errors import ApiError
from app.middleware import CSP

router = APIRouter(include_in_schema=False)
ASSETS = Path(fastapi_offline.__file__).parent / "static"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
}
DOCS_CSP = CSP + "; worker-src 'self' blob:"

_SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SD UNet Explorer API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/start.js"></script></body></html>
"""
_START = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true});\n"
_REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SD UNet Explorer API</title></head>
<body><redoc spec-url="/openapi.json"></redoc><script src="/docs/assets/redoc.standalone.js"></script></body></html>
"""
_CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/docs")
async def swagger() -> HTMLResponse:
    return HTMLResponse(_SWAGGER, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/start.js")
async def swagger_start() -> Response:
    return Response(_START, media_type="text/javascript", headers=_CACHE)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return HTMLResponse(_REDOC, headers={"Content-Security-Policy": DOCS_CSP})


# Redoc's "API docs by Redocly" badge loads its logo from Redocly's CDN, which the policy blocks (a console error
# on every visit) and which an offline tool should not ask for. An empty data: URL makes the image fail at once,
# and Redoc then leaves it out (its onError hides the logo); the badge's text stays.
# Matched as a pattern, so that this file itself names no CDN address to load.
_REDOC_LOGO = re.compile(rb"https://cdn\.redoc\.ly/redoc/logo-mini\.svg")


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    return _REDOC_LOGO.sub(b"data:,", (ASSETS / "redoc.standalone.js").read_bytes())


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    kind = _FILES.get(name)  # only the named files: nothing else on disk can be read through this route
    if kind is None:
        raise ApiError(404, "name", "no such docs asset")
    if name == "redoc.standalone.js":
        return Response(_redoc_bundle(), media_type=kind, headers=_CACHE)
    return FileResponse(ASSETS / name, media_type=kind, headers=_CACHE)
