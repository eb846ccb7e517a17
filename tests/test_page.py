"""The explorer page in a real Chromium against a real server: the U for each preset, blocks that open into their
children, the details panel against the trace JSON, keyboard use, a profile run, and a screenshot per preset.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop window: the tools row is open there (test_page_fit.py checks the laptop and projector sizes)."""
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1000}}


ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "test-results"
TOP = "svg.unet .layer-boxes > g.box"


def _trace(live_server: str, preset: str, **body) -> dict:
    r = httpx.post(f"{live_server}/api/trace", json={"preset": preset, **body}, timeout=120)
    r.raise_for_status()
    return r.json()


def _wait_ready(page, preset: str | None = None) -> None:
    if preset is None:
        page.wait_for_function("() => document.body.dataset.ready === 'true'")
    else:
        page.wait_for_function(
            "(p) => document.body.dataset.ready === 'true' && document.body.dataset.preset === p", arg=preset
        )


def _open(page, live_server: str, preset: str = "sd1") -> None:
    page.goto(f"{live_server}/#{preset}")
    _wait_ready(page, preset)


def _card(page, path: str):
    return page.locator(f'[data-path="{path}"] > .card')


def _box(page, path: str):
    return page.locator(f'g.box[data-path="{path}"]')


def _top_paths(page) -> list[str]:
    return page.eval_on_selector_all(TOP, "els => els.map(e => e.dataset.path)")


def test_sd1_u_has_every_block_and_skip(page, live_server, console_errors) -> None:
    trace = _trace(live_server, "sd1")
    _open(page, live_server)
    paths = _top_paths(page)
    assert [p for p in paths if p.startswith("input_blocks.")] == [f"input_blocks.{i}" for i in range(12)]
    assert [p for p in paths if p.startswith("output_blocks.")] == [f"output_blocks.{i}" for i in range(12)]
    assert {"time_embed", "middle_block", "out"} <= set(paths)
    assert "label_emb" not in paths
    assert paths == [b["path"] for b in trace["blocks"]]
    skips = page.eval_on_selector_all(
        "[data-skip-from]", "els => els.map(e => [e.dataset.skipFrom, e.dataset.skipTo, e.textContent])"
    )
    assert len(skips) == 12
    assert {(f, t) for f, t, _ in skips} == {(s["from"], s["to"]) for s in trace["skips"]}
    # Each skip is labelled with its tensor shape (batch left out): input_blocks.0 → output_blocks.11 is 320×64×64.
    labels = {(f, t): text for f, t, text in skips}
    assert "320×64×64" in labels[("input_blocks.0", "output_blocks.11")]
    # Every drawn top-level module says what it is, and the expandable ones say whether they are open.
    kinds = dict(page.eval_on_selector_all(TOP, "els => els.map(e => [e.dataset.path, e.dataset.kind])"))
    assert kinds["input_blocks.1"] == "TimestepEmbedSequential"
    assert kinds["time_embed"] == "Sequential"
    assert _box(page, "input_blocks.1").get_attribute("data-expanded") == "false"
    # The model selector lists every preset, then the ControlNet presets.
    presets = httpx.get(f"{live_server}/api/presets", timeout=30).json()
    controls = httpx.get(f"{live_server}/api/controlnet/presets", timeout=30).json()
    select = page.get_by_label("Model", exact=True)
    assert select.evaluate("e => e.tagName") == "SELECT"
    options = select.evaluate("e => [...e.options].map(o => o.value)")
    assert options == [p["name"] for p in presets] + [p["name"] for p in controls]
    # The details panel opens on demand (and on a click on a block), so the U has the room at first.
    assert page.get_by_role("region", name="Details").is_hidden()
    page.get_by_role("button", name="Details").click()
    assert page.get_by_role("region", name="Details").is_visible()
    assert console_errors == []


