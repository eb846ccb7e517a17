"""The subject of a lecture in view (issue 24), measured in Chromium: Focus makes a block fill the view with its
titles at 14 px or more and everything in it at 11 px or more, at any depth, and Esc gives the whole U back; and
nothing the page draws over the diagram (a lesson's panel, the minimap, legends, the zoom, Present's buttons, the
details dock, the tools) covers the block being talked about, at 1280×720 and 1600×1000, for every step of the Walk
lesson, an opened block of each kind, and Tools open with a painted legend.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

RESULTS = Path(__file__).parent.parent / "test-results"
LESSONS = Path(__file__).parent.parent / "static" / "lessons"
SIZES = [(1280, 720), (1600, 1000)]
ATTN = "input_blocks.1.1.transformer_blocks.0"
# One block of each kind of sd1: the time embedding, the input conv, a ResBlock with attention, a Downsample, a
# lone ResBlock, the middle block, a block ending in an Upsample, the output.
KINDS = [
    "time_embed",
    "input_blocks.0",
    "input_blocks.1",
    "input_blocks.3",
    "input_blocks.10",
    "middle_block",
    "output_blocks.2",
    "out",
]

# Everything that is drawn over or beside the view and could hide what is in it.
COVERS = "#lesson-panel, [data-field='minimap'], .diagram-foot, .topbar, #details, #tools, .overlay-legend"

# Where `path` is on screen (its card; its frame too when open), the view's client area (scroll bars are not
# seen), and every visible element of COVERS. CSS px of the viewport.
MEASURE = """([path, covers]) => {
  const host = document.getElementById('diagram');
  const hb = host.getBoundingClientRect();
  const box = (r) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
  const g = document.querySelector(`#diagram g.box[data-path="${path}"]`);
  const card = g.querySelector(':scope > .card > .card-bg');
  const frame = g.querySelector(':scope > .frame');
  const seen = (el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return s.display !== 'none' && s.visibility !== 'hidden' && r.width > 0 && r.height > 0;
  };
  return {
    client: { left: hb.left, top: hb.top, right: hb.left + host.clientWidth, bottom: hb.top + host.clientHeight },
    card: box(card.getBoundingClientRect()),
    title: box(g.querySelector(':scope > .card .t1').getBoundingClientRect()),
    subject: box((frame ?? card).getBoundingClientRect()),
    covers: [...document.querySelectorAll(covers)].filter(seen).map((el) => ({
      what: el.id || el.getAttribute('data-field') || el.className, ...box(el.getBoundingClientRect()) })),
  };
}"""

# The rendered size in CSS px of every text drawn in the box of `path` (its own card and everything inside).
TEXT_PX = """(path) => {
  const g = document.querySelector(`#diagram g.box[data-path="${path}"]`);
  const px = (t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
  return {
    titles: [...g.querySelectorAll('.t1')].map(px),
    all: [...g.querySelectorAll('text')].filter((t) => t.textContent.trim()).map((t) => [t.textContent, px(t)]),
  };
}"""

SETTLED = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def _overlap(a: dict, b: dict) -> float:
    """The area two rectangles share, in px²; a sliver under a pixel is the rounding of the view's client size."""
    w = min(a["right"], b["right"]) - max(a["left"], b["left"])
    h = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return w * h if w >= 1 and h >= 1 else 0.0


def _clip(a: dict, b: dict) -> dict:
    return {
        "left": max(a["left"], b["left"]),
        "top": max(a["top"], b["top"]),
        "right": min(a["right"], b["right"]),
        "bottom": min(a["bottom"], b["bottom"]),
    }


def _inside(a: dict, b: dict, slack: float = 0.5) -> bool:
    return (
        a["left"] >= b["left"] - slack
        and a["top"] >= b["top"] - slack
        and a["right"] <= b["right"] + slack
        and a["bottom"] <= b["bottom"] + slack
    )


def _uncovered(page, path: str) -> dict:
    """Asserts `path`'s card is wholly in view (its title, when the card is wider than the view) and that nothing
    covers the part of it (or of its frame) that is seen."""
    page.wait_for_function(SETTLED)
    m = page.evaluate(MEASURE, [path, COVERS])
    wide = m["card"]["right"] - m["card"]["left"] > m["client"]["right"] - m["client"]["left"]
    shown = m["title"] if wide else m["card"]
    assert _inside(shown, m["client"]), f"{path}: its card is not in view: {shown} {m['client']}"
    seen = _clip(m["subject"], m["client"])
    covered = {c["what"]: _overlap(seen, c) for c in m["covers"] if _overlap(seen, c) > 0}
    assert covered == {}, f"{path} is covered (px²): {covered}"
    return m


def _load(page, url: str, hash_: str, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{url}/#{hash_}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")


# ---- Focus ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "opened, focused",
    [
        ("input_blocks.3", "input_blocks.3"),  # the one-child Downsample
        ("input_blocks.1", "input_blocks.1"),
        ("middle_block", "middle_block"),
        (f"input_blocks.1,input_blocks.1.1,{ATTN},{ATTN}.attn1", "input_blocks.1"),  # deep: larger than the view
        (f"input_blocks.1,input_blocks.1.1,{ATTN},{ATTN}.attn1", f"{ATTN}.attn1"),  # a nested block
    ],
)
def test_focus_fills_the_view_with_large_type(page, live_server, console_errors, opened, focused) -> None:
    _load(page, live_server, f"sd1&open={opened}&sel={focused}", (1280, 720))
    before = page.locator("#zoom-level").inner_text()
    page.get_by_role("button", name="Focus").click()
    page.wait_for_function("(p) => document.body.dataset.focus === p", arg=focused)
    page.wait_for_function(SETTLED)
    px = page.evaluate(TEXT_PX, focused)
    assert min(px["titles"]) >= 14, px["titles"]
    small = [(t, round(s, 2)) for t, s in px["all"] if s < 11]
    assert small == [], small
    m = page.evaluate(MEASURE, [focused, COVERS])
    # The block fills the view: its frame is in it whole, or (too big for it) it covers the view's width or height.
    frame, client = m["subject"], m["client"]
    fills = (frame["right"] - frame["left"]) >= 0.8 * (client["right"] - client["left"]) or (
        frame["bottom"] - frame["top"]
    ) >= 0.8 * (client["bottom"] - client["top"])
    assert fills, (frame, client)
    _uncovered(page, focused)
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"page-focus-{focused.replace('.', '_')}.png"))
    # Esc: the whole U again, at the zoom it had; the block stays open.
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.focus === ''")
    assert page.locator("#zoom-level").inner_text() == before
    assert page.locator(f'#diagram g.box[data-path="{focused}"]').get_attribute("data-expanded") == "true"
    assert console_errors == []


