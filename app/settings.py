"""Settings from environment variables (prefix SDUNET_), read once through a cached getter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from app.diskcache import default_dir


def _page_dir(name: str) -> Path:
    """The page's `templates` or `static` folder, found through the imported `app` package, from any directory.

    An installed wheel holds them inside the package (app/templates, app/static: pyproject maps them there); in a
    checkout or an editable install they sit at the top of the repository, beside app/, and are served from there.
    """
    package = resources.files("app")
    if not isinstance(package, Path):  # a zip import: StaticFiles and Jinja need real folders
        raise RuntimeError(f"the app package must be installed as files, not imported from {package}")
    for folder in (package / name, package.parent / name):
        if folder.is_dir():
            return folder
    raise RuntimeError(f"the page's {name}/ folder is missing: neither {package / name} nor {package.parent / name}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(f"SDUNET_{name}")
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"SDUNET_{name} must be an integer, got {raw!r}") from None


def _seconds(name: str, default: float) -> float:
    """A duration in seconds: fractions allowed (a limit of 0.5 s is a fair thing to ask for)."""
    raw = os.environ.get(f"SDUNET_{name}")
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise SystemExit(f"SDUNET_{name} must be a number of seconds (0 or more), got {raw!r}")
    return value


def _list(name: str, default: str = "") -> tuple[str, ...]:
    return tuple(v.strip() for v in os.environ.get(f"SDUNET_{name}", default).split(",") if v.strip())


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    allowed_hosts: tuple[str, ...]  # Host header values served besides the bind address and localhost names
    cache_bytes: int  # serialized traces kept in memory
    disk_cache_bytes: int  # traces kept on disk; 0 keeps none
    cache_dir: Path
    trace_workers: int  # worker processes that build and trace models (at least 1: never in the server's own)
    max_pending_tasks: int  # tasks waiting for a worker; more are refused with 503
    devices: tuple[str, ...]  # devices allowed for timed profiles
    max_image_size: int  # pixels per side
    max_batch: int
    max_context_tokens: int
    max_modules: int  # modules of one model (bounds the time to build and trace it)
    max_params: int
    max_activation_bytes: int  # activations of one forward
    max_queue: int  # profile jobs waiting per device
    trace_time_limit_s: float  # a task in a worker (build and trace) that runs longer is refused
    profile_time_limit_s: int  # a timed profile that runs longer fails
    profile_memory_bytes: int  # 0: the device's free memory is the only budget
    max_body_bytes: int  # request bodies over this are refused with 413
    header_timeout_s: int  # a connection gets this long to send a request's headers
    body_timeout_s: int  # ... and this long between two parts of its body
    keep_alive_s: int  # an idle keep-alive connection is closed after this
    shutdown_grace_s: float  # on SIGTERM, requests still running after this are answered 503
    max_connections: int  # concurrent connections and requests; more are answered 503
    weights: str | None  # a local weights file used by profiles (serve --weights)
    cors_origins: tuple[str, ...]
    templates_dir: Path
    static_dir: Path


@lru_cache
def get_settings() -> Settings:
    env = os.environ.get
    return Settings(
        host=env("SDUNET_HOST", "127.0.0.1"),
        port=_int("PORT", 8000),
        allowed_hosts=_list("ALLOWED_HOSTS"),
        cache_bytes=_int("CACHE_MB", 256) * 2**20,
        disk_cache_bytes=_int("DISK_CACHE_MB", 1024) * 2**20,
        cache_dir=default_dir(),
        trace_workers=max(1, _int("TRACE_WORKERS", 2)),
        max_pending_tasks=_int("MAX_PENDING_TASKS", 256),
        devices=_list("DEVICES", "cpu,cuda"),
        max_image_size=_int("MAX_IMAGE_SIZE", 4096),
        max_batch=_int("MAX_BATCH", 64),
        max_context_tokens=_int("MAX_CONTEXT_TOKENS", 1024),
        # SDXL base has 2,034 modules and 2.6 G parameters; its forward at 4096 px and batch 64 makes ~11 TiB.
        max_modules=_int("MAX_MODULES", 20_000),
        max_params=_int("MAX_PARAMS", 20_000_000_000),
        max_activation_bytes=_int("MAX_ACTIVATION_GB", 1 << 20) * 2**30,
        max_queue=_int("MAX_QUEUE", 16),
        trace_time_limit_s=_seconds("TRACE_TIME_LIMIT", 60),
        profile_time_limit_s=_int("PROFILE_TIME_LIMIT", 600),
        profile_memory_bytes=_int("PROFILE_MEMORY_MB", 0) * 2**20,
        max_body_bytes=_int("MAX_BODY_MB", 32) * 2**20,
        header_timeout_s=_int("HEADER_TIMEOUT", 10),
        body_timeout_s=_int("BODY_TIMEOUT", 30),
        keep_alive_s=_int("KEEP_ALIVE", 5),
        shutdown_grace_s=_seconds("SHUTDOWN_GRACE", 5),
        max_connections=_int("MAX_CONNECTIONS", 1000),
        weights=env("SDUNET_WEIGHTS") or None,
        cors_origins=_list("CORS_ORIGINS"),
        templates_dir=_page_dir("templates"),
        static_dir=_page_dir("static"),
    )
