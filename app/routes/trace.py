"""POST /api/trace: the trace JSON of a preset or config, cached, with an ETag and gzip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.errors import ERROR_RESPONSES
from app.schemas import TraceRequest
from app.settings import Settings, get_settings
from app.tracing import TraceCache, resolve

router = APIRouter(prefix="/api", tags=["trace"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_cache(request: Request) -> TraceCache:
    return request.app.state.trace_cache


CacheDep = Annotated[TraceCache, Depends(get_cache)]


@router.post(
    "/trace",
    responses={
        200: {
            "description": "the trace (docs/trace-schema.md)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        304: {"description": "not modified (If-None-Match matched the ETag)"},
    },
)
async def trace(
    body: TraceRequest,
    settings: SettingsDep,
    cache: CacheDep,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    # Resolving and a cache hit are cheap and stay on the event loop; a miss computes in the threadpool.
    spec = resolve(body, settings)
    cached = cache.peek(spec) or await run_in_threadpool(cache.get, spec)
    headers = {"ETag": cached.etag, "Cache-Control": "private, max-age=3600", "Vary": "Accept-Encoding"}
    if if_none_match is not None and cached.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    if "gzip" in accept_encoding:
        # Compressed once when cached, not on every response.
        return Response(cached.gzipped, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"})
    return Response(cached.body, media_type="application/json", headers=headers)