def test_in_present_opening_a_block_focuses_it(page, live_server, console_errors) -> None:
    _load(page, live_server, "sd1", (1280, 720))
    page.keyboard.press("p")
    page.wait_for_function("() => document.body.dataset.presenting === 'true'")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # time_embed → input_blocks.0 → .1 → .2 (execution order)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.dataset.focus === 'input_blocks.2'")
    page.wait_for_function(SETTLED)
    assert min(page.evaluate(TEXT_PX, "input_blocks.2")["titles"]) >= 14
    _uncovered(page, "input_blocks.2")
    # Esc leaves focus, then closes the block, then leaves Present.
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.focus === ''")
    assert page.locator('#diagram g.box[data-path="input_blocks.2"]').get_attribute("data-expanded") == "true"
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => document.querySelector('#diagram g.box[data-path=\"input_blocks.2\"]').dataset.expanded === 'false'"
    )
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.presenting === 'false'")
    # The key F focuses the selected block as the button does, and again leaves.
    page.keyboard.press("f")
    page.wait_for_function("() => document.body.dataset.focus === 'input_blocks.2'")
    page.keyboard.press("f")
    page.wait_for_function("() => document.body.dataset.focus === ''")
    assert console_errors == []


# ---- Nothing covers the subject ---------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_walk_step_is_covered(page, live_server, console_errors, size) -> None:
    """Every step of the Walk lesson (the Walk button plays it): the module it selects is in view and uncovered, and
    the lesson's panel is on screen beside it."""
    steps = json.loads((LESSONS / "walk-the-tensor.json").read_text())["steps"]
    _load(page, live_server, "sd1", size)
    page.get_by_role("button", name="Walk the tensor").click()
    panel = page.get_by_role("region", name="Lesson")
    for i, step in enumerate(steps):
        page.wait_for_function("(i) => document.body.dataset.lessonShown === String(i)", arg=i)
        m = _uncovered(page, step["select"])
        assert any(c["what"] == "lesson-panel" for c in m["covers"])  # the panel is there, beside the block
        if i < len(steps) - 1:
            panel.get_by_role("button", name="Next step").click()
    assert console_errors == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_an_opened_block_of_each_kind_is_in_view_and_uncovered(page, live_server, console_errors, size) -> None:
    for path in KINDS:
        # The first click of a lecture: on the closed U, the block opens and the details dock opens beside it.
        _load(page, live_server, "sd1", size)
        page.locator(f'#diagram g.box[data-path="{path}"] > .card').click()
        page.wait_for_function(
            "(p) => document.querySelector(`#diagram g.box[data-path='${p}']`).dataset.expanded === 'true'", arg=path
        )
        assert page.locator("#details").is_visible()
        _uncovered(page, path)
    assert console_errors == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tools_and_a_painted_legend_cover_no_block(page, live_server, console_errors, size) -> None:
    _load(page, live_server, "sd1", size)
    if page.locator("#tools-toggle").get_attribute("aria-expanded") != "true":  # open at first on a tall window
        page.get_by_role("button", name="Tools").click()
    page.locator("#block-weights").fill("MIDD")
    page.locator("#block-weights").press("Enter")
    page.wait_for_function("() => !document.getElementById('block-weights-legend').hidden")
    page.locator("#overlay").select_option("flops")
    page.wait_for_function("() => !document.getElementById('overlay-legend').hidden")
    for path in [b["path"] for b in httpx.post(f"{live_server}/api/trace", json={"preset": "sd1"}).json()["blocks"]]:
        _uncovered(page, path)
    assert console_errors == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_presents_buttons_cover_nothing(page, live_server, console_errors, size) -> None:
    _load(page, live_server, "sd1", size)
    page.get_by_role("button", name="Present").click()
    page.wait_for_function("() => document.body.dataset.presenting === 'true'")
    page.wait_for_function(SETTLED)
    bar = page.locator(".topbar").bounding_box()
    drawn = page.eval_on_selector_all(
        "#diagram .layer-boxes > g.box > .card, #diagram .term",
        "els => els.map((e) => { const r = e.getBoundingClientRect(); "
        "return {what: e.textContent, left: r.left, top: r.top, right: r.right, bottom: r.bottom}; })",
    )
    rect = {"left": bar["x"], "top": bar["y"], "right": bar["x"] + bar["width"], "bottom": bar["y"] + bar["height"]}
    assert len(drawn) > 27
    assert [d["what"] for d in drawn if _overlap(d, rect) > 0] == []
    assert console_errors == []


