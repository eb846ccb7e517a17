"""The FastAPI application: create_app() wires routers, static files, templates, errors and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import __version__
from app.errors import install_error_handlers
from app.fastpath import TraceFastPath
from app.jobs import ProfileManager
from app.middleware import SecurityMiddleware
from app.routes import (
    activations,
    analysis,
    checkpoint,
    health,
    lora,
    names,
    pages,
    presets,
    profile,
    schemes,
    source,
    trace,
    weights,
)
from app.settings import get_settings
from app.tracing import TraceCache
from app.workers import TracePool
from sdunet_core.weights import open_weights


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.trace_pool is not None:
        app.state.trace_pool.warm()  # start the workers (importing torch) before the first request needs them
    try:
        yield
    finally:
        app.state.profiles.shutdown()
        if app.state.trace_pool is not None:
            app.state.trace_pool.shutdown()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="SD UNet Explorer",
        version=__version__,
        description="Traces of the Stable Diffusion UNet family: module tree, shapes, parameters, FLOPs, timings.",
        lifespan=lifespan,
    )
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    # Both are light (no model is built until a request asks): the profile worker threads start on first use and
    # the lifespan stops them.
    app.state.trace_pool = TracePool(settings.trace_workers) if settings.trace_workers > 0 else None
    app.state.trace_cache = TraceCache(
        settings.cache_size,
        settings.max_concurrent_traces,
        time_limit_s=settings.trace_time_limit_s,
        pool=app.state.trace_pool,
    )
    app.state.profiles = ProfileManager(settings.max_queue, settings.profile_time_limit_s)
    # A weights file given at start is read by its header now (its tensors only when asked for).
    app.state.weights = open_weights(settings.weights) if settings.weights else None
    app.state.weight_stats = {}
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    routers = (health, presets, trace, profile, source, checkpoint, analysis, weights, names, schemes, lora)
    for module in (*routers, activations, pages):
        app.include_router(module.router)
    install_error_handlers(app)
    # Innermost first: the trace fast path answers from the cache inside gzip and the security headers.
    app.add_middleware(TraceFastPath)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"]
        )

    app.add_middleware(SecurityMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
