"""The exported static site (issue 27) in a real Chromium at 1280x720, served by a plain `python -m http.server`
(not ours) on 127.0.0.1, with every /api/ request blocked and counted: the U draws, a block opens, compare works,
a precomputed generation scrubs, a lesson plays to its end, what needs compute says it needs the server, a lesson
with a bad step is refused naming the step and the field, and no console error. The request keys the page
computes are the exporter's, byte for byte."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.commands.site_export import export_site, request_key
from sdunet_core.twin import world
from tests.harness import serve_static

pytestmark = pytest.mark.browser

CAPTION = world.EXAMPLES[0]  # the Generate view's default caption, and the one the shipped lesson generates


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("site") / "site"
    export_site(out, presets=["sd1", "sd2"], captions=[CAPTION])
    bad = json.loads((out / "static/lessons/sd-unet-in-20-minutes.json").read_text())
    bad["steps"][1]["colour"] = "rainbow"
    (out / "static/lessons/bad.json").write_text(json.dumps(bad))
    try:
        with serve_static(out) as url:
            yield url
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def no_api(page) -> list[str]:
    """Every request to /api/ is aborted and listed: a static page must make none."""
    asked: list[str] = []

    def block(route) -> None:
        asked.append(route.request.url)
        route.abort()

    page.route("**/api/**", block)
    return asked


def _open(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(url)
    drawn = "() => document.body.dataset.ready === 'true' && document.body.dataset.preset"
    page.wait_for_function(drawn, timeout=30_000)


def test_the_page_draws_opens_and_compares_from_files(page, site, no_api, console_errors) -> None:
    _open(page, f"{site}/")
    assert page.evaluate("document.body.dataset.preset") == "sd1"
    assert page.locator("#diagram g.box").count() > 20
    assert page.inner_text("#error") == ""
    # A block opens (its modules are drawn inside it), from the trace in the file.
    before = page.locator("#diagram g.box").count()
    page.locator('#diagram g.box[data-path="input_blocks.1"]').first.click()
    page.wait_for_function(f"() => document.querySelectorAll('#diagram g.box').length > {before}")
    # Compare with sd2: both traces and the comparison come from files.
    page.click("#tools-toggle")
    page.select_option("#compare-with", "sd2")
    page.wait_for_function("() => ['true', 'error'].includes(document.body.dataset.compare)", timeout=30_000)
    assert page.evaluate("document.body.dataset.compare") == "true", page.inner_text(".compare-status")
    assert page.locator("#compare .compare-differences li").count() > 0
    # The scaling chart is drawn from the file of the sizes the page asks for.
    page.locator("#scaling").scroll_into_view_if_needed()
    page.wait_for_function("() => ['true', 'error'].includes(document.body.dataset.scaling)", timeout=30_000)
    assert page.evaluate("document.body.dataset.scaling") == "true", page.inner_text("#scaling-status")
    page.screenshot(path="test-results/static-site-compare-1280x720.png")
    assert no_api == []
    assert console_errors == []


def test_what_needs_compute_says_it_needs_the_server(page, site, no_api, console_errors) -> None:
    _open(page, f"{site}/")
    page.click("#tools-toggle")
    page.click("#profile")
    page.wait_for_function("() => document.getElementById('profile-status').textContent.includes('needs the server')")
    assert "sdunet-explorer serve" in page.inner_text("#profile-status")
    # sdxl-base was not exported: choosing it says so instead of drawing nothing.
    page.select_option("#model", "sdxl-base")
    page.wait_for_function("() => !document.getElementById('error').hidden")
    assert "needs the server" in page.inner_text("#error")
    assert no_api == []
    assert console_errors == []


def test_a_precomputed_generation_scrubs_and_a_new_one_needs_the_server(page, site, no_api, console_errors) -> None:
    _open(page, f"{site}/")
    page.locator("#generate").scroll_into_view_if_needed()
    page.wait_for_function("() => document.body.dataset.twin === 'ready'", timeout=30_000)
    assert page.input_value("#gen-caption") == CAPTION
    page.click("#gen-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.generate)", timeout=30_000)
    assert page.evaluate("document.body.dataset.generate") == "done", page.inner_text("#gen-error")
    steps = page.locator("#gen-film [data-row='x0'] .gen-thumb").count()
    assert steps == 50
    page.locator("#gen-scrub").fill("3")
    page.wait_for_function("() => document.body.dataset.genStep === '3'")
    assert "step 4 of 50" in page.inner_text("#gen-step-line")
    page.fill("#gen-seed", "7")
    page.click("#gen-go")
    page.wait_for_function("() => document.body.dataset.generate === 'error'")
    assert "needs the server" in page.inner_text("#gen-error")
    assert no_api == []
    assert console_errors == []


def test_a_lesson_plays_to_its_end_with_the_step_in_the_url(page, site, no_api, console_errors) -> None:
    lesson = json.loads(Path("static/lessons/sd-unet-in-20-minutes.json").read_text())
    n = len(lesson["steps"])
    _open(page, f"{site}/?lesson=static/lessons/sd-unet-in-20-minutes.json")
    page.wait_for_function("() => document.body.dataset.lessonShown === '0'", timeout=30_000)
    assert page.evaluate("document.body.dataset.presenting") == "true"
    answers = 0
    for i in range(n):
        step = lesson["steps"][i]
        page.wait_for_function(f"() => document.body.dataset.lessonShown === '{i}'", timeout=30_000)
        assert page.inner_text("#lesson-title") == step["title"]
        page.wait_for_function("(n) => location.search.includes(`step=${n}`)", arg=i + 1)  # written once shown
        if "select" in step:  # the step's module is selected, drawn (its block opened) and marked
            marked = page.evaluate("document.querySelector('#diagram .selected')?.getAttribute('data-path')")
            assert marked == step["select"]
        if "generate" in step:
            assert page.evaluate("document.body.dataset.generate") == "done"
            assert page.evaluate("document.body.dataset.genStep") == str(step["generate"]["step"])
        if "question" in step:
            assert page.is_hidden("#lesson-answer")
            page.keyboard.press("ArrowRight")
            page.wait_for_function(f"() => document.body.dataset.lessonAnswer === '{i}'")
            assert page.inner_text("#lesson-answer").endswith(step["answer"])
            answers += 1
        if i == 4:
            page.screenshot(path="test-results/static-site-lesson-1280x720.png")
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.body.dataset.lessonEnded === 'finished'")
    assert answers == sum("question" in s for s in lesson["steps"]) > 0
    assert "lesson=" not in page.url
    assert no_api == []
    assert console_errors == []


def test_a_lesson_with_a_bad_step_is_refused_naming_the_step_and_field(page, site, no_api, console_errors) -> None:
    _open(page, f"{site}/?lesson=static/lessons/bad.json")
    page.wait_for_function("() => document.body.dataset.lessonError")
    assert page.evaluate("document.body.dataset.lessonError") == "1:colour"
    message = page.inner_text("#lesson-error")
    assert 'step 2: "colour" must be one of' in message, message
    assert page.is_hidden("#lesson-panel")
    assert no_api == []
    assert console_errors == []


def test_the_page_and_the_exporter_make_the_same_keys(page, site) -> None:
    """The key of a request as static_site.js computes it equals the exporter's (app/commands/site_export.py),
    floats and Unicode too."""
    _open(page, f"{site}/")
    cases = [
        ("GET", "/api/scaling", [("sizes", "256,512"), ("preset", "sd1")], None),
        ("POST", "/api/generate", [], {"prompt": "é ü ✓", "guidance": 7.5, "seed": 0, "x": [1e-05, 1e21, 0.1, -3.0]}),
        ("POST", "/api/trace", [], {"preset": "sd1", "image_size": [512, 512], "n": None, "t": True}),
    ]
    for method, path, query, body in cases:
        url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        key = page.evaluate(
            "async ([m, u, b]) => (await import('./static/js/static_site.js')).requestKey(m, u, b)",
            [method, url, body],
        )
        assert key == request_key(method, path, query, body)
