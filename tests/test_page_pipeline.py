"""The pipeline strip at first sight (issue 24), measured in Chromium at a 1280×720 projector: above the U, the
stages the trace states in their order; a click (or the keyboard's focus) explains a stage with the server's own
sentence; neither the strip nor a sentence covers anything of the U, which keeps its legible fit; the twin's
variant has no decoder.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).parent.parent / "test-results"

# What the strip and the sentence show, where they are (CSS px of the viewport), and the smallest top-level title.
MEASURE = """() => {
  const svg = document.querySelector('#diagram svg.unet');
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height };
  };
  const shown = (el) => !el.hidden && getComputedStyle(el).display !== 'none';
  const titles = [...svg.querySelectorAll('.layer-boxes > g.box > .card .t1')]
    .map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
  const strip = document.querySelector('.pipeline-strip');
  const says = document.querySelector('.pipeline-says');
  return { title: Math.min(...titles), strip: shown(strip) ? box(strip) : null,
    says: shown(says) ? { ...box(says), text: says.textContent } : null,
    labels: [...strip.querySelectorAll('button')].map((b) => b.firstChild.textContent) };
}"""

# What of the U a rectangle covers: cards, terminals and labels by their boxes; wires and skip lanes by points
# every 2 px along them (an L-shaped wire's bounding box is mostly empty).
COVERED = """(r) => {
  const svg = document.querySelector('#diagram svg.unet');
  const inside = (x, y) => x > r.x + 0.5 && x < r.x + r.w - 0.5 && y > r.y + 0.5 && y < r.y + r.h - 0.5;
  const meets = (b) => b.width * b.height > 0 && b.left < r.x + r.w - 0.5 && r.x < b.right - 0.5
    && b.top < r.y + r.h - 0.5 && r.y < b.bottom - 0.5;
  const name = (el) => el.dataset.term ?? el.closest('[data-path]')?.dataset.path ?? el.textContent;
  const out = [];
  const things = '.layer-boxes > g.box > .card > .card-bg, [data-term], .row-label, .skip-label';
  for (const el of svg.querySelectorAll(things)) {
    if (meets(el.getBoundingClientRect())) out.push(name(el));
  }
  for (const p of svg.querySelectorAll('path.wire')) {
    const m = p.getScreenCTM();
    const len = p.getTotalLength();
    for (let at = 0; at <= len; at += 2) {
      const q = p.getPointAtLength(at);
      if (inside(m.a * q.x + m.c * q.y + m.e, m.b * q.x + m.d * q.y + m.f)) {
        out.push(`wire ${p.dataset.from} → ${p.dataset.to}`);
        break;
      }
    }
  }
  return out;
}"""


def _covered(page, what: dict) -> list[str]:
    return page.evaluate(COVERED, {k: what[k] for k in ("x", "y", "w", "h")})


def _open(page, live_server: str, preset: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{live_server}/#{preset}")
    page.wait_for_function(
        "(p) => document.body.dataset.ready === 'true' && document.body.dataset.preset === p", arg=preset
    )
    page.wait_for_function("() => document.body.dataset.pipeline === 'shown'")


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base", "twin"])
def test_the_strip_says_where_the_unet_sits_and_covers_nothing(page, live_server, console_errors, preset) -> None:
    pipeline = httpx.post(f"{live_server}/api/trace", json={"preset": preset}, timeout=120).json()["pipeline"]
    _open(page, live_server, preset)
    m = page.evaluate(MEASURE)
    assert m["labels"] == [s["label"] for s in pipeline["stages"]]
    assert m["title"] >= 11, f"the U's titles render at {m['title']:.2f} px"  # the fit of test_page_fit, kept
    assert m["strip"]["y"] >= 39 and m["strip"]["x"] >= 0 and m["strip"]["x"] + m["strip"]["w"] <= 1280
    assert _covered(page, m["strip"]) == []
    if preset == "twin":  # pixel space: no decoder between the UNet and the picture
        assert m["labels"] == ["caption", "text encoder", "UNet × 50 steps", "image"]
    # Each stage explains itself in the server's sentence, where it covers nothing of the U.
    for stage in pipeline["stages"]:
        page.locator(f".pipeline-stages button[data-stage='{stage['id']}']").click()
        page.wait_for_function("(s) => document.body.dataset.pipelineStage === s", arg=stage["id"])
        m = page.evaluate(MEASURE)
        assert m["says"] is not None and m["says"]["text"] == stage["says"], stage["id"]
        assert _covered(page, m["says"]) == [], stage["id"]
        assert _covered(page, m["strip"]) == [], stage["id"]
        if stage["id"] == "unet":
            page.screenshot(path=str(RESULTS / f"page-pipeline-{preset}.png"))
    # A second click on the chosen stage puts the sentence away.
    page.locator(f".pipeline-stages button[data-stage='{pipeline['stages'][-1]['id']}']").click()
    page.wait_for_function("() => document.body.dataset.pipelineStage === ''")
    assert page.locator(".pipeline-says").is_hidden()
    assert console_errors == []


def test_the_keyboard_reads_the_pipeline_and_esc_puts_it_away(page, live_server, console_errors) -> None:
    _open(page, live_server, "sd1")
    page.locator(".pipeline-stages button[data-stage='prompt']").click()
    page.wait_for_function("() => document.body.dataset.pipelineStage === 'prompt'")
    page.keyboard.press("Tab")  # focus moves to the next stage and explains it
    page.wait_for_function("() => document.body.dataset.pipelineStage === 'text_encoder'")
    assert "77 vectors of 768 numbers" in page.locator(".pipeline-says").inner_text()
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.pipelineStage === ''")
    assert page.locator(".pipeline-says").is_hidden()
    assert console_errors == []


def test_the_strip_steps_aside_when_the_u_needs_the_room(page, live_server, console_errors) -> None:
    # Zoomed in, the U outgrows the view; scrolled down, its top row (and the band) is out of sight: no strip.
    _open(page, live_server, "sd1")
    for _ in range(3):
        page.locator("#zoom-in").click()
    page.evaluate("() => document.getElementById('diagram').scrollTo(0, 400)")
    page.wait_for_function("() => document.body.dataset.pipeline === 'hidden'")
    assert page.evaluate(MEASURE)["strip"] is None
    # Back at the top, the band is there again (wider at this zoom) and the strip covers nothing.
    page.evaluate("() => document.getElementById('diagram').scrollTo(0, 0)")
    page.wait_for_function("() => document.body.dataset.pipeline === 'shown'")
    assert _covered(page, page.evaluate(MEASURE)["strip"]) == []
    # Focus gives the view to one block: the strip makes way.
    page.locator('#diagram [data-path="input_blocks.1"] > .card').click()
    page.keyboard.press("f")
    page.wait_for_function("() => document.body.dataset.focus === 'input_blocks.1'")
    page.wait_for_function("() => document.body.dataset.pipeline === 'hidden'")
    assert console_errors == []
