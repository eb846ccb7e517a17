"""POST /api/trace: the trace JSON of a preset or config, cached, with an ETag and gzip; POST /api/summary: the
same trace as the CLI's text table."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from app.deps import MemoDep, SettingsDep, StoreDep
from app.errors import ERROR_RESPONSES
from app.resolve import resolve
from app.schemas.trace import TraceRequest
from app.settings import Settings
from app.tracing import TraceSpec
from sdunet_core.schema import Trace
from sdunet_core.tracer.summary import format_summary

router = APIRouter(prefix="/api", tags=["trace"], responses=ERROR_RESPONSES)


async def _resolve(body: TraceRequest, settings: Settings) -> TraceSpec:
    """The request's trace spec. A preset resolves in microseconds on the event loop; a custom config is validated
    (a walk over the whole U) in the threadpool."""
    if body.preset is not None:
        return resolve(body, settings, control=True)
    return await run_in_threadpool(resolve, body, settings, control=True)


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
    store: StoreDep,
    memo: MemoDep,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    # The trace itself is awaited from a worker process, holding no thread.
    spec = await _resolve(body, settings)
    cached = await store.get(spec)
    memo.remember(await request.body(), spec)  # the same bytes next time go through app.fastpath
    status, headers, content = cached.response_parts(accept_encoding, if_none_match)
    return Response(content, status_code=status, headers=dict(headers))


def _summary(body: bytes, depth: int) -> str:
    return format_summary(Trace.model_validate_json(body), depth=depth) + "\n"


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
    store: StoreDep,
    depth: Annotated[int, Query(ge=0, le=12, description="module tree depth to show")] = 2,
) -> PlainTextResponse:
    """The text summary of a trace (module tree, output shapes, parameters, FLOPs), as the CLI prints it."""
    spec = await _resolve(body, settings)
    cached = await store.get(spec)
    return PlainTextResponse(await run_in_threadpool(_summary, cached.body, depth))
