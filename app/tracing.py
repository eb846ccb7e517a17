"""The one trace cache: serialized traces by their resolved spec, in memory (bounded in bytes) and on disk.

A request is resolved to a `TraceSpec` (app.resolve); its trace is looked up in memory, then on disk, and
computed in a worker process only when both miss. Identical concurrent requests share one computation (single
flight). Callers get a `concurrent.futures.Future`: an async handler awaits it without holding a thread, so a
hundred uncached traces waiting for the two workers take no thread from the pool that sync handlers use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from app.diskcache import DiskCache
from app.errors import shutting_down
from app.workers.pool import WorkerPool
from sdunet_core import UNetConfig
from sdunet_core.control.controlnet import ControlNetConfig
from sdunet_core.tracer.trace import SCHEMA_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TraceSpec:
    """A fully resolved trace: the config, the preset name it was asked by (None for a custom config) and every
    input size; hashable and canonical."""

    config: UNetConfig
    preset: str | None
    sample_size: tuple[int, ...]
    batch: int
    context_tokens: int | None
    dtype: str = "float32"
    # A ControlNet preset: the ControlNet (its `config` is then the UNet it copies) and its control scales.
    control: ControlNetConfig | None = None
    control_scales: tuple[float, ...] | None = None

    @property
    def key(self) -> tuple:
        # The config is a frozen dataclass of tuples and scalars: it hashes and compares by value. The preset name
        # is part of the key because the trace is labelled with it (sd2 and sd2-v are the same network).
        base = (self.config, self.preset, self.sample_size, self.batch, self.context_tokens, self.dtype)
        return base if self.control is None else (*base, self.control, self.control_scales)

    @property
    def digest(self) -> str:
        """The content address on disk: everything the trace depends on, torch and the schema included."""
        data = {
            "schema_version": SCHEMA_VERSION,
            "torch": torch.__version__,
            "config": self.config.to_dict(),
            "preset": self.preset,
            "sample_size": list(self.sample_size),
            "batch": self.batch,
            "context_tokens": self.context_tokens,
            "dtype": self.dtype,
        }
        if self.control is not None:  # a UNet's digest stays what it was: its disk cache stays valid
            data["control"] = self.control.to_dict()
            data["control_scales"] = list(self.control_scales or ())
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def task_args(self) -> tuple:
        args = (self.preset, self.config.to_dict(), self.sample_size, self.batch, self.context_tokens, self.dtype)
        if self.control is None:
            return args
        return (*args, self.control.to_dict(), list(self.control_scales) if self.control_scales else None)


@dataclass(frozen=True)
class CachedTrace:
    body: bytes  # JSON
    gzipped: bytes
    etag: str
    totals: dict[str, Any]
    input: dict[str, Any]

    @property
    def nbytes(self) -> int:
        return len(self.body) + len(self.gzipped)

    def summary(self) -> dict[str, Any]:
        """The parts /api/scaling reads, without parsing the whole body."""
        return {"totals": self.totals, "input": self.input}

    def response_parts(
        self, accept_encoding: str, if_none_match: str | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) of the HTTP answer: 304 on a matching ETag, gzip when the client takes it."""
        headers = [("etag", self.etag), ("cache-control", "private, max-age=3600"), ("vary", "Accept-Encoding")]
        if if_none_match is not None and self.etag in [t.strip() for t in if_none_match.split(",")]:
            return 304, headers, b""
        headers.append(("content-type", "application/json"))
        if "gzip" in accept_encoding:
            return 200, [*headers, ("content-encoding", "gzip")], self.gzipped  # compressed once, when made
        return 200, headers, self.body