def test_opening_blocks_shows_their_children(page, live_server, console_errors) -> None:
    _open(page, live_server)
    _card(page, "input_blocks.1").click()
    _wait_ready(page)
    assert _box(page, "input_blocks.1").get_attribute("data-expanded") == "true"
    assert _box(page, "input_blocks.1.0").get_attribute("data-kind") == "ResBlock"
    assert _box(page, "input_blocks.1.1").get_attribute("data-kind") == "SpatialTransformer"

    _card(page, "input_blocks.1.0").click()
    _wait_ready(page)
    for name in ("in_layers", "emb_layers", "out_layers", "skip_connection"):
        assert _box(page, f"input_blocks.1.0.{name}").count() == 1, name

    _card(page, "input_blocks.1.1").click()
    _wait_ready(page)
    block = "input_blocks.1.1.transformer_blocks.0"
    assert _box(page, block).get_attribute("data-kind") == "BasicTransformerBlock"
    _card(page, block).click()
    _wait_ready(page)
    assert _box(page, f"{block}.attn1").get_attribute("data-kind") == "CrossAttention"
    assert _box(page, f"{block}.attn2").get_attribute("data-kind") == "CrossAttention"
    assert _box(page, f"{block}.ff").get_attribute("data-kind") == "FeedForward"
    # All the way to the leaves: attention opens into q, k, v and the output projection.
    _card(page, f"{block}.attn2").click()
    _wait_ready(page)
    assert _box(page, f"{block}.attn2.to_k").get_attribute("data-kind") == "Linear"
    assert _box(page, f"{block}.attn2.to_k").get_attribute("data-expanded") is None  # a leaf

    # Closing the top-level block removes everything inside it.
    _card(page, "input_blocks.1").click()
    _wait_ready(page)
    assert _box(page, "input_blocks.1").get_attribute("data-expanded") == "false"
    assert page.locator('[data-path^="input_blocks.1."]').count() == 0
    assert console_errors == []


def test_details_panel_matches_the_trace(page, live_server, console_errors) -> None:
    trace = _trace(live_server, "sd1")
    nodes = {n["path"]: n for n in trace["nodes"]}
    _open(page, live_server)
    page.get_by_role("button", name="Details").click()
    details = page.get_by_role("region", name="Details")
    # Nothing selected: the whole model.
    assert f"{trace['totals']['params']:,}" in details.locator('[data-field="params"]').inner_text()

    _card(page, "output_blocks.2").click()  # selects and opens it
    _wait_ready(page)
    node = nodes["output_blocks.2"]
    assert details.locator("h2").inner_text() == "output_blocks.2"
    out = ", ".join(str(d) for d in node["outputs"][0]["shape"])
    assert details.locator('[data-field="output"]').inner_text() == f"[{out}]"
    assert f"{node['params']:,}" in details.locator('[data-field="params"]').inner_text()
    assert "input_blocks.9" in details.locator('[data-field="skip"]').inner_text()

    # A leaf inside it: the upsampling convolution.
    _card(page, "output_blocks.2.1").click()
    _wait_ready(page)
    leaf = nodes["output_blocks.2.1.conv"]
    _card(page, "output_blocks.2.1.conv").click()
    assert details.locator("h2").inner_text() == "output_blocks.2.1.conv"
    assert f"{leaf['params']:,}" in details.locator('[data-field="params"]').inner_text()
    expect(details.locator('[data-field="built-in"]')).to_contain_text("PyTorch built-in")  # once /api/source answered

    # Our own classes show their source on request.
    _card(page, "output_blocks.2.0").click()
    _wait_ready(page)
    details.get_by_role("button", name="Show code").click()
    code = details.locator("pre.code")
    code.wait_for(state="visible")
    assert "class ResBlock" in code.inner_text()
    assert console_errors == []


