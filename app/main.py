"""The FastAPI application: create_app() wires routers, static files, templates, errors and the middleware; the
lifespan starts the worker processes (and waits, bounded, until they are warm) and ends them (app.shutdown says
how requests still running are answered then)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app import __version__
from app.diskcache import DiskCache
from app.errors import install_error_handlers
from app.fastpath import RequestMemo, TraceFastPath
from app.middleware import SecurityMiddleware, allowed_hosts
from app.routes import (
    activations,
    analysis,
    checkpoint,
    control,
    diffusers_names,
    docs,
    health,
    interventions,
    knobs,
    lora,
    names,
    pages,
    presets,
    probes,
    profile,
    source,
    trace,
    twin,
    weights,
)
from app.settings import get_settings
from app.shutdown import Shutdown, ShutdownMiddleware
from app.tracing import TraceStore
from app.workers.captures import close_worker, warm_twin
from app.workers.jobs import ProfileManager
from app.workers.pool import WorkerPool
from sdunet_core.checkpoint.weights import open_weights

log = logging.getLogger(__name__)
WARM_WAIT_S = 60.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The first request should find warm workers (torch imported, a tiny model traced): serve once they are, or
    # after WARM_WAIT_S on a very slow machine (requests then wait for the workers instead).
    try:
        await asyncio.wait_for(asyncio.wrap_future(app.state.workers.start()), WARM_WAIT_S)
    except (TimeoutError, RuntimeError) as exc:
        log.warning("trace workers not warm at start-up (%s); serving anyway", exc or "timeout")
    # What exists now (torch, the model family, the app) lives as long as the server: out of the collector's sight.
    # Each full collection walked all of it and paused every request in flight: the tail of bench/api_bench.py's
    # latencies is what it cost.
    gc.collect()
    gc.freeze()
    warm_twin(app)  # in the capture process, in the background: the server answers meanwhile
    try:
        yield
    finally:
        await app.state.shutdown.stop_work()  # at once if the grace period (app.shutdown) has not already


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="SD UNet Explorer",
        version=__version__,
        description="Traces of the Stable Diffusion UNet family: module tree, shapes, parameters, FLOPs, timings.",
        lifespan=lifespan,
        docs_url=None,  # served by app.routes.docs from installed files, not from a CDN
        redoc_url=None,
    )
    app.state.templates = Jinja2Templates(directory=settings.templates_dir)
    # Nothing heavy yet: the worker processes start in the lifespan (or on first use).
    app.state.workers = WorkerPool(settings.trace_workers, max_pending=settings.max_pending_tasks)
    disk = DiskCache(settings.cache_dir, settings.disk_cache_bytes) if settings.disk_cache_bytes > 0 else None
    app.state.traces = TraceStore(
        app.state.workers, memory_bytes=settings.cache_bytes, disk=disk, time_limit_s=settings.trace_time_limit_s
    )
    app.state.trace_memo = RequestMemo()
    app.state.profiles = ProfileManager(settings.max_queue, settings.profile_time_limit_s)
    # A weights file given at start is read by its header now (its tensors only when asked for).
    app.state.weights = open_weights(settings.weights) if settings.weights else None
    app.state.weight_stats = {}
    app.state.shutdown = Shutdown(
        settings.shutdown_grace_s,
        [
            app.state.profiles.shutdown,
            lambda: app.state.probe_jobs.shutdown() if getattr(app.state, "probe_jobs", None) else None,
            app.state.workers.shutdown,
            app.state.traces.shutdown,
            lambda: close_worker(app),
        ],
    )
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    routers = (
        health,
        presets,
        control,
        trace,
        profile,
        source,
        checkpoint,
        analysis,
        weights,
        diffusers_names,
        names,
        lora,
        twin,
        knobs,
        interventions,
        probes,
    )
    for module in (*routers, activations, docs, pages):
        app.include_router(module.router)
    install_error_handlers(app)
    # Innermost first: the trace fast path answers from the cache inside gzip and the security checks.
    app.add_middleware(TraceFastPath)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"]
        )
    app.add_middleware(ShutdownMiddleware, shutdown=app.state.shutdown)
    app.add_middleware(
        SecurityMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hosts=allowed_hosts(settings.host, settings.allowed_hosts),
        body_timeout_s=settings.body_timeout_s,
    )
    return app