class TraceStore:
    """Memory (LRU, at most `memory_bytes`), then disk, then a worker; one computation per spec at a time."""

    def __init__(
        self, pool: WorkerPool, *, memory_bytes: int, disk: DiskCache | None, time_limit_s: float | None
    ) -> None:
        self.pool = pool
        self.memory_bytes = memory_bytes
        self.disk = disk
        self.time_limit_s = time_limit_s
        self._items: OrderedDict[tuple, CachedTrace] = OrderedDict()
        self._held = 0
        self._inflight: dict[tuple, Future[CachedTrace]] = {}
        self._lock = threading.Lock()
        # Disk reads and writes, off the event loop and off the threads that serve requests.
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trace-io")
        self.hits = self.misses = self.disk_hits = 0

    @property
    def held_bytes(self) -> int:
        return self._held

    def peek(self, spec: TraceSpec) -> CachedTrace | None:
        """The trace if it is in memory, else None; never waits (cheap enough for the event loop)."""
        with self._lock:
            item = self._items.get(spec.key)
            if item is not None:
                self._items.move_to_end(spec.key)
                self.hits += 1
            return item

    async def get(self, spec: TraceSpec) -> CachedTrace:
        return self.peek(spec) or await asyncio.wrap_future(self.future(spec))

    def future(self, spec: TraceSpec) -> Future[CachedTrace]:
        """A future of the trace: done at once on a memory hit, shared with any identical request in flight."""
        key = spec.key
        with self._lock:
            if key in self._items:
                done: Future[CachedTrace] = Future()
                done.set_result(self._items[key])
                self.hits += 1
                return done
            future = self._inflight.get(key)
            if future is not None:
                return future
            future = self._inflight[key] = Future()
            # Shared by every request for this spec: one request's end (a cancelled await) must not cancel it for
            # the others, nor leave the thread that settles it an InvalidStateError. A running future cannot be.
            future.set_running_or_notify_cancel()
        self._io.submit(self._load_or_compute, spec, future)
        return future

    def clear_memory(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    def shutdown(self) -> None:
        self._io.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # a load that never started leaves its requests waiting: they get the 503 instead
            waiting, self._inflight = list(self._inflight.values()), {}
        for future in waiting:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(shutting_down())

    # ---- behind the future -------------------------------------------------------------------------
    def _load_or_compute(self, spec: TraceSpec, future: Future[CachedTrace]) -> None:
        try:
            found = self.disk.get(spec.digest) if self.disk is not None else None
            if found is not None:
                meta, gzipped = found
                item = CachedTrace(gzip.decompress(gzipped), gzipped, meta["etag"], meta["totals"], meta["input"])
                self.disk_hits += 1
                self._settle(spec, future, item)
                return
            self.misses += 1
            computed = self.pool.submit("trace", *spec.task_args(), time_limit_s=self.time_limit_s, what="the trace")
        except BaseException as exc:
            self._fail(spec, future, exc)
            return
        computed.add_done_callback(lambda f: self._computed(spec, future, f))

    def _computed(self, spec: TraceSpec, future: Future[CachedTrace], computed: Future) -> None:
        # Runs on the worker pool's manager thread: keep it short, write to disk elsewhere.
        exc = computed.exception()
        if exc is not None:
            self._fail(spec, future, exc)
            return
        body, gzipped, etag, totals, inputs = computed.result()
        item = CachedTrace(body, gzipped, etag, totals, inputs)
        self._settle(spec, future, item)
        if self.disk is not None:
            meta = {"etag": etag, "totals": totals, "input": inputs}
            with contextlib.suppress(RuntimeError):  # shutting down: the trace is only not kept on disk
                self._io.submit(self.disk.put, spec.digest, meta, gzipped)

    def _settle(self, spec: TraceSpec, future: Future[CachedTrace], item: CachedTrace) -> None:
        with self._lock:
            if (old := self._items.pop(spec.key, None)) is not None:
                self._held -= old.nbytes
            if item.nbytes <= self.memory_bytes // 4:  # a huge trace is served from disk instead of crowding out
                self._items[spec.key] = item
                self._held += item.nbytes
                while self._held > self.memory_bytes and self._items:
                    _, old = self._items.popitem(last=False)
                    self._held -= old.nbytes
            self._inflight.pop(spec.key, None)
        with contextlib.suppress(InvalidStateError):  # already failed by shutdown()
            future.set_result(item)

    def _fail(self, spec: TraceSpec, future: Future[CachedTrace], exc: BaseException) -> None:
        with self._lock:
            self._inflight.pop(spec.key, None)
        with contextlib.suppress(InvalidStateError):  # already failed by shutdown()
            future.set_exception(exc)