# ---- The shorthand explained where it appears -------------------------------------------------------------------

TIP = """(sel) => {
  const el = document.querySelector(sel);
  return el.querySelector(':scope > title')?.textContent ?? null;
}"""


def test_the_shorthand_is_explained_on_hover_and_focus(page, live_server, console_errors) -> None:
    up = "output_blocks.0"  # an up block: its ResBlock reads the running tensor ⧺ the skip
    _load(page, live_server, f"sd1&open=input_blocks.3,input_blocks.3.0,{up}", (1280, 720))
    card = '#diagram g.box[data-path="input_blocks.1"] > .card > .card-bg'
    page.hover(card)
    tip = page.evaluate(TIP, card)
    # The card's own tooltip first, then the glossary.
    assert tip.startswith("input_blocks.1, Res · Transformer, 8 heads × 40")
    assert "8 heads × 40: 8 attention heads, 40 channels each" in tip
    assert "C×H×W: channels × height × width" in tip
    # An inner conv's settings: "Conv2d 3×3 s2 p1".
    conv = '#diagram g.box[data-path="input_blocks.3.0.op"] > .card > .card-bg'
    page.hover(conv)
    assert "s2 p1: stride 2, padding 1" in page.evaluate(TIP, conv)
    # The concatenation with the skip.
    concat = page.eval_on_selector_all(
        f'#diagram g.box[data-path="{up}"] [data-op]',
        "els => els.filter((e) => e.nextElementSibling?.textContent === '⧺').map((e) => e.dataset.op)",
    )
    assert concat, "the up block draws its concatenation"
    op = f'#diagram [data-op="{concat[0]}"]'
    page.hover(op, force=True)
    assert page.evaluate(TIP, op).startswith("⧺: concatenate with the skip")
    # The keyboard: the focused card describes its shorthand to a screen reader.
    page.locator('#diagram g.box[data-path="input_blocks.1"] > .card').focus()
    assert "8 attention heads, 40 channels each" in page.locator(
        '#diagram g.box[data-path="input_blocks.1"] > .card'
    ).get_attribute("aria-description")
    assert console_errors == []