def test_keyboard_tab_and_enter_open_a_block(page, live_server, console_errors) -> None:
    _open(page, live_server)
    # Tab from the last control before the diagram lands on the first block's card, after at most one stop on the
    # diagram itself (Chromium makes a scrolling area a tab stop, so the keyboard can scroll it).
    page.evaluate(
        """() => {
          const tabbable = [...document.querySelectorAll('button, input, select, textarea, a[href], [tabindex]')]
            .filter((e) => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length > 0);
          const first = tabbable.findIndex((e) => e.matches('g.card'));
          tabbable[first - 1].focus();
        }"""
    )
    page.keyboard.press("Tab")
    if page.evaluate("() => document.activeElement.matches('svg.unet, #diagram')"):
        page.keyboard.press("Tab")
    first = page.evaluate("() => document.activeElement.dataset.path")
    assert first == "time_embed", page.evaluate("() => document.activeElement.outerHTML.slice(0, 200)")
    block = _box(page, "input_blocks.4")
    _card(page, "input_blocks.4").focus()  # the card is the button
    page.keyboard.press("Enter")
    _wait_ready(page)
    assert block.get_attribute("data-expanded") == "true"
    assert _box(page, "input_blocks.4.0").count() == 1
    # Focus stays on the block, so Enter again closes it.
    assert page.evaluate("() => document.activeElement.dataset.path") == "input_blocks.4"
    page.keyboard.press("Enter")
    _wait_ready(page)
    assert block.get_attribute("data-expanded") == "false"
    assert console_errors == []


def test_expand_all_collapse_all_and_metric(page, live_server, console_errors) -> None:
    _open(page, live_server, "tiny")
    page.get_by_role("button", name="Expand all").click()
    _wait_ready(page)
    # Every top-level block is open; far off-screen insides of a big scene are drawn when scrolled to.
    assert page.locator(f'{TOP}[data-expanded="true"]').count() == len(_top_paths(page))
    assert page.locator('svg.unet [data-expanded="true"]').count() > 30
    assert page.locator('svg.unet [data-expanded="false"]').count() == 0
    page.get_by_role("button", name="Collapse all").click()
    _wait_ready(page)
    assert page.locator('svg.unet [data-expanded="true"]').count() == 0
    # The share on a card follows the metric toggle.
    share = _box(page, "middle_block").locator(":scope > .card > .share")
    flops_share = share.text_content()
    page.get_by_role("radio", name="Params").check()
    _wait_ready(page)
    assert share.text_content() != flops_share
    assert console_errors == []


def test_image_size_redraws_with_new_shapes(page, live_server, console_errors) -> None:
    _open(page, live_server)
    size = page.get_by_label("Image size (px)")
    size.fill("768")
    size.dispatch_event("change")
    page.wait_for_function("() => document.body.dataset.ready === 'true' && location.hash.endsWith('@768')")
    assert _box(page, "input_blocks.0").locator(":scope > .card > .t3").text_content() == "320×96×96"
    assert console_errors == []


def test_profile_overlays_measured_times(page, live_server, console_errors) -> None:
    _open(page, live_server, "tiny")
    page.get_by_role("button", name="Profile").click()
    page.wait_for_function("() => document.querySelector('input[name=metric][value=time]').checked", timeout=120_000)
    _wait_ready(page)
    assert "Measured" in page.locator("#profile-status").inner_text()
    assert page.get_by_role("radio", name="Time").is_enabled()
    _card(page, "middle_block").click()
    _wait_ready(page)
    assert "ms" in page.locator('[data-field="time"]').inner_text()
    page.wait_for_function("() => document.body.dataset.charts === 'true'")
    # The FLOPs chart gained a line of measured times.
    assert page.locator("#chart-flops .scatterlayer .trace").count() >= 1
    assert console_errors == []


