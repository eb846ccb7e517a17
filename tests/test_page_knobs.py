"""The Knobs panel in a real Chromium at 1280x720 against a real server: a knob's run drawn beside its baseline
with the difference and the metrics the API gives, a bad word named by the server, and the sweep's small U."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser

RUN_MS = 180_000  # the first run starts the capture process


def _open(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#tiny")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#knobs").scroll_into_view_if_needed()


def _run(page) -> None:
    page.click("#knob-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.knobs)", timeout=RUN_MS)


def test_a_knob_is_drawn_beside_the_baseline_with_the_difference(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.fill("#knob-steps", "10")
    page.fill("#knob-seed", "3")
    page.select_option("#knob-kind", "cut_skip")
    assert "skips carry" in page.inner_text("#knob-says")
    _run(page)
    assert page.evaluate("document.body.dataset.knobs") == "done"
    body = {"prompt": page.input_value("#knob-caption"), "seed": 3, "steps": 10, "guidance": 3.0, "return": ["x0"],
            "interventions": [{"kind": "cut_skip", "from_step": 0, "blocks": "all", "mode": "zero"}]}  # fmt: skip
    api = httpx.post(f"{live_server}/api/generate", json=body, timeout=300).json()
    assert page.get_attribute("#knob-result", "src") == api["image"]
    assert page.get_attribute("#knob-baseline", "src") == api["experiment"]["baseline"]
    assert page.get_attribute("#knob-difference", "src") == api["experiment"]["difference"]
    assert page.inner_text("#knob-ssim") == f"SSIM {api['experiment']['ssim']:.3f}"
    sizes = page.eval_on_selector_all(".knob-figure img", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(sizes) == 3 and min(sizes) >= 128
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.locator("#knob-output").scroll_into_view_if_needed()
    page.screenshot(path="test-results/knobs-1280x720.png")


def test_the_cache_slider_reports_the_macs_saved(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.fill("#knob-steps", "9")
    page.select_option("#knob-kind", "cache")
    page.locator("#knob-every").fill("3")
    assert page.inner_text("#knob-every-value") == "3 steps"
    _run(page)
    assert "(3 full, 6 shallow calls)" in page.inner_text("#knob-macs")


def test_a_word_not_in_the_caption_is_named(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.fill("#knob-steps", "4")
    page.select_option("#knob-kind", "token_weight")
    page.fill("#knob-word", "purple")
    _run(page)
    assert page.evaluate("document.body.dataset.knobs") == "error"
    assert "interventions[0].word" in page.inner_text("#knob-error")


def test_the_sweep_paints_the_u_by_the_effect_of_removing_each_skip(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.select_option("#knob-sweep-what", "skips")
    page.click("#knob-sweep-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.sweep)", timeout=RUN_MS)
    assert page.evaluate("document.body.dataset.sweep") == "done"
    painted = page.eval_on_selector_all("#knob-u .knob-u-cell:not(.off)", "els => els.map(e => e.dataset.path)")
    assert sorted(painted) == [f"output_blocks.{i}" for i in range(6)]
    page.locator("#knob-u").scroll_into_view_if_needed()
    page.screenshot(path="test-results/knobs-sweep-1280x720.png")
