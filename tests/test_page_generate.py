"""The Generate view in a real Chromium at 1280x720 against a real server: the twin's words, a generation drawn
from the API's answer (the picture, the reader's verdict, a filmstrip of every step, the scrubber), the server's
reason for a word it does not know, and a look inside the UNet at a chosen step (word heat maps of the caption)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser

GENERATE_S = 180_000  # ms: the first generation starts the capture process


def _open(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#tiny")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#generate").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.twin === 'ready'")


def _generate(page) -> None:
    page.click("#gen-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.generate)", timeout=GENERATE_S)


def test_a_generation_fills_the_filmstrip_and_the_scrubber(page, live_server, console_errors) -> None:
    _open(page, live_server)
    twin = httpx.get(f"{live_server}/api/twin", timeout=60).json()
    words = page.eval_on_selector_all("#gen-words .gen-word", "els => els.map(e => e.dataset.word)")
    assert words == [w for group in twin["vocabulary"].values() for w in group]
    page.fill("#gen-caption", "a small blue square")
    page.click("#gen-words .gen-word[data-word='in']")
    assert page.input_value("#gen-caption") == "a small blue square in"
    page.fill("#gen-caption", "a large yellow circle in the center on a black background")
    page.fill("#gen-steps", "12")
    page.fill("#gen-seed", "4")
    _generate(page)
    assert page.evaluate("document.body.dataset.generate") == "done"
    body = {"prompt": "a large yellow circle in the center on a black background", "seed": 4, "steps": 12}
    api = httpx.post(f"{live_server}/api/generate", json=body, timeout=300).json()
    assert page.get_attribute("#gen-image", "src") == api["image"]
    assert page.inner_text("#gen-reading") == api["reading"]["text"]
    for row in ("x_t", "eps", "x0"):
        assert page.locator(f"#gen-film [data-row='{row}'] .gen-thumb").count() == 12
    # The scrubber starts at the last step; moving it shows that step's three pictures and its timestep.
    assert page.evaluate("document.body.dataset.genStep") == "11"
    page.locator("#gen-scrub").fill("2")
    page.wait_for_function("() => document.body.dataset.genStep === '2'")
    assert f"t = {api['per_step'][2]['t']}" in page.inner_text("#gen-step-line")
    shown = page.eval_on_selector_all("#gen-step-images img", "els => els.map(e => e.getAttribute('src'))")
    assert shown == [api["per_step"][2][k] for k in ("x_t", "eps", "x0")]
    # Every picture is drawn at least 128 px and the view fits the projector's width.
    sizes = page.eval_on_selector_all("#gen-step-images img", "els => els.map(e => e.getBoundingClientRect().width)")
    assert min(sizes) >= 128
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path="test-results/generate-1280x720.png")


def test_an_unknown_word_is_named_beside_the_caption(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.fill("#gen-caption", "a red dragon")
    _generate(page)
    assert page.evaluate("document.body.dataset.generate") == "error"
    assert "'dragon' is not in the twin's vocabulary" in page.inner_text("#gen-error")
    assert page.get_attribute("#gen-caption", "aria-invalid") == "true"


def test_look_inside_at_a_step_draws_the_captions_heat_maps(page, live_server, console_errors) -> None:
    _open(page, live_server)
    page.fill("#gen-caption", "a red circle at the top left")
    page.fill("#gen-steps", "6")
    _generate(page)
    page.locator("#gen-scrub").fill("3")
    page.click("#gen-look")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.look)", timeout=GENERATE_S)
    assert page.evaluate("document.body.dataset.look") == "done"
    inside = page.inner_text("#gen-inside")
    assert "Inside the UNet at step 4" in inside and "red" in inside and "circle" in inside
    assert page.locator("#gen-inside canvas.act-heat").count() > 0
