"""The API's shared dependencies, as `Annotated` aliases every route uses: settings, the trace store, the worker
pool, the profile jobs and the weights file given at start. The objects live on `app.state`, made by
`create_app()`.

Every getter is `async def`: FastAPI runs a plain `def` dependency in the threadpool, and a hundred open event
streams would then each take a thread just to look up an attribute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.fastpath import RequestMemo
from app.settings import Settings, get_settings
from app.tracing import TraceStore
from app.workers.jobs import ProfileManager
from app.workers.pool import WorkerPool
from sdunet_core.checkpoint.weights import WeightsFile


async def current_settings() -> Settings:
    """The settings (tests override this dependency to change a limit for one app)."""
    return get_settings()


async def get_store(request: Request) -> TraceStore:
    return request.app.state.traces


async def get_memo(request: Request) -> RequestMemo:
    return request.app.state.trace_memo


async def get_pool(request: Request) -> WorkerPool:
    return request.app.state.workers


async def get_profiles(request: Request) -> ProfileManager:
    return request.app.state.profiles


async def get_weights_or_none(request: Request) -> WeightsFile | None:
    return request.app.state.weights


async def get_weights(request: Request) -> WeightsFile:
    weights = request.app.state.weights
    if weights is None:
        raise ApiError(404, None, "no weights file was given (start the server with --weights FILE)")
    return weights


SettingsDep = Annotated[Settings, Depends(current_settings)]
StoreDep = Annotated[TraceStore, Depends(get_store)]
MemoDep = Annotated[RequestMemo, Depends(get_memo)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
ProfilesDep = Annotated[ProfileManager, Depends(get_profiles)]
MaybeWeightsDep = Annotated[WeightsFile | None, Depends(get_weights_or_none)]
WeightsDep = Annotated[WeightsFile, Depends(get_weights)]
