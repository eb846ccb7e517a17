"""POST /api/trace: the trace JSON of a preset or config, from the one trace cache, with an ETag and gzip."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.deps import MemoDep, SettingsDep, StoreDep
from app.errors import ERROR_RESPONSES
from app.resolve import resolve
from app.schemas import TraceRequest

router = APIRouter(prefix="/api", tags=["trace"], responses=ERROR_RESPONSES)


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
    request: Request,
    body: TraceRequest,
    settings: SettingsDep,
    store: StoreDep,
    memo: MemoDep,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    # A preset resolves in microseconds on the event loop; a custom config is validated (a walk over the whole U)
    # in the threadpool. The trace itself is awaited from a worker process, holding no thread.
    spec = resolve(body, settings) if body.preset is not None else await run_in_threadpool(resolve, body, settings)
    cached = await store.get(spec)
    memo.remember(await request.body(), spec)  # the same bytes next time go through app.fastpath
    status, headers, content = cached.response_parts(accept_encoding, if_none_match)
    return Response(content, status_code=status, headers=dict(headers))
