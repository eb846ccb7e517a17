"""The Names switch at a 1280×720 projector (issue 24): diffusers names shrank the U to 62 % and LoRA keys to 47 %,
because long names widened the cards. Now every naming scheme keeps the zoom and title size of the default names,
no two card label texts overlap, and a shortened name keeps its start and end and is whole in the card's tooltip.
Measured in Chromium against the names POST /api/names gives.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import pytest

from tests.test_page_names import RESULTS, TOP, _full_titles, _names, _ready, _titles

pytestmark = pytest.mark.browser

# At the projector's size: the zoom, the smallest top-level title (CSS px), and every pair of card label texts whose
# boxes overlap (titles, subtitles, facts, shapes and figures of every card; the ± glyph is a control, not a label).
FIT_AND_COLLISIONS = """() => {
  const titles = [...document.querySelectorAll('#diagram .layer-boxes > g.box > .card .t1')]
    .map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
  const texts = [...document.querySelectorAll('#diagram g.box > .card > text:not(.chev)')]
    .map((e) => ({ what: `${e.closest('g.box').dataset.path}: ${e.textContent}`, r: e.getBoundingClientRect() }))
    .filter((t) => t.r.width * t.r.height > 0);
  const hits = [];
  for (let i = 0; i < texts.length; i += 1) {
    for (let j = i + 1; j < texts.length; j += 1) {
      const [a, b] = [texts[i].r, texts[j].r];
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
        hits.push(`${texts[i].what} / ${texts[j].what}`);
      }
    }
  }
  return { zoom: parseFloat(document.getElementById('zoom-level').textContent), title: Math.min(...titles), hits };
}"""


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base"])
def test_no_names_scheme_shrinks_the_u_or_makes_labels_collide(page, live_server, console_errors, preset) -> None:
    # Issue 24: diffusers names shrank the U to 62 % and LoRA keys to 47 % at 1280×720 (long names widened cards).
    page.set_viewport_size({"width": 1280, "height": 720})
    schemes = [s["key"] for s in _names(live_server, preset)["schemes"] if s["available"]]
    assert {"original", "diffusers", "lora_diffusers", "lora_original"} <= set(schemes)
    page.goto(f"{live_server}/#{preset}")
    _ready(page, preset)
    page.click("#tools-toggle")  # folded again: the U has the window it has at first sight
    page.wait_for_function("() => document.getElementById('tools').hidden")
    page.wait_for_timeout(200)  # the resize observer's refit
    default = page.evaluate(FIT_AND_COLLISIONS)
    assert default["hits"] == []
    for scheme in schemes[1:]:
        page.goto(f"{live_server}/#{preset}&names={scheme}")
        _ready(page, preset)
        page.click("#tools-toggle")
        page.wait_for_function("() => document.getElementById('tools').hidden")
        page.wait_for_timeout(200)
        m = page.evaluate(FIT_AND_COLLISIONS)
        assert m["zoom"] >= default["zoom"] and m["title"] >= default["title"] - 0.01, (scheme, m, default)
        assert m["hits"] == [], scheme
        full = _full_titles(page)
        shown = _titles(page)
        cut = [p for p in full if full[p] != shown[p]]
        for path in cut:  # a shortened name keeps its start and its end, and is whole in the card's tooltip
            head, tail = shown[path].split("…")
            assert full[path].startswith(head) and full[path].endswith(tail), (scheme, path)
            tip = page.locator(f'{TOP}[data-path="{path}"] > .card > title').text_content()
            assert tip.startswith(full[path]), (scheme, path)
        if scheme in ("diffusers", "lora_original"):
            page.screenshot(path=str(RESULTS / f"page-names-{preset}-{scheme}-1280.png"))
    assert console_errors == []
