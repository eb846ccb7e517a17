"""The page's vocabularies equal the trace's: kinds.js has one entry per category of `CATEGORIES`, one per resample
method, and flows.js draws every flow op; a category added on one side only fails here, not silently on the page
(`?? node.kind`). The JS modules are imported by Node itself, as the page's own ES modules."""

from __future__ import annotations

import json
import shutil
import subprocess
import typing
from pathlib import Path

import pytest

from sdunet_core.model.flow import FLOW_OPS
from sdunet_core.schema import CATEGORIES, ResampleMethod

JS = Path(__file__).resolve().parent.parent / "static" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def _keys() -> dict[str, list[str]]:
    script = (
        f"const k = await import({json.dumps((JS / 'kinds.js').as_uri())});"
        f"const f = await import({json.dumps((JS / 'flows.js').as_uri())});"
        "console.log(JSON.stringify({kinds: Object.keys(k.KINDS), resample: Object.keys(k.RESAMPLE),"
        " flow: Object.keys(f.FLOW_ITEMS)}));"
    )
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_kinds_are_the_categories_in_their_order() -> None:
    assert _keys()["kinds"] == list(CATEGORIES)


def test_every_resample_method_has_words() -> None:
    assert sorted(_keys()["resample"]) == sorted(typing.get_args(ResampleMethod))


def test_every_flow_op_is_drawn() -> None:
    # A `module` step is a box; every other op is drawn as FLOW_ITEMS says.
    assert sorted(_keys()["flow"]) == sorted(op for op in FLOW_OPS if op != "module")
