"""The Knobs panel's model choice in a real Chromium at 1280x720: offered only by a server with a checkpoint, and a
knob run on that checkpoint drawn with the pictures and metrics its job returns (no reader's verdict there)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.activation_fixtures import write_checkpoint
from tests.harness import serve

pytestmark = pytest.mark.browser

RUN_MS = 180_000  # the first run starts the capture process and builds the checkpoint's model there


@pytest.fixture(scope="module")
def checkpoint_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("knobs-page-ckpt") / "tiny-sd1.safetensors"
    write_checkpoint(path)
    env = {"SDUNET_WEIGHTS": str(path), "SDUNET_TRACE_WORKERS": "0"}
    with serve(env=env, log=tmp_path_factory.mktemp("knobs-page-server") / "uvicorn.log") as (url, _proc):
        yield url


def _open(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#tiny")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.wait_for_function("() => document.body.dataset.knobsModels !== undefined")
    page.locator("#knobs").scroll_into_view_if_needed()


def test_without_a_checkpoint_the_panel_offers_the_twin_only(page, live_server, console_errors) -> None:
    _open(page, live_server)
    assert page.evaluate("document.body.dataset.knobsModels") == "twin"
    assert not page.locator("#knob-model").is_visible()
    assert console_errors == []


def test_a_knob_runs_on_the_servers_checkpoint(page, checkpoint_server, console_errors) -> None:
    _open(page, checkpoint_server)
    assert page.evaluate("document.body.dataset.knobsModels") == "twin+checkpoint"
    assert "tiny-sd1.safetensors" in page.inner_text("#knob-model")
    assert not page.locator("#knob-size").is_visible()  # the twin draws 32x32: no size to choose
    page.select_option("#knob-model", "checkpoint")
    page.select_option("#knob-size", "128")
    page.fill("#knob-caption", "a photo of a dog")
    page.fill("#knob-steps", "3")
    page.fill("#knob-seed", "2")
    page.fill("#knob-guidance", "7.5")
    page.select_option("#knob-kind", "cut_skip")
    page.click("#knob-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.knobs)", timeout=RUN_MS)
    assert page.evaluate("document.body.dataset.knobs") == "done", page.inner_text("#knob-error")
    # The same request as a job of its own: the same seed on the same model gives the same pictures.
    body = {"prompt": "a photo of a dog", "seed": 2, "steps": 3, "guidance": 7.5, "image_size": [128, 128],
            "interventions": [{"kind": "cut_skip", "from_step": 0, "blocks": "all", "mode": "zero"}]}  # fmt: skip
    job = httpx.post(f"{checkpoint_server}/api/interventions", json=body, timeout=60).json()
    for _ in range(1200):  # a bound for a busy machine, not a timing
        snap = httpx.get(f"{checkpoint_server}/api/interventions/{job['id']}", timeout=30).json()
        if snap["state"] not in ("queued", "running"):
            break
        time.sleep(0.25)
    result = snap["result"]
    assert page.get_attribute("#knob-result", "src") == result["image"]
    assert page.get_attribute("#knob-baseline", "src") == result["baseline"]
    assert page.get_attribute("#knob-difference", "src") == result["difference"]
    assert page.inner_text("#knob-ssim") == f"SSIM {result['ssim']:.3f}"
    assert "no reader’s verdict" in page.inner_text("#knob-same")
    assert page.get_attribute("#knob-same", "title") == result["verdict_reason"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.locator("#knob-output").scroll_into_view_if_needed()
    page.screenshot(path="test-results/knobs-checkpoint-1280x720.png")
    assert console_errors == []
