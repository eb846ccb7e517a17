"""/api/activations: the catalog of a model's activation points, captures of one forward, and exports.

- POST /catalog: every point with its module, shape at the input size, and who reads it (no weights needed);
- POST /capture: one forward (random weights, or the server's checkpoint with `use_weights`) captured at the chosen
  points: statistics, previews, word heat maps, and the cosine similarity to a second timestep;
- POST /export: the full tensors of chosen points for one or more images, as a .safetensors file.

The catalog's handler is plain `def` (it runs in the threadpool); captures and exports are planned in the threadpool
and then awaited, so that a capture waiting for the child process holds no thread. The capture itself runs in a
child process with a time and memory bound (app.workers.captures).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from app.errors import ERROR_RESPONSES
from app.schemas.activations import CaptureRequest, CaptureResponse, CatalogRequest, CatalogResponse, ExportRequest
from app.settings import Settings, get_settings
from app.workers.captures import capture_tokens, catalog_in_worker, plan, resolve_model, worker_for
from sdunet_core.activations import GROUPS
from sdunet_core.activations.report import point_dict
from sdunet_core.tracer import DEFAULT_LATENT_FACTOR
from sdunet_core.twin import PRESET as TWIN
from sdunet_core.twin.model import WEIGHTS as TWIN_WEIGHTS

router = APIRouter(prefix="/api/activations", tags=["activations"], responses=ERROR_RESPONSES)
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _model_info(request: Request, config: Any, preset: str | None, weights_path: str | None) -> dict[str, Any]:
    weights = getattr(request.app.state, "weights", None)
    name = weights.path.name if weights_path and weights is not None else None
    if preset == TWIN and weights_path is None:
        name = f"{TWIN_WEIGHTS.name} (the twin, trained here and shipped with the package)"
    return {"preset": preset, "config": config.to_dict(), "weights": name}


@router.post("/catalog", response_model=CatalogResponse)
def activation_catalog(body: CatalogRequest, request: Request, settings: SettingsDep) -> dict[str, Any]:
    weights = getattr(request.app.state, "weights", None)
    config, preset, sample, weights_path = resolve_model(body, settings, weights)
    points = catalog_in_worker(request.app.state.workers, settings, config, sample, preset)
    factor = DEFAULT_LATENT_FACTOR if preset is None else _latent_factor(preset)
    return {
        "model": _model_info(request, config, preset, weights_path),
        "sample_size": list(sample),
        "image_size": [s * factor for s in sample],
        "context_tokens": capture_tokens(preset) if config.use_spatial_transformer else None,
        "count": len(points),
        "groups": {g: [p.name for p in points if test(p)] for g, test in GROUPS.items() if g != "@all"},
        "points": [point_dict(p) for p in points],
    }


def _latent_factor(preset: str) -> int:
    from sdunet_core import PRESETS

    return PRESETS[preset].latent_factor


@router.post("/capture", response_model=CaptureResponse)
async def capture(body: CaptureRequest, request: Request, settings: SettingsDep) -> dict[str, Any]:
    worker = worker_for(request.app)
    weights = getattr(request.app.state, "weights", None)
    job = await run_in_threadpool(
        plan, body, settings, weights, request.app.state.workers, held_bytes=worker.held_bytes
    )
    # Awaited, not waited for in a thread: captures queued behind a long one hold no thread of the pool.
    result = await asyncio.wrap_future(worker.submit("capture", job))
    config, preset = job["config"], job["preset"]
    from sdunet_core import UNetConfig

    return {**result, "model": _model_info(request, UNetConfig.from_dict(config), preset, job["weights_path"])}


@router.post(
    "/export",
    response_class=Response,
    responses={200: {"description": "a .safetensors file", "content": {"application/octet-stream": {}}}},
)
async def export(body: ExportRequest, request: Request, settings: SettingsDep) -> Response:
    worker = worker_for(request.app)
    weights = getattr(request.app.state, "weights", None)
    job = await run_in_threadpool(
        plan, body, settings, weights, request.app.state.workers, export=body.export, held_bytes=worker.held_bytes
    )
    # The child writes the file and the server streams it from disk: a 2 GB export never sits in its memory.
    fd, path = tempfile.mkstemp(prefix="sdunet-export-", suffix=".safetensors")
    os.close(fd)
    try:
        await asyncio.wrap_future(worker.submit("export", {**job, "out_path": path}))
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename="activations.safetensors",
        background=BackgroundTask(os.unlink, path),
    )
