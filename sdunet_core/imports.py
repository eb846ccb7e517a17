"""diffusers' names, imported under one lock.

diffusers resolves its names lazily: its top-level module imports a submodule the first time one of its names is
asked for. Two threads asking at once can meet a half-initialised submodule and fail with "cannot import name …"
(a probe job in a worker thread once raced the page's first twin request this way). Every diffusers name the
project uses is fetched here, so those first imports happen one at a time whatever thread asks.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

_LOCK = threading.Lock()


def from_diffusers(name: str, module: str = "diffusers") -> Any:
    """`from <module> import <name>`, serialised with every other diffusers import of the project."""
    with _LOCK:
        return getattr(importlib.import_module(module), name)
