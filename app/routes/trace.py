"""POST /api/trace: the trace JSON of a preset or config, cached, with an ETag and gzip; POST /api/summary: the
same trace as the CLI's text table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from app.errors import ERROR_RESPONSES
from app.schemas import TraceRequest
from app.settings import Settings, get_settings
from app.tracing import TraceCache, TraceSpec, resolve
from sdunet_core.schema import Trace
from sdunet_core.summary import format_summary

router = APIRouter(prefix="/api", tags=["trace"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_cache(request: Request) -> TraceCache:
    return request.app.state.trace_cache


CacheDep = Annotated[TraceCache, Depends(get_cache)]


@router.post(
    "/trace",
    response_model=Trace,
    responses={
        200: {"description": "the trace (docs/trace-schema.md)"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
    },
)
async def trace(
    request: Request,
    body: TraceRequest,
    settings: SettingsDep,
    cache: CacheDep,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    # Resolving and a cache hit are cheap and stay on the event loop; a miss computes in the threadpool.
    spec = resolve(body, settings)
    cached = cache.peek(spec) or await run_in_threadpool(cache.get, spec)
    cache.remember_body(await request.body(), spec)  # the same bytes next time go through app.fastpath
    status, headers, content = cached.response_parts(accept_encoding, if_none_match)
    return Response(content, status_code=status, headers=dict(headers))


def _summary(cache: TraceCache, spec: TraceSpec, depth: int) -> str:
    trace = Trace.model_validate_json(cache.get(spec).body)
    return format_summary(trace, depth=depth) + "\n"


@router.post(
    "/summary",
    response_model=None,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "the table `sdunet-explorer summary` prints",
        }
    },
)
async def summary(
    body: TraceRequest,
    settings: SettingsDep,
    cache: CacheDep,
    depth: Annotated[int, Query(ge=0, le=12, description="module tree depth to show")] = 2,
) -> PlainTextResponse:
    """The text summary of a trace (module tree, output shapes, parameters, FLOPs), as the CLI prints it."""
    spec = resolve(body, settings)
    return PlainTextResponse(await run_in_threadpool(_summary, cache, spec, depth))
