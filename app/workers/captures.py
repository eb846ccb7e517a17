"""The capture service: requests resolved to a model and checked against limits, captures run in one child process.

Captures hold the CPU for seconds and gigabytes of memory, so they never run in the server's process: one
long-lived "spawn" child keeps the last model built (random weights, or the server's checkpoint with its VAE and
text encoders) and runs one capture at a time. A capture that runs past `SDUNET_CAPTURE_TIME_LIMIT` seconds
(default 300) has its process terminated, which returns all its memory, and gets a 413; past one capture running
and two waiting, a request gets a 503 at once; a process idle for `SDUNET_CAPTURE_IDLE_S` (300) is stopped.
Before anything is built, the memory a capture needs (weights, the block outputs alive at once, one attention
chunk, the tensors kept for export or comparison, for every image) is estimated and a request over
`SDUNET_CAPTURE_MEMORY_MB` (default 20480) or over the memory available (counting the model the child holds,
which it drops first) is refused with a 413. An export is written by the child to a temporary file, which the
server streams and deletes: its size is known before the capture runs, and one that the disk cannot take is a 413.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache
from typing import Any

from app.errors import ApiError, shutting_down
from app.resolve import resolve
from app.schemas.activations import CaptureRequest, ExportRequest, ModelChoice
from app.schemas.trace import TraceRequest
from app.settings import Settings
from app.workers.pool import WorkerPool
from sdunet_core import PRESETS, UNetConfig
from sdunet_core.activations.capture import MAP_CHUNK_ELEMENTS
from sdunet_core.activations.catalog import ActivationPoint, resolve_points
from sdunet_core.tracer.trace import available_bytes

log = logging.getLogger(__name__)

_SPAWN = mp.get_context("spawn")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


def time_limit_s() -> int:
    return _env_int("SDUNET_CAPTURE_TIME_LIMIT", 300)


def max_latent_pixels() -> int:
    """Latent pixels per capture: 128 x 128 (a 1024 x 1024 SD image) unless SDUNET_CAPTURE_MAX_LATENT says more."""
    side = _env_int("SDUNET_CAPTURE_MAX_LATENT", 128)
    return side * side


def idle_s() -> int:
    """Seconds the capture process keeps its last model with no capture to run; then it is stopped."""
    return _env_int("SDUNET_CAPTURE_IDLE_S", 300)


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


def model_bytes(config: UNetConfig, with_components: bool) -> int:
    """What the child keeps of a model: float32 weights, and the VAE and text encoders (at most ~3.5 GiB, SDXL)."""
    return 4 * parameter_count(config) + (4 * 2**30 if with_components else 0)


def export_bytes(kept: list[ActivationPoint], images: int) -> int:
    """The export file's tensor data: every kept point, float32, for every image."""
    return images * sum(4 * math.prod(p.shape) for p in kept)


def estimate_bytes(
    config: UNetConfig,
    points: tuple[ActivationPoint, ...],
    chosen: list[ActivationPoint],
    kept: list[ActivationPoint],
    compare: bool,
    with_components: bool,
    images: int = 1,
) -> int:
    """The model + the block outputs alive at once (the skips) + the largest activation + kept copies (for every
    image of an export, twice: as captured and stacked), x 1.2 for what the activations do not say."""
    size = {p.name: 4 * math.prod(p.shape) for p in points}
    outputs = sum(size[p.name] for p in points if p.block_output)
    largest = max(size[p.name] for p in points if p.source != "attention-map")
    kept_bytes = export_bytes(kept, images) * (2 if images > 1 else 1)
    compared = sum(size[p.name] for p in chosen if compare and p.source != "attention-map")
    work = outputs + 3 * largest + 4 * MAP_CHUNK_ELEMENTS
    weights = 4 * parameter_count(config)
    return int((weights + work + kept_bytes + compared) * 1.2) + model_bytes(config, with_components) - weights


def check_budget(need: int, field: str, held_bytes: int = 0) -> None:
    """Refuse (413) a capture past the limit or the memory available, counting as available what the capture
    process holds now (its model is dropped before the next is built, or is the one this capture needs)."""
    import torch

    budget = min(memory_budget(), available_bytes(torch.device("cpu")) + held_bytes)
    if need > budget:
        reason = (
            f"this capture needs about {need / 2**30:.1f} GiB; the limit here is {budget / 2**30:.1f} GiB: "
            "choose fewer points or a smaller model or image"
        )
        raise ApiError(413, field, reason)


