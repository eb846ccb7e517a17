"""The capture service: requests resolved to a model and checked against limits, captures run in one child process.

Captures hold the CPU for seconds and gigabytes of memory, so they never run in the server's process: one
long-lived "spawn" child keeps the last model built (random weights, or the server's checkpoint with its VAE and
text encoders) and runs one capture at a time. A capture that runs past `SDUNET_CAPTURE_TIME_LIMIT` seconds
(default 300) has its process terminated, which returns all its memory, and gets a 413; a request that waits more
than 30 s for the process gets a 503. Before anything is built, the memory a capture needs (weights, the block
outputs alive at once, one attention chunk, the tensors kept for export or comparison) is estimated and a request
over `SDUNET_CAPTURE_MEMORY_MB` (default 20480) or over the memory available is refused with a 413.
"""

from __future__ import annotations

import base64
import binascii
import math
import multiprocessing as mp
import os
import threading
from functools import lru_cache
from typing import Any

from app.activation_schemas import CaptureRequest, ExportRequest, ModelChoice
from app.errors import ApiError
from app.resolve import resolve
from app.schemas import TraceRequest
from app.settings import Settings
from app.workers.pool import WorkerPool
from sdunet_core import UNetConfig
from sdunet_core.activations.capture import MAP_CHUNK_ELEMENTS
from sdunet_core.activations.catalog import ActivationPoint, resolve_points
from sdunet_core.tracer.trace import available_bytes

_SPAWN = mp.get_context("spawn")
WAIT_S = 30.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


def time_limit_s() -> int:
    return _env_int("SDUNET_CAPTURE_TIME_LIMIT", 300)


def max_latent_pixels() -> int:
    """Latent pixels per capture: 128 x 128 (a 1024 x 1024 SD image) unless SDUNET_CAPTURE_MAX_LATENT says more."""
    side = _env_int("SDUNET_CAPTURE_MAX_LATENT", 128)
    return side * side


def memory_budget() -> int:
    return _env_int("SDUNET_CAPTURE_MEMORY_MB", 20480) * 2**20


# ---- resolving a request ------------------------------------------------------------------------------------
def resolve_model(
    body: ModelChoice, settings: Settings, weights: Any
) -> tuple[UNetConfig, str | None, tuple, str | None]:
    """(config, preset, latent size, weights path) for a request, or ApiError / ConfigError naming the field."""
    if body.use_weights:
        if weights is None:
            raise ApiError(422, "use_weights", "no weights file was given (start the server with --weights FILE)")
        if any(v is not None for v in (body.preset, body.config, body.ldm_params)):
            raise ApiError(422, "use_weights", "the model comes from the weights file: give no preset or config")
        trace_req = TraceRequest(config=weights.config.to_dict(), image_size=body.image_size,
                                 sample_size=body.sample_size)  # fmt: skip
        spec = resolve(trace_req, settings)
        return spec.config, weights.detection.preset, spec.sample_size, str(weights.path)
    trace_req = TraceRequest(preset=body.preset, config=body.config, ldm_params=body.ldm_params,
                             image_size=body.image_size, sample_size=body.sample_size)  # fmt: skip
    spec = resolve(trace_req, settings)
    if spec.config.dims != 2:
        raise ApiError(422, "config", f"activations are captured for image UNets (dims=2), got dims={spec.config.dims}")
    return spec.config, spec.preset, tuple(spec.sample_size), None


def points_for(points: tuple[ActivationPoint, ...], names: list[str], field: str) -> list[ActivationPoint]:
    try:
        return resolve_points(points, names)
    except KeyError as exc:
        raise ApiError(422, field, f"unknown point {exc.args[0]!r}; GET the catalog for the names") from None


