"""The trace service: resolves a request to a config and input, and serves traces from a bounded LRU cache.

Identical concurrent requests are computed once (single flight); a semaphore bounds how many different traces
are computed at once, and a request that cannot get a slot in time gets a 503 with Retry-After.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from app.errors import ApiError
from app.schemas import TraceRequest
from app.settings import Settings
from app.workers import TracePool, compute_trace
from sdunet_core import PRESETS, ConfigError, UNetConfig
from sdunet_core.trace import TraceTimeout, default_sample_size


@dataclass(frozen=True)
class TraceSpec:
    """A fully resolved trace: the config and every input size, hashable and canonical."""

    config: UNetConfig
    preset: str | None
    sample_size: tuple[int, ...]
    batch: int
    context_tokens: int | None

    @property
    def key(self) -> tuple:
        # The config is a frozen dataclass of tuples and scalars: it hashes and compares by value.
        return (self.preset, self.config, self.sample_size, self.batch, self.context_tokens)


@dataclass(frozen=True)
class CachedTrace:
    body: bytes  # JSON
    gzipped: bytes
    etag: str
    totals: dict

    def response_parts(
        self, accept_encoding: str, if_none_match: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of the HTTP answer: 304 on a matching ETag, gzip when the client takes it."""
        headers = [("etag", self.etag), ("cache-control", "private, max-age=3600"), ("vary", "Accept-Encoding")]
        if if_none_match is not None and self.etag in [t.strip() for t in if_none_match.split(",")]:
            return 304, headers, b""
        headers.append(("content-type", "application/json"))
        if "gzip" in accept_encoding:
            return 200, [*headers, ("content-encoding", "gzip")], self.gzipped  # compressed once, when cached
        return 200, headers, self.body


