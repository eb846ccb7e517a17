"""Settings from environment variables (prefix SDUNET_), read once through a cached getter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path


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


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    cache_size: int  # traces kept in the LRU cache
    max_concurrent_traces: int  # traces computed at once
    devices: tuple[str, ...]  # devices allowed for timed profiles
    max_image_size: int  # pixels per side
    max_batch: int
    max_context_tokens: int
    max_queue: int  # profile jobs waiting per device
    trace_workers: int  # processes computing traces; 0 computes them in the server's own threads
    trace_time_limit_s: int  # a meta trace that runs longer is refused
    profile_time_limit_s: int  # a timed profile that runs longer fails
    profile_memory_bytes: int  # 0: the device's free memory is the only budget
    max_body_bytes: int  # request bodies over this are refused with 413
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
        cache_size=_int("CACHE_SIZE", 64),
        max_concurrent_traces=_int("CONCURRENT_TRACES", 2),
        devices=tuple(d for d in env("SDUNET_DEVICES", "cpu,cuda").split(",") if d),
        max_image_size=_int("MAX_IMAGE_SIZE", 4096),
        max_batch=_int("MAX_BATCH", 64),
        max_context_tokens=_int("MAX_CONTEXT_TOKENS", 1024),
        max_queue=_int("MAX_QUEUE", 16),
        trace_workers=_int("TRACE_WORKERS", 2),
        trace_time_limit_s=_int("TRACE_TIME_LIMIT", 60),
        profile_time_limit_s=_int("PROFILE_TIME_LIMIT", 600),
        profile_memory_bytes=_int("PROFILE_MEMORY_MB", 0) * 2**20,
        max_body_bytes=_int("MAX_BODY_MB", 32) * 2**20,
        weights=env("SDUNET_WEIGHTS") or None,
        cors_origins=tuple(o for o in env("SDUNET_CORS_ORIGINS", "").split(",") if o),
        templates_dir=_page_dir("templates"),
        static_dir=_page_dir("static"),
    )