def test_every_preset_draws_and_is_screenshotted(page, live_server, console_errors) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1600, "height": 1000})
    presets = httpx.get(f"{live_server}/api/presets", timeout=30).json()
    _open(page, live_server)
    for preset in [p["name"] for p in presets]:
        trace = _trace(live_server, preset)
        page.get_by_label("Model", exact=True).select_option(preset)
        _wait_ready(page, preset)
        page.wait_for_function("() => document.body.dataset.charts === 'true'")
        assert _top_paths(page) == [b["path"] for b in trace["blocks"]], preset
        assert page.locator("[data-skip-from]").count() == len(trace["skips"]), preset
        if preset == "sdxl-base":
            paths = _top_paths(page)
            assert [p for p in paths if p.startswith("input_blocks.")] == [f"input_blocks.{i}" for i in range(9)]
            assert [p for p in paths if p.startswith("output_blocks.")] == [f"output_blocks.{i}" for i in range(9)]
            assert "label_emb" in paths
        page.screenshot(path=str(RESULTS / f"page-{preset}.png"))
    # The README's picture: SD 1.x with one block opened, and the ResBlock inside it.
    page.get_by_label("Model", exact=True).select_option("sd1")
    _wait_ready(page, "sd1")
    for path in ("input_blocks.4", "input_blocks.4.0"):
        _card(page, path).click()
        _wait_ready(page)
    page.wait_for_function("() => document.body.dataset.charts === 'true'")
    page.wait_for_selector("body[data-names]", state="attached")  # the details' names section filled in
    page.screenshot(path=str(RESULTS / "page-sd1-open.png"))
    if os.environ.get("SDUNET_UPDATE_SCREENSHOT") == "1":  # the README's picture; a plain test run leaves it alone
        shutil.copyfile(RESULTS / "page-sd1-open.png", ROOT / "docs" / "screenshot.png")
    assert console_errors == []


# Runs layout.js in the page (a plain ES module, no DOM needed): the same inputs give the same scene, and nothing
# drawn overlaps: top-level blocks, siblings inside an opened block, and children stay inside their parent.
LAYOUT_CHECK = """async (trace) => {
  const L = await import('/static/js/layout.js');
  const ix = L.indexTrace(trace);
  const strip = (scene) => JSON.stringify(scene, (k, v) => (k === 'node' || k === 'id' || k === 'sig' ? undefined : v));
  const problems = [];
  const all = new Set(L.expandablePaths(ix));
  if (strip(L.layoutScene(ix, all, L.createMemo())) !== strip(L.layoutScene(L.indexTrace(trace), all)))
    problems.push('layout differs between two runs');
  const overlap = (a, b) =>
    a.x < b.x + b.w - 0.5 && b.x < a.x + a.w - 0.5 && a.y < b.y + b.h - 0.5 && b.y < a.y + a.h - 0.5;
  const check = (placements, where, bounds) => {
    const rects = placements.map((p) => ({ x: p.x, y: p.y, w: p.box.w, h: p.box.h, path: p.box.path }));
    for (let i = 0; i < rects.length; i += 1) {
      const r = rects[i];
      if (bounds && (r.x < -0.5 || r.y < -0.5 || r.x + r.w > bounds.w + 0.5 || r.y + r.h > bounds.h + 0.5))
        problems.push(`${r.path} sticks out of ${where}`);
      for (let j = i + 1; j < rects.length; j += 1) {
        if (overlap(r, rects[j])) problems.push(`${r.path} overlaps ${rects[j].path}`);
      }
    }
  };
  for (const expanded of [new Set(), all]) {
    const scene = L.layoutScene(ix, expanded);
    check(scene.tops, 'the U', { w: scene.w, h: scene.h });
    const walk = (box) => {
      if (!box.inner) return;
      check(box.inner.placements, box.path, box.inner);
      for (const p of box.inner.placements) walk(p.box);
    };
    for (const t of scene.tops) walk(t.box);
    if (scene.skips.length !== trace.skips.length) problems.push('a skip is missing');
  }
  return problems.slice(0, 20);
}"""


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base", "ldm-churches", "bk-sdm-tiny", "ssd-1b"])
def test_layout_is_pure_and_nothing_overlaps(page, live_server, console_errors, preset) -> None:
    trace = _trace(live_server, preset)
    _open(page, live_server, "tiny")
    assert page.evaluate(LAYOUT_CHECK, trace) == []
    assert console_errors == []