# ---- Compare on a projector -------------------------------------------------------------------------------------

COMPARE_SIDE = """(side) => {
  const host = document.querySelector(`#compare [data-side="${side}"] .compare-diagram`);
  const svg = host.querySelector('svg.unet');
  const px = (t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
  const hb = host.getBoundingClientRect();
  const s = svg.getBoundingClientRect();
  return {
    titles: [...svg.querySelectorAll('.layer-boxes > g.box > .card .t1')].map(px),
    scroll: [host.scrollWidth - host.clientWidth, host.scrollHeight - host.clientHeight],
    host: { top: hb.top, bottom: hb.bottom }, svg: { w: s.width, h: s.height }, vh: innerHeight,
  };
}"""


def test_compare_one_above_the_other_is_readable_at_720p(page, live_server, console_errors) -> None:
    # Side by side, SD 1.x beside SDXL would be about 5 px titles at 1280×720: the page stacks them by itself, and
    # says why.
    _load(page, live_server, "sd1&vs=sdxl-base", (1280, 720))
    page.wait_for_function("() => document.body.dataset.compare === 'true'")
    page.wait_for_function(SETTLED)
    assert page.locator("#compare .compare-stacked").is_checked()
    why = page.locator('#compare [data-field="compare-why"]').inner_text()
    said = float(re.search(r"titles would be ([\d.]+) px", why).group(1))
    assert said < 9
    for side in "ab":
        page.locator(f'#compare [data-side="{side}"] .compare-diagram').scroll_into_view_if_needed()
        m = page.evaluate(COMPARE_SIDE, side)
        assert min(m["titles"]) >= 9, (side, min(m["titles"]))
        # The whole U in its view, and that view in the window: seen whole without scrolling it.
        assert m["scroll"] == [0, 0], m
        assert m["host"]["top"] >= -0.5 and m["host"]["bottom"] <= m["vh"] + 0.5, m
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / "page-compare-stacked-720p.png"))
    # The reader may still want them side by side: then the note goes, and the titles are what it said.
    page.locator("#compare .compare-stacked").uncheck()
    page.wait_for_function(SETTLED)
    assert page.locator('#compare [data-field="compare-why"]').is_hidden()
    side_by_side = min(page.evaluate(COMPARE_SIDE, "a")["titles"])
    assert side_by_side == pytest.approx(said, abs=0.05)
    assert console_errors == []


def test_compare_stays_side_by_side_where_that_is_readable(page, live_server, console_errors) -> None:
    _load(page, live_server, "sd1&vs=bk-sdm-tiny", (2560, 1440))
    page.wait_for_function("() => document.body.dataset.compare === 'true'")
    page.wait_for_function(SETTLED)
    assert not page.locator("#compare .compare-stacked").is_checked()
    assert page.locator('#compare [data-field="compare-why"]').is_hidden()
    assert min(min(page.evaluate(COMPARE_SIDE, side)["titles"]) for side in "ab") >= 9
    assert console_errors == []


# ---- Labels that do not collide ---------------------------------------------------------------------------------

LABEL_OVERLAPS = """() => {
  const r = [...document.querySelectorAll('#diagram .skip-label, #diagram .cn-on-u, #diagram .row-label')]
    .map((e) => { const b = e.getBoundingClientRect(); return [e.textContent, b.left, b.top, b.right, b.bottom]; });
  const bad = [];
  for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {
    const [a, b] = [r[i], r[j]];
    if (Math.min(a[3], b[3]) - Math.max(a[1], b[1]) > 0.5 && Math.min(a[4], b[4]) - Math.max(a[2], b[2]) > 0.5) {
      bad.push([a[0], b[0]]);
    }
  }
  return { marks: document.querySelectorAll('#diagram .cn-on-u').length, bad };
}"""


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_controlnet_marks_collide_with_no_label(page, live_server, console_errors, size) -> None:
    # issue 24: "320×64×6⊕ ctrl ×1.00" in 12 places, the control scale printed over the skip's shape.
    _load(page, live_server, "controlnet-sd15", size)
    page.wait_for_function("() => document.querySelectorAll('#diagram .cn-on-u').length === 13")
    m = page.evaluate(LABEL_OVERLAPS)
    assert m["marks"] == 13 and m["bad"] == []  # 12 skips and the middle block's output
    assert console_errors == []