def decode_image(text: str, field: str) -> bytes:
    """A base64 string or a data: URL -> bytes; ApiError naming the field otherwise."""
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if ";base64" not in head:
            raise ApiError(422, field, "a data: URL must be base64 encoded (data:image/png;base64,...)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, field, "is not valid base64") from None


@lru_cache(maxsize=32)
def parameter_count(config: UNetConfig) -> int:
    import torch

    from sdunet_core.model.unet import UNetModel

    with torch.device("meta"):
        return sum(p.numel() for p in UNetModel(config).parameters())


def estimate_bytes(config: UNetConfig, points: tuple[ActivationPoint, ...], chosen: list[ActivationPoint],
                   kept: list[ActivationPoint], compare: bool, with_components: bool) -> int:  # fmt: skip
    """Weights + the block outputs alive at once (the skips) + the largest activation + kept copies, x 1.2."""
    size = {p.name: 4 * math.prod(p.shape) for p in points}
    outputs = sum(size[p.name] for p in points if p.block_output)
    largest = max(size[p.name] for p in points if p.source != "attention-map")
    kept_bytes = sum(size[p.name] for p in kept)
    compared = sum(size[p.name] for p in chosen if compare and p.source != "attention-map")
    components = 4 * 2**30 if with_components else 0  # VAE and text encoders in float32: at most ~3.5 GiB (SDXL)
    work = outputs + 3 * largest + 4 * MAP_CHUNK_ELEMENTS
    return int((4 * parameter_count(config) + work + kept_bytes + compared) * 1.2) + components


def check_budget(need: int, field: str) -> None:
    import torch

    budget = min(memory_budget(), available_bytes(torch.device("cpu")))
    if need > budget:
        reason = (
            f"this capture needs about {need / 2**30:.1f} GiB; the limit here is {budget / 2**30:.1f} GiB: "
            "choose fewer points or a smaller model or image"
        )
        raise ApiError(413, field, reason)


def catalog_in_worker(pool: WorkerPool, settings: Settings, config: UNetConfig, sample: tuple) -> tuple:
    """The catalog of points with their shapes: a meta forward, so in a trace worker like every model build."""
    task = pool.submit("catalog", config.to_dict(), tuple(sample), time_limit_s=settings.trace_time_limit_s,
                       what="the activation catalog")  # fmt: skip
    return task.result()


def plan(
    body: CaptureRequest, settings: Settings, weights: Any, pool: WorkerPool, export: list[str] | None = None
) -> dict[str, Any]:
    """Everything the child needs, checked: a picklable job description."""
    config, preset, sample, weights_path = resolve_model(body, settings, weights)
    if math.prod(sample) > max_latent_pixels():
        field = "image_size" if body.image_size is not None else "sample_size"
        raise ApiError(413, field, f"a {sample[0]}x{sample[1]} latent is over the capture limit of "
                                   f"{max_latent_pixels()} latent pixels (128x128, a 1024x1024 image)")  # fmt: skip
    all_points = catalog_in_worker(pool, settings, config, sample)
    chosen = points_for(all_points, body.points, "points") if body.points else []
    kept = points_for(all_points, export, "export") if export else []
    if not chosen and not kept:
        raise ApiError(422, "points", "choose at least one point (a catalog name or a group such as @outputs)")
    need = estimate_bytes(config, all_points, chosen, kept, body.compare_timestep is not None, weights_path is not None)
    check_budget(need, "export" if export else "points")
    images: list[tuple[str, bytes | None]] = []
    if isinstance(body, ExportRequest) and body.images:
        images = [(f"images[{i}]", decode_image(t, f"images.{i}")) for i, t in enumerate(body.images)]
    elif body.image is not None:
        images = [("image", decode_image(body.image, "image"))]
    return {
        "config": config.to_dict(),
        "preset": preset,
        "weights_path": weights_path,
        "sample_size": sample,
        "spec": {
            "points": [p.name for p in chosen],
            "keep": [p.name for p in kept],
            "timestep": body.timestep,
            "compare_timestep": body.compare_timestep,
            "prompt": body.prompt,
            "seed": body.seed,
            "sample_size": sample,
            "max_image_side": settings.max_image_size,
        },
        "images": images,
        "encoding": body.encoding,
    }


# ---- the child process --------------------------------------------------------------------------------------
class CaptureWorker:
    """One child process running captures one at a time; killed when a capture overstays its time limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None

    def _start(self) -> None:
        from app.workers.capture_child import worker_main

        parent, child = _SPAWN.Pipe()
        self._process = _SPAWN.Process(
            target=worker_main, args=(child, os.getpid()), daemon=True, name="sdunet-capture"
        )
        self._process.start()
        child.close()
        self._conn = parent

    def call(self, op: str, job: dict[str, Any]) -> Any:
        if not self._lock.acquire(timeout=WAIT_S):
            raise ApiError(503, None, "another capture is running; try again shortly", {"Retry-After": "5"})
        try:
            if self._process is None or not self._process.is_alive():
                self._start()
            self._conn.send((op, job))
            limit = time_limit_s()
            if not self._conn.poll(limit):
                self.stop()
                raise ApiError(
                    413, None, f"the capture ran past the limit of {limit} s; choose a smaller model or input"
                )
            try:
                message = self._conn.recv()
            except (EOFError, OSError):  # the child died mid-capture (killed for memory, say)
                self.stop()
                raise ApiError(
                    503, None, "the capture process ended unexpectedly; try again", {"Retry-After": "2"}
                ) from None
        finally:
            self._lock.release()
        kind = message[0]
        if kind == "ok":
            return message[1]
        if kind == "input":
            raise ApiError(422, message[1], message[2])
        raise ApiError(422, None, f"the capture failed: {message[1]}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


_WORKERS: dict[int, CaptureWorker] = {}
_WORKERS_LOCK = threading.Lock()


def worker_for(app: Any) -> CaptureWorker:
    """The app's capture worker, made on first use (the app's lifespan never has to know)."""
    with _WORKERS_LOCK:
        return _WORKERS.setdefault(id(app), CaptureWorker())


def stop_all() -> None:
    with _WORKERS_LOCK:
        for worker in _WORKERS.values():
            worker.stop()
