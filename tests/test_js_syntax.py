"""Every module of the page parses as an ES module (Node's own parser, `node --check`): a merge that loses a brace
fails here by its file and line, not later as a blank page in a browser test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "static" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
MODULES = sorted(p for p in JS.rglob("*.js") if "vendor" not in p.parts)


def test_the_page_has_modules_to_check():
    assert len(MODULES) > 40 and JS / "main.js" in MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(JS)))
def test_each_module_parses(module: Path):
    # static/js/package.json says "type": "module", so Node parses these as the browser does: as ES modules.
    done = subprocess.run([NODE, "--check", str(module)], capture_output=True, text=True)  # type: ignore[list-item]
    assert done.returncode == 0, done.stderr
