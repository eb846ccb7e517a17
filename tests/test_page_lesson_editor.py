"""The lesson editor (issue 27) in a real Chromium at 1280x720 against a real server: a generation of the twin on
screen is recorded with the step (caption, seed, steps, guidance, sampler and the step the scrubber shows), saved
as a file, and that file played back on a fresh page shows the same generation at the same step; a view of the
diagram recorded with the Generate view out of sight carries no generation. A Knobs run on screen is recorded and
played back the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

GENERATE_S = 180_000  # ms: the first generation starts the capture process
CAPTION = "a small blue square in the center on a white background"

# What the Generate view shows of the generation on screen: the picture, the reader's verdict, the step line and
# the step's x_t / ε̂ / x̂₀ pictures.
SHOWN = """() => ({
  caption: document.getElementById('gen-caption').value,
  image: document.getElementById('gen-image').getAttribute('src'),
  reading: document.getElementById('gen-reading').textContent,
  line: document.getElementById('gen-step-line').textContent,
  step: [...document.querySelectorAll('#generate figure[data-row] img')].map((i) => i.getAttribute('src')),
})"""


def _open(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#sd1")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")


def _record(page, title: str) -> None:
    # The menu is fixed under the top bar: its buttons are clicked where they are, with no scrolling of the page.
    page.fill("#lesson-draft-step-title", title)
    page.fill("#lesson-draft-text", f"What {title} shows.")
    page.click("#lesson-record")


def test_a_recorded_generation_plays_back_the_same(page, live_server, console_errors, tmp_path: Path) -> None:
    _open(page, live_server)
    # Opened without a click's scrolling (the top bar scrolls away with the page).
    page.locator("#lessons").dispatch_event("click")
    page.wait_for_function("() => !document.getElementById('lesson-menu').hidden")
    _record(page, "the U")  # the Generate view is out of sight: no generation in this step
    page.locator("#generate").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.twin === 'ready'")
    page.fill("#gen-caption", CAPTION)
    page.fill("#gen-seed", "3")
    page.fill("#gen-steps", "8")
    page.fill("#gen-guidance", "2.5")
    page.click("#gen-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.generate)", timeout=GENERATE_S)
    assert page.evaluate("document.body.dataset.generate") == "done", page.inner_text("#gen-error")
    page.locator("#gen-scrub").fill("5")
    page.wait_for_function("() => document.body.dataset.genStep === '5'")
    before = page.evaluate(SHOWN)
    sampler = page.input_value("#gen-sampler")
    page.locator("#generate").scroll_into_view_if_needed()
    _record(page, "the loop")
    assert page.inner_text("#lesson-draft-count") == "2 steps"
    with page.expect_download() as saving:
        page.click("#lesson-save")
    file = tmp_path / "recorded.json"
    saving.value.save_as(file)
    lesson = json.loads(file.read_text())
    assert [s["title"] for s in lesson["steps"]] == ["the U", "the loop"]
    assert "generate" not in lesson["steps"][0]
    want = {"prompt": CAPTION, "seed": 3, "steps": 8, "guidance": 2.5, "sampler": sampler, "step": 5}
    assert lesson["steps"][1]["generate"] == want

    # Played back on a fresh page, from the file: the same generation, at the same step.
    _open(page, live_server)
    page.locator("#lessons").dispatch_event("click")
    page.set_input_files("#lesson-file", str(file))
    page.wait_for_function("() => document.body.dataset.lessonShown === '0'")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.body.dataset.lessonShown === '1'", timeout=GENERATE_S)
    assert page.evaluate("document.body.dataset.generate") == "done"
    assert page.evaluate("document.body.dataset.genStep") == "5"
    assert page.evaluate(SHOWN) == before
    assert page.input_value("#gen-seed") == "3"
    assert page.input_value("#gen-steps") == "8"
    page.screenshot(path="test-results/lesson-editor-generation-1280x720.png")
    assert console_errors == []


KNOB_SHOWN = """() => ({
  caption: document.getElementById('knob-caption').value,
  kind: document.getElementById('knob-kind').value,
  result: document.getElementById('knob-result').getAttribute('src'),
  baseline: document.getElementById('knob-baseline').getAttribute('src'),
  metrics: document.getElementById('knob-metrics').textContent,
})"""


def test_a_recorded_knobs_run_plays_back_the_same(page, live_server, console_errors, tmp_path: Path) -> None:
    _open(page, live_server)
    page.locator("#lessons").dispatch_event("click")
    page.locator("#knobs").scroll_into_view_if_needed()
    page.fill("#knob-caption", CAPTION)
    page.fill("#knob-steps", "6")
    page.select_option("#knob-kind", "token_weight")
    page.fill("#knob-word", "blue")
    page.fill("#knob-weight", "0.5")
    page.click("#knob-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.knobs)", timeout=GENERATE_S)
    assert page.evaluate("document.body.dataset.knobs") == "done", page.inner_text("#knob-error")
    before = page.evaluate(KNOB_SHOWN)
    page.locator("#knobs").scroll_into_view_if_needed()
    _record(page, "a word weighed")
    with page.expect_download() as saving:
        page.click("#lesson-save")
    file = tmp_path / "knobs.json"
    saving.value.save_as(file)
    step = json.loads(file.read_text())["steps"][0]
    assert "generate" not in step  # no generation was on screen
    assert step["knobs"] == {
        "prompt": CAPTION,
        "seed": 0,
        "steps": 6,
        "guidance": 3,
        "interventions": [{"kind": "token_weight", "from_step": 0, "word": "blue", "weight": 0.5}],
    }

    _open(page, live_server)
    page.locator("#lessons").dispatch_event("click")
    page.set_input_files("#lesson-file", str(file))
    page.wait_for_function("() => document.body.dataset.lessonShown === '0'", timeout=GENERATE_S)
    assert page.evaluate("document.body.dataset.knobs") == "done"
    assert page.evaluate(KNOB_SHOWN) == before
    assert page.input_value("#knob-word") == "blue"
    page.screenshot(path="test-results/lesson-editor-knobs-1280x720.png")
    assert console_errors == []
