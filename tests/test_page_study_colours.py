"""The "Colour by" from the twin's experiments on the main U, in a real Chromium at 1280x720 against a real server:
discriminative power (a probe run) and the effect of removing each block (the Knobs panel's ablation sweep). Each
paints the U's blocks and shows a legend under it whose ends and figures are the run's, and which covers no block
(measured as the subject tests measure it)."""

from __future__ import annotations

import httpx
import pytest

from sdunet_core.probes import TARGETS
from tests.test_page_subject import _uncovered

pytestmark = pytest.mark.browser

RUN_MS = 480_000  # a wait bound, not a speed claim: the machine these tests run on is shared and busy
TOP = "svg.unet .layer-boxes > g.box"  # the U's top-level blocks
BADGES = (
    "els => Object.fromEntries(els.map(e => [e.dataset.path,"
    " e.querySelector(':scope > .card > .share')?.textContent ?? null]))"
)


def _open_twin(page, url: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{url}/#twin")
    page.wait_for_function("() => document.body.dataset.ready === 'true' && document.body.dataset.preset === 'twin'")


def _blocks(url: str) -> list[str]:
    return [b["path"] for b in httpx.post(f"{url}/api/trace", json={"preset": "twin"}, timeout=60).json()["blocks"]]


def test_discriminative_power_has_a_legend_true_to_the_run(page, live_server, console_errors) -> None:
    _open_twin(page, live_server)
    # Chosen before any run: the legend says what to do instead of painting nothing silently.
    page.select_option("#overlay", "probes")
    legend = page.locator("#probe-legend")
    assert legend.is_visible() and "no probe run yet" in legend.inner_text()

    page.locator("#probes").scroll_into_view_if_needed()
    for target in ("colour", "position", "background"):
        page.uncheck(f"#probe-target-{target}")
    page.fill("#probe-timesteps", "500")
    page.fill("#probe-n", "48")
    page.click("#probe-go")
    page.wait_for_function("() => ['done', 'error'].includes(document.querySelector('#probes').dataset.state)",
                           timeout=RUN_MS)  # fmt: skip
    assert page.get_attribute("#probes", "data-state") == "done", page.inner_text("#probe-error")
    page.click("#probe-colour")
    page.wait_for_function("() => document.body.dataset.paint === 'probes'")

    # Its ends: chance of the target shown (1/k of the world's classes) and 100 %; its best: the ranking's first.
    assert legend.is_visible()
    title = legend.locator("[data-field='legend-title']").inner_text()
    assert "shape at t = 500" in title and "best point" in title
    chance = 1 / len(TARGETS["shape"][0])
    assert legend.locator("[data-end='lo']").inner_text() == f"{chance * 100:.1f}% chance"
    assert legend.locator("[data-end='hi']").inner_text() == "100%"
    first = page.locator("#probe-ranking .probe-point").first
    best = f"best {first.locator('.probe-acc').inner_text()} ({first.get_attribute('data-point')})"
    assert legend.locator("[data-field='probe-legend-best']").inner_text() == best
    # The best block's card shows that accuracy, rounded.
    badges = page.eval_on_selector_all(TOP, BADGES)
    assert f"{round(float(first.locator('.probe-acc').inner_text().rstrip('%')))}%" in badges.values()

    page.locator("#diagram").scroll_into_view_if_needed()
    for path in _blocks(live_server):
        _uncovered(page, path)
    page.screenshot(path="test-results/probes-legend-1280x720.png")
    # Another "Colour by" hides it.
    page.select_option("#overlay", "flops")
    assert legend.is_hidden()
    assert console_errors == []


def test_effect_of_removing_runs_the_sweep_and_paints_each_block(page, live_server, console_errors) -> None:
    _open_twin(page, live_server)
    # Chosen before any sweep: it runs one (the Knobs panel's), its progress in the legend.
    page.select_option("#overlay", "ablation")
    legend = page.locator("#effect-legend")
    page.wait_for_function("() => document.body.dataset.sweep === 'running'")
    page.wait_for_function(
        "() => ['done', 'error'].includes(document.body.dataset.sweep) ||"
        " document.querySelector('#effect-legend [data-field=effect-progress]')"
    )
    page.wait_for_function("() => ['done', 'error'].includes(document.body.dataset.sweep)", timeout=RUN_MS)
    assert page.evaluate("document.body.dataset.sweep") == "done", page.inner_text("#knob-error")
    page.wait_for_function("() => document.body.dataset.paint === 'ablation'")

    # The per-block figure is the one the Knobs panel's small U shows; blocks not removed say so, not 0.
    small = page.eval_on_selector_all(
        "#knob-u .knob-u-cell:not(.off)",
        "els => Object.fromEntries(els.map(e => [e.dataset.path, e.querySelector('.knob-u-value').textContent]))",
    )
    badges = page.eval_on_selector_all(TOP, BADGES)
    measured = {p: v for p, v in badges.items() if v != "—"}
    assert measured == small and len(small) >= 13
    assert badges["time_embed"] == "—" and badges["out"] == "—"  # grey, and the legend says "not measured"
    fills = page.eval_on_selector_all(TOP, "els => Object.fromEntries(els.map(e => [e.dataset.path,"
                                      " e.querySelector(':scope > .card > .card-bg').style.fill]))")  # fmt: skip
    assert fills["time_embed"] == fills["out"] and fills["time_embed"] not in {fills[p] for p in measured}

    # The legend: 0 to the largest drop, the largest block named.
    assert legend.locator("[data-end='lo']").inner_text() == "0"
    top = max(measured.items(), key=lambda kv: float(kv[1]))
    assert legend.locator("[data-end='hi']").inner_text() == top[1]
    assert legend.locator("[data-field='effect-legend-top']").inner_text().endswith(f"({top[1]})")
    assert "not measured" in legend.inner_text()

    page.locator("#diagram").scroll_into_view_if_needed()
    for path in _blocks(live_server):
        _uncovered(page, path)
    page.screenshot(path="test-results/effect-of-removing-1280x720.png")
    assert console_errors == []
