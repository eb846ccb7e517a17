"""The Probes view in a real Chromium at 1280x720 against a real server: a probe run drawn from the API's answer
(the accuracy chart with its control and chance, the ranked points, the sentence against the study), a click on a
point that shows the twin's U and selects the point's module, and a correspondence click marking the best match."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser

RUN_MS = 480_000  # a wait bound, not a speed claim: a loaded 2-core machine took over 240 s once
TOP = "svg.unet .layer-boxes > g.box"  # the U's top-level blocks


def test_a_probe_run_draws_the_chart_the_ranking_and_selects_a_point_on_the_u(page, live_server, console_errors):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#tiny")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#probes").scroll_into_view_if_needed()
    page.select_option("#probe-points", "@outputs")
    for target in ("size", "position", "background"):
        page.uncheck(f"#probe-target-{target}")
    page.fill("#probe-timesteps", "0 500 900")
    page.fill("#probe-n", "48")
    page.click("#probe-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#probes').dataset.state)",
                           timeout=RUN_MS)  # fmt: skip
    assert page.get_attribute("#probes", "data-state") == "done", page.inner_text("#probe-error")

    # The chart: six point lines, the control and chance; x is the sweep.
    data = page.evaluate("document.getElementById('probe-chart').data.map(t => [t.name, t.x])")
    names = [name for name, _ in data]
    assert len(names) == 6 + 2 and names[-2].startswith("shuffled-label control") and names[-1] == "chance"
    assert all(x == [0, 500, 900] for _, x in data)
    # The ranking at the middle t lists every point, best first, with its control.
    ranked = page.eval_on_selector_all("#probe-ranking .probe-point", "els => els.map(e => e.dataset.point)")
    assert len(ranked) == 25
    accs = [float(a.rstrip("%")) for a in page.eval_on_selector_all(".probe-acc", "els => els.map(e => e.textContent)")]
    assert accs == sorted(accs, reverse=True)
    assert page.locator(".probe-ctl").first.inner_text().startswith("ctl ")
    assert page.inner_text("#probe-sentence").startswith("On this small model, at t = 500")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.locator("#probe-chart").scroll_into_view_if_needed()
    page.screenshot(path="test-results/probes-1280x720.png")

    # Clicking a point shows the twin's U and selects the point's module on it.
    point = ranked[0]
    module = page.get_attribute(f"#probe-ranking .probe-point[data-point='{point}']", "data-module")
    page.click(f"#probe-ranking .probe-point[data-point='{point}']")
    page.wait_for_function("() => document.querySelector('#probes').dataset.shown")
    shown = page.get_attribute("#probes", "data-shown")
    assert page.locator("#diagram g.box.selected").get_attribute("data-path") == shown
    assert module.startswith(shown) and shown.startswith(("input_blocks", "middle_block", "output_blocks", "out"))

    # "Colour by: discriminative power": each top block of the twin's U shows its best point's accuracy.
    page.click("#probe-colour")
    page.wait_for_function("() => document.querySelector('#probes').dataset.paint === 'shape@500'")
    assert page.input_value("#overlay") == "probes"
    badges = page.eval_on_selector_all(
        TOP,
        "els => Object.fromEntries(els.map(e => [e.dataset.path,"
        " e.querySelector(':scope > .card > .share')?.textContent ?? null]))",
    )
    # The best point's block shows the best accuracy (rounded), and every block with points shows one.
    top = page.get_attribute("#probe-ranking .probe-point", "data-module")
    block = ".".join(top.split(".")[:2]) if top.startswith(("input_blocks", "output_blocks")) else top.split(".")[0]
    first_acc = page.locator("#probe-ranking .probe-acc").first.inner_text()
    assert badges[block] == f"{round(float(first_acc.rstrip('%')))}%"
    assert badges["middle_block"] is not None and badges["middle_block"].endswith("%")
    page.locator("#diagram").scroll_into_view_if_needed()
    page.screenshot(path="test-results/probes-u-1280x720.png")
    assert console_errors == []


def test_a_click_in_the_source_picture_marks_the_best_match(page, live_server, console_errors):
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#tiny")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    page.locator("#correspondence").scroll_into_view_if_needed()
    box = page.locator("#corr-source").bounding_box()
    # Pixel (17, 14) of the 32-pixel picture drawn 6x.
    page.mouse.click(box["x"] + 17 * 6 + 3, box["y"] + 14 * 6 + 3)
    # The panel shows its pictures on its own when it comes into view (pixel 16, 16); the click's answer follows.
    page.wait_for_function("() => document.querySelector('#correspondence').dataset.match?.startsWith('17,14:')",
                           timeout=RUN_MS)  # fmt: skip
    api = httpx.post(f"{live_server}/api/correspondence", json={"point": "up-level0-upsampler-out", "x": 17, "y": 14},
                     timeout=120).json()  # fmt: skip
    assert page.get_attribute("#correspondence", "data-match") == f"17,14:{api['match']['x']},{api['match']['y']}"
    assert "best match" in page.inner_text("#corr-line")
    page.screenshot(path="test-results/correspondence-1280x720.png")
    assert console_errors == []