def resolve(req: TraceRequest, settings: Settings) -> TraceSpec:
    """Turn a request into a TraceSpec, or raise ApiError / ConfigError naming the field."""
    given = [k for k in ("preset", "config", "ldm_params") if getattr(req, k) is not None]
    if len(given) != 1:
        raise ApiError(422, "preset", f"give exactly one of preset, config, ldm_params (got {given or 'none'})")
    preset: str | None = None
    if req.preset is not None:
        if req.preset not in PRESETS:
            raise ApiError(404, "preset", f"unknown preset {req.preset!r}; known: {sorted(PRESETS)}")
        preset = req.preset
        config = PRESETS[preset].config
    elif req.config is not None:
        config = UNetConfig.from_dict(req.config)
    else:
        config = UNetConfig.from_ldm(req.ldm_params or {})
    factor = PRESETS[preset].latent_factor if preset else 8

    if req.image_size is not None and req.sample_size is not None:
        raise ApiError(422, "image_size", "give image_size or sample_size, not both")
    if req.image_size is not None:
        size = req.image_size
        if len(size) != config.dims:
            raise ApiError(422, "image_size", f"needs {config.dims} sizes, got {size}")
        if any(s > settings.max_image_size for s in size):
            raise ApiError(413, "image_size", f"{size} is over the limit of {settings.max_image_size} pixels per side")
        if any(s % factor for s in size):
            raise ApiError(422, "image_size", f"{size} must be a multiple of the latent factor {factor}")
        sample = tuple(s // factor for s in size)
    elif req.sample_size is not None:
        sample = tuple(req.sample_size)
        if any(s * factor > settings.max_image_size for s in sample):
            raise ApiError(
                413,
                "sample_size",
                f"{list(sample)} is over the limit of {settings.max_image_size // factor} latent pixels per side",
            )
    else:
        sample = default_sample_size(config, preset)
    try:
        config.check_sample_size(sample)
    except ConfigError as exc:
        field = "image_size" if req.image_size is not None else "sample_size"
        raise ApiError(422, field, exc.reason) from None
    if req.batch > settings.max_batch:
        raise ApiError(413, "batch", f"{req.batch} is over the limit of {settings.max_batch}")
    tokens = req.context_tokens
    if tokens is not None and tokens > settings.max_context_tokens:
        raise ApiError(413, "context_tokens", f"{tokens} is over the limit of {settings.max_context_tokens}")
    if not config.use_spatial_transformer:
        tokens = None
    elif tokens is None:
        tokens = PRESETS[preset].context_tokens if preset else 77
    # Activations grow with batch x pixels; refuse what the meta trace itself could not represent sanely.
    pixels = req.batch * (sample[-1] * sample[-2] if len(sample) >= 2 else sample[0])
    if pixels > settings.max_batch * (settings.max_image_size // 8) ** 2:
        raise ApiError(413, "batch", "batch x latent pixels is over the limit")
    return TraceSpec(config, preset, tuple(sample), req.batch, tokens)


class TraceCache:
    """An LRU cache of serialized traces with single-flight computation and a bound on concurrent traces."""

    def __init__(
        self,
        size: int,
        concurrent: int,
        wait_s: float = 30.0,
        time_limit_s: float | None = None,
        pool: TracePool | None = None,
    ) -> None:
        self.size = size
        self.pool = pool
        self.time_limit_s = time_limit_s
        self.wait_s = wait_s
        self._items: OrderedDict[tuple, CachedTrace] = OrderedDict()
        self._inflight: dict[tuple, Future[CachedTrace]] = {}
        self._bodies: OrderedDict[bytes, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrent)
        self.hits = 0
        self.misses = 0

    # Request bodies already resolved, by their exact bytes (see app.fastpath): a repeated request is answered
    # without parsing, validating or resolving it again. Bounded; small bodies only.
    MAX_BODIES = 1024
    MAX_BODY_BYTES = 4096

    def remember_body(self, body: bytes, spec: TraceSpec) -> None:
        if len(body) <= self.MAX_BODY_BYTES:
            with self._lock:
                self._bodies[body] = spec.key
                self._bodies.move_to_end(body)
                while len(self._bodies) > self.MAX_BODIES:
                    self._bodies.popitem(last=False)

    def by_body(self, body: bytes) -> CachedTrace | None:
        """The cached trace of a request body seen before, or None (never seen, or its trace was evicted)."""
        with self._lock:
            key = self._bodies.get(body)
            item = self._items.get(key) if key is not None else None
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return item

    def peek(self, spec: TraceSpec) -> CachedTrace | None:
        """The cached trace, or None; never computes (cheap enough for the event loop)."""
        key = spec.key
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return item

    def get(self, spec: TraceSpec) -> CachedTrace:
        key = spec.key
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
                self.misses += 1
        assert future is not None
        if not owner:
            return future.result()  # someone else is computing the same trace
        try:
            result = self._compute(spec)
        except BaseException as exc:
            future.set_exception(exc)
            with self._lock:
                del self._inflight[key]
            raise
        with self._lock:
            self._items[key] = result
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            del self._inflight[key]
        future.set_result(result)
        return result

    def _compute(self, spec: TraceSpec) -> CachedTrace:
        if not self._slots.acquire(timeout=self.wait_s):
            raise ApiError(503, None, "too many traces are being computed; try again shortly", {"Retry-After": "2"})
        args = (
            spec.preset,
            spec.config.to_dict(),
            spec.sample_size,
            spec.batch,
            spec.context_tokens,
            self.time_limit_s,
        )
        try:
            result = self.pool.submit(*args).result() if self.pool is not None else compute_trace(*args)
        except TraceTimeout:
            raise ApiError(
                413, None, f"the trace ran past the limit of {self.time_limit_s:.0f} s; try a smaller model or input"
            ) from None
        except BrokenProcessPool:
            raise ApiError(503, None, "the trace worker stopped; try again", {"Retry-After": "2"}) from None
        finally:
            self._slots.release()
        return CachedTrace(*result)
