"""The FastAPI application: create_app() wires routers, static files, templates, errors and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.errors import error_body, install_error_handlers
from app.jobs import ProfileManager
from app.routes import health, pages, presets, profile, source, trace
from app.settings import get_settings
from app.tracing import TraceCache

# script-src 'self' keeps data from ever running as code; plotly needs inline styles.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    app.state.trace_cache = TraceCache(settings.cache_size, settings.max_concurrent_traces)
    app.state.profiles = ProfileManager(settings.max_queue, settings.profile_time_limit_s)
    try:
        yield
    finally:
        app.state.profiles.shutdown()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="SD UNet Explorer",
        version="0.1.0",
        description="Traces of the Stable Diffusion UNet family: module tree, shapes, parameters, FLOPs, timings.",
        lifespan=lifespan,
    )
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    for module in (health, presets, trace, profile, source, pages):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"]
        )

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse(
                error_body("body", f"request body over the limit of {settings.max_body_bytes // 2**20} MiB"),
                status_code=413,
            )
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
