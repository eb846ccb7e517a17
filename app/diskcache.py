"""Traces on disk, so that a restarted server answers at once.

Content-addressed: a trace's file name is the SHA-256 of everything its content depends on (the config, the
preset name it is labelled with, the input, the trace schema version and the torch version), so a stale entry
is never found, only left to age out. Each file holds one line of JSON (ETag, totals, input, body size) and
then the gzipped trace. Writes go to a temporary file and are renamed into place, so a reader never sees half
a file; the directory is kept under a size bound by deleting the least recently used files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def default_dir() -> Path:
    """$SDUNET_CACHE_DIR, else $XDG_CACHE_HOME/sdunet-explorer, else ~/.cache/sdunet-explorer."""
    if explicit := os.environ.get("SDUNET_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdunet-explorer"


class DiskCache:
    """get/put of (meta, gzipped body) by hex key under `root / "traces"`, at most `max_bytes` in all."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.dir = root / "traces"
        self.max_bytes = max_bytes
        self._written = 0  # bytes written since the last prune

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.trace"

    def get(self, key: str) -> tuple[dict[str, Any], bytes] | None:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                meta = json.loads(f.readline())
                gzipped = f.read()
            os.utime(path)  # least recently *used* goes first when pruning
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable or torn: drop it, the trace is computed again
            log.warning("trace cache: dropping unreadable %s (%s)", path.name, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        if len(gzipped) != meta.get("gzipped_bytes"):
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return meta, gzipped

    def put(self, key: str, meta: dict[str, Any], gzipped: bytes) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            head = json.dumps({**meta, "gzipped_bytes": len(gzipped)}, separators=(",", ":")).encode() + b"\n"
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(head)
                f.write(gzipped)
            os.replace(tmp, self._path(key))
        except OSError as exc:  # a full or read-only disk only costs the cache
            log.warning("trace cache: cannot write %s (%s)", self.dir, exc)
            return
        self._written += len(gzipped)
        if self._written > self.max_bytes // 8:
            self._written = 0
            self.prune()

    def prune(self) -> None:
        """Delete the least recently used files until the directory is within max_bytes."""
        try:
            files = [(p.stat(), p) for p in self.dir.glob("*.trace")]
        except OSError:
            return
        total = sum(st.st_size for st, _ in files)
        for st, path in sorted(files, key=lambda f: f[0].st_mtime):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= st.st_size