def capture_tokens(preset: str | None) -> int:
    """Context tokens a capture feeds the UNet: the twin's own 16, else CLIP's 77 (text or seeded noise)."""
    from sdunet_core.activations.tokenizer import MAX_TOKENS
    from sdunet_core.twin import PRESET as TWIN

    return PRESETS[TWIN].context_tokens or MAX_TOKENS if preset == TWIN else MAX_TOKENS


def catalog_in_worker(
    pool: WorkerPool, settings: Settings, config: UNetConfig, sample: tuple, preset: str | None
) -> tuple:
    """The catalog of points with their shapes: a meta forward, so in a trace worker like every model build."""
    task = pool.submit("catalog", config.to_dict(), tuple(sample), capture_tokens(preset),
                       time_limit_s=settings.trace_time_limit_s, what="the activation catalog")  # fmt: skip
    return task.result()


def generation_job(body: CaptureRequest, preset: str | None) -> dict[str, Any] | None:
    """A capture at a step of a twin generation, checked: only the twin generates, the step lies in the loop."""
    from sdunet_core.twin import PRESET as TWIN

    gen = getattr(body, "generation", None)
    if gen is None:
        return None
    if preset != TWIN:
        raise ApiError(422, "generation", f"only the trained twin ({TWIN!r}) generates; choose it as the preset")
    if gen.step >= gen.steps:
        last = gen.steps - 1
        raise ApiError(422, "generation.step", f"{gen.step} is past the last step of {gen.steps} (0 to {last})")
    if body.image is not None:
        raise ApiError(422, "image", "give an image or a generation step, not both")
    return gen.model_dump()


def plan(
    body: CaptureRequest,
    settings: Settings,
    weights: Any,
    pool: WorkerPool,
    export: list[str] | None = None,
    held_bytes: int = 0,
) -> dict[str, Any]:
    """Everything the child needs, checked: a picklable job description."""
    config, preset, sample, weights_path = resolve_model(body, settings, weights)
    if math.prod(sample) > max_latent_pixels():
        field = "image_size" if body.image_size is not None else "sample_size"
        raise ApiError(413, field, f"a {sample[0]}x{sample[1]} latent is over the capture limit of "
                                   f"{max_latent_pixels()} latent pixels (128x128, a 1024x1024 image)")  # fmt: skip
    all_points = catalog_in_worker(pool, settings, config, sample, preset)
    chosen = points_for(all_points, body.points, "points") if body.points else []
    kept = points_for(all_points, export, "export") if export else []
    if not chosen and not kept:
        raise ApiError(422, "points", "choose at least one point (a catalog name or a group such as @outputs)")
    images: list[tuple[str, bytes | None]] = []
    if isinstance(body, ExportRequest) and body.images:
        images = [(f"images[{i}]", decode_image(t, f"images.{i}")) for i, t in enumerate(body.images)]
    elif body.image is not None:
        images = [("image", decode_image(body.image, "image"))]
    count = max(1, len(images))
    with_components = weights_path is not None
    need = estimate_bytes(config, all_points, chosen, kept, body.compare_timestep is not None, with_components, count)
    check_budget(need, "export" if export else "points", held_bytes)
    if kept:
        size = export_bytes(kept, count)
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if size > free:
            reason = f"the file would take {size / 2**30:.1f} GiB; {free / 2**30:.1f} GiB of disk is free for it"
            raise ApiError(413, "export", f"{reason}: choose fewer points or images, or a smaller size")
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
        "generation": generation_job(body, preset),
        "images": images,
        "encoding": body.encoding,
        "model_bytes": model_bytes(config, with_components),
    }


# ---- the child process --------------------------------------------------------------------------------------
TWIN_OPS = ("warm", "generate", "ablate")  # the child's operations that leave the shipped twin loaded


class CaptureWorker:
    """One child process running captures one at a time, fed by one thread of its own.

    A request waits for its capture on a future (an async handler awaits it without holding a thread): captures
    that queued in the threadpool used to tie up its threads for as long as the one before ran, so quick routes
    waited behind them. Past one running and `max_waiting` queued, a capture is refused at once (503,
    Retry-After). A capture that overstays its time limit has its process killed (413); a process idle for
    `SDUNET_CAPTURE_IDLE_S` is stopped, which returns the model it kept (gigabytes for SDXL) to the system.
    """

    def __init__(self, max_waiting: int = 2, run: Callable[[str, dict[str, Any]], Any] | None = None) -> None:
        self.max_waiting = max_waiting
        self._run = run or self._in_child
        self._jobs: queue.Queue[tuple[str, dict[str, Any], Future] | None] = queue.Queue()
        self._admitted = 0  # running and waiting
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False  # the app shut down: no more jobs
        self._process: Any = None
        self._conn: Any = None
        self.held_bytes = 0  # what the child's kept model takes (estimated): free again for the next model
        self.twin_loaded = False  # the child has the twin in memory (a warm-up or a generation ran there)

    def submit(self, op: str, job: dict[str, Any]) -> Future:
        with self._lock:
            if self._closed:
                raise shutting_down()
            if self._admitted > self.max_waiting:
                raise ApiError(503, None, "the capture process is busy; try again shortly", {"Retry-After": "5"})
            self._admitted += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="capture-feeder", daemon=True)
                self._thread.start()
        future: Future = Future()
        self._jobs.put((op, job, future))
        return future

    def _serve(self) -> None:
        while True:
            try:
                item = self._jobs.get(timeout=idle_s())
            except queue.Empty:  # idle: give the kept model's memory back
                self.stop()
                continue
            if item is None:
                with self._lock:
                    self._thread = None
                return
            op, job, future = item
            try:
                if not future.set_running_or_notify_cancel():
                    continue  # its request ended while it waited
                if self._closed:  # queued before the app's end: no process is started for it any more
                    raise shutting_down()
                future.set_result(self._run(op, job))
            except BaseException as exc:  # every failure goes to the request that waits
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._admitted -= 1

    def _start(self) -> None:
        from app.workers.capture_child import worker_main

        parent, child = _SPAWN.Pipe()
        self._process = _SPAWN.Process(
            target=worker_main, args=(child, os.getpid()), daemon=True, name="sdunet-capture"
        )
        self._process.start()
        child.close()
        self._conn = parent

    def _in_child(self, op: str, job: dict[str, Any]) -> Any:
        if self._process is None or not self._process.is_alive():
            self._start()
        conn = self._conn  # close() may set self._conn to None from another thread meanwhile: keep our end
        limit = time_limit_s()
        try:
            conn.send((op, job))
            if not conn.poll(limit):
                self.stop()
                raise ApiError(
                    413, None, f"the capture ran past the limit of {limit} s; choose a smaller model or input"
                )
            message = conn.recv()
        except (EOFError, OSError):  # the child died mid-capture (killed for memory, say, or by close())
            if self._closed:
                raise shutting_down() from None
            self.stop()
            raise ApiError(
                503, None, "the capture process ended unexpectedly; try again", {"Retry-After": "2"}
            ) from None
        self.held_bytes = job.get("model_bytes", 0)
        kind = message[0]
        if kind == "ok":
            self.twin_loaded = self.twin_loaded or op in TWIN_OPS
            return message[1]
        if kind == "input":
            raise ApiError(422, message[1], message[2])
        raise ApiError(422, None, f"the capture failed: {message[1]}")

    def stop(self) -> None:
        process, self._process = self._process, None
        self.held_bytes = 0
        self.twin_loaded = False
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._jobs.put(None)
        self.stop()


_WORKERS: dict[int, CaptureWorker] = {}
_WORKERS_LOCK = threading.Lock()


def worker_for(app: Any) -> CaptureWorker:
    """The app's capture worker, made on first use (the app's lifespan never has to know)."""
    with _WORKERS_LOCK:
        return _WORKERS.setdefault(id(app), CaptureWorker())


def warm_twin(app: Any) -> None:
    """Load the twin in the capture process in the background, so the Generate view's first picture costs only its
    steps (starting the process, importing torch and diffusers and reading the weights took seconds more).
    `SDUNET_WARM_TWIN=0` turns it off (the tests' servers do: most never generate)."""
    from sdunet_core.twin import weights_shipped

    if os.environ.get("SDUNET_WARM_TWIN", "1") == "0" or not weights_shipped():
        return

    def done(future: Future) -> None:
        exc = future.exception()
        if exc is not None and not (isinstance(exc, ApiError) and exc.status == 503):  # 503: shut down meanwhile
            log.warning("the twin's warm-up failed: %s", exc)

    worker_for(app).submit("warm", {}).add_done_callback(done)


def close_worker(app: Any) -> None:
    """End the capture worker of `app` (its lifespan is over), and only that one: another app in the same process
    (the tests run several) keeps its own. Its entry goes too, so a later app that gets the same id starts anew."""
    with _WORKERS_LOCK:
        worker = _WORKERS.pop(id(app), None)
    if worker is not None:
        worker.close()
