"""What a student sees, measured in a real Chromium: at a 1280×720 projector and a 1600×1000 laptop, for SD 1.x and
SDXL, the whole U is on screen after load with no scrolling, every top-level card's title renders at 11 CSS px or
more, no two cards or labels overlap, and every drawn edge starts on its producer and ends on its consumer. Then
the Walk the tensor lesson from x to out, and presentation mode with the keyboard.

The page's CSP forbids eval, so every wait_for_function gets a function expression, never a bare string.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

SIZES = [(1280, 720), (1600, 1000)]
LESSONS = Path(__file__).parent.parent / "static" / "lessons"

# Rendered sizes and positions of what the diagram shows, in CSS pixels of the viewport.
MEASURE = """() => {
  const svg = document.querySelector('#diagram svg.unet');
  const rect = (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.left, y: r.top, w: r.width, h: r.height };
  };
  const cards = [...svg.querySelectorAll('.layer-boxes > g.box > .card')].map((card) => {
    const title = card.querySelector('.t1');
    const px = parseFloat(getComputedStyle(title).fontSize) * title.getScreenCTM().a;
    return { path: card.parentNode.dataset.path, title: px, ...rect(card.querySelector('.card-bg')) };
  });
  const labels = [...svg.querySelectorAll('.row-label, .row-sub, .skip-label, .term')].map((el) => ({
    what: el.textContent, ...rect(el),
  }));
  return { cards, labels, vw: innerWidth, vh: innerHeight, scrollY: scrollY,
    scroll: [document.getElementById('diagram').scrollWidth - document.getElementById('diagram').clientWidth,
             document.getElementById('diagram').scrollHeight - document.getElementById('diagram').clientHeight] };
}"""

# Every edge that names its producer and consumer: where it starts and ends, and the boxes of both (CSS px).
ENDPOINTS = """(scope) => {
  const svg = document.querySelector('#diagram svg.unet');
  const boxOf = (id) => {
    let el = null;
    if (id.startsWith(':')) el = svg.querySelector(`[data-term="${id}"] rect, [data-op="${id}"]`);
    else el = svg.querySelector(`[data-op="${CSS.escape(id)}"]`);
    if (!el) {
      const path = id.replace(/:(in|out|concat)$/, '');
      const g = svg.querySelector(`g.box[data-path="${CSS.escape(path)}"]`);
      el = g && (g.querySelector(':scope > .frame') ?? g.querySelector(':scope > .card > .card-bg'));
    }
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const at = (p, len) => {
    const q = p.getPointAtLength(len);
    const m = p.getScreenCTM();
    return [m.a * q.x + m.c * q.y + m.e, m.b * q.x + m.d * q.y + m.f];
  };
  const out = [];
  const sel = scope.split(',').map((s) => `${s.trim()} path.wire[data-from][data-to]`).join(', ');
  for (const p of svg.querySelectorAll(sel)) {
    const joint = p.dataset.joint ?? '';
    out.push({ from: p.dataset.from, to: p.dataset.to, joint, start: at(p, 0), end: at(p, p.getTotalLength()),
      fromBox: boxOf(p.dataset.from), toBox: boxOf(p.dataset.to) });
  }
  return out;
}"""


OPENED = "([p, v]) => document.querySelector(`#diagram g.box[data-path='${p}']`).getAttribute('data-expanded') === v"


def _open(page, url: str, preset: str, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{url}/#{preset}")
    page.wait_for_function(
        "(p) => document.body.dataset.ready === 'true' && document.body.dataset.preset === p", arg=preset
    )
    page.wait_for_timeout(200)  # the resize observer's refit


def _overlap(a: dict, b: dict, slack: float = 0.5) -> bool:
    return (
        a["x"] < b["x"] + b["w"] - slack
        and b["x"] < a["x"] + a["w"] - slack
        and a["y"] < b["y"] + b["h"] - slack
        and b["y"] < a["y"] + a["h"] - slack
    )


def _on(point: list[float], box: list[float] | None, tol: float = 2.5) -> bool:
    if box is None:
        return False
    x, y = point
    return box[0] - tol <= x <= box[2] + tol and box[1] - tol <= y <= box[3] + tol


def _check_endpoints(edges: list[dict], only_inside: str | None = None) -> list[str]:
    problems = []
    for e in edges:
        if only_inside and not (e["from"].startswith(only_inside) and e["to"].startswith(only_inside)):
            continue  # a signal from outside the opened block (the time embedding, the context)
        if e["joint"] != "start" and not _on(e["start"], e["fromBox"]):
            problems.append(f"{e['from']} → {e['to']} starts at {e['start']}, not on {e['fromBox']}")
        if e["joint"] != "end" and not _on(e["end"], e["toBox"]):
            problems.append(f"{e['from']} → {e['to']} ends at {e['end']}, not on {e['toBox']}")
    return problems


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("preset", ["sd1", "sdxl-base"])
def test_the_whole_u_is_readable_at_first_sight(page, live_server, console_errors, preset, size) -> None:
    trace = httpx.post(f"{live_server}/api/trace", json={"preset": preset}, timeout=120).json()
    _open(page, live_server, preset, size)
    m = page.evaluate(MEASURE)
    assert [c["path"] for c in m["cards"]] == [b["path"] for b in trace["blocks"]]
    assert m["scroll"] == [0, 0] and m["scrollY"] == 0, "the U needs scrolling"
    for c in m["cards"]:
        assert c["title"] >= 11, f"{c['path']}'s title renders at {c['title']:.1f} px"
        assert c["x"] >= 0 and c["y"] >= 0, c
        assert c["x"] + c["w"] <= m["vw"] and c["y"] + c["h"] <= m["vh"], f"{c['path']} is outside the window"
    cards = m["cards"]
    for i, a in enumerate(cards):
        for b in cards[i + 1 :]:
            assert not _overlap(a, b), f"{a['path']} overlaps {b['path']}"
    labels = m["labels"]
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not _overlap(a, b), f"label {a['what']!r} overlaps {b['what']!r}"
        for c in cards:
            assert not _overlap(a, c), f"label {a['what']!r} overlaps {c['path']}"
    # Every level has its label, with the latent size at that level.
    sample = trace["input"]["sample_size"]
    rows = page.eval_on_selector_all("#diagram .row-label", "els => els.map(e => e.textContent)")
    levels = len(trace["config"]["channel_mult"])
    assert rows == ["×".join(str(v // 2**L) for v in sample) for L in range(levels)]
    assert console_errors == []


@pytest.mark.parametrize("preset", ["sd1", "sdxl-base"])
def test_every_edge_joins_its_producer_to_its_consumer(page, live_server, console_errors, preset) -> None:
    trace = httpx.post(f"{live_server}/api/trace", json={"preset": preset}, timeout=120).json()
    _open(page, live_server, preset, (1600, 1000))
    edges = page.evaluate(ENDPOINTS, ".layer-wires, .layer-skips")
    assert _check_endpoints(edges) == []
    pairs = {(e["from"], e["to"]) for e in edges}
    # The main flow in execution order, each skip, and one time-embedding path into every block that reads it.
    seq = [b["path"] for b in trace["blocks"] if b["stage"] != "embed"]
    assert set(itertools.pairwise(seq)) <= pairs
    assert {(s["from"], f"{s['to']}:concat") for s in trace["skips"]} <= pairs
    emb_from = ":add_label" if any(b["category"] == "label_embedding" for b in trace["blocks"]) else "time_embed"
    readers = {b["path"] for b in trace["blocks"] if b["takes_emb"] and b["stage"] != "embed"}
    assert {t for f, t in pairs if f == emb_from and t in readers} == readers
    ctx = {b["path"] for b in trace["blocks"] if b["takes_context"]}
    assert {t for f, t in pairs if f == ":context"} == ctx
    assert (":x", "input_blocks.0") in pairs and ("out", ":out") in pairs

    # Inside an opened ResBlock: the embedding's Linear feeds the ⊕ (emb_layers' output), one time-embedding
    # input; inside cross-attention the keys and values read the one context.
    for path in ("input_blocks.1", "input_blocks.1.0", "input_blocks.1.0.emb_layers"):
        page.locator(f'#diagram [data-path="{path}"] > .card').click()
        page.wait_for_function("() => document.body.dataset.ready === 'true'")
    res = "input_blocks.1.0"
    inner = page.evaluate(ENDPOINTS, f'g.box[data-path="{res}"]')
    assert _check_endpoints(inner, only_inside=res) == []
    pairs = {(e["from"], e["to"]) for e in inner}
    assert (f"{res}.emb_layers", f"{res}:add_emb") in pairs
    assert (f"{res}.emb_layers.1", f"{res}.emb_layers:out") in pairs
    emb_inputs = [e for e in inner if e["from"] == emb_from]
    assert [e["to"] for e in emb_inputs] == [f"{res}.emb_layers"]
    assert page.locator(f'#diagram g.box[data-path="{res}"] .term.emb').count() == 0  # no second input

    attn = f"input_blocks.{1 if preset == 'sd1' else 4}.1.transformer_blocks.0.attn2"
    for path in _path_to_open(attn):
        if page.locator(f'#diagram g.box[data-path="{path}"]').get_attribute("data-expanded") != "true":
            page.locator(f'#diagram [data-path="{path}"] > .card').click()
            page.wait_for_function("() => document.body.dataset.ready === 'true'")
    inner = page.evaluate(ENDPOINTS, f'g.box[data-path="{attn}"]')
    ctx_in = sorted(e["to"] for e in inner if e["from"] == ":context")
    assert ctx_in == [f"{attn}.to_k", f"{attn}.to_v"]
    assert _check_endpoints(inner, only_inside=attn) == []
    assert console_errors == []


def _path_to_open(path: str) -> list[str]:
    """The blocks to open, outermost first, to show `path` (attention sits inside its transformer block)."""
    parts = path.split(".")
    top = ".".join(parts[:2])
    out = [top]
    for i in range(3, len(parts) + 1):
        p = ".".join(parts[:i])
        if parts[i - 1] == "transformer_blocks":
            continue
        out.append(p)
    return out


def test_walk_the_tensor_from_x_to_out(page, live_server, console_errors) -> None:
    """The Walk button plays the shipped Walk lesson: every step selects and marks its module, marks the skip its
    block saves (down) or takes (up), keeps the step in the URL, and steps back and ends."""
    trace = httpx.post(f"{live_server}/api/trace", json={"preset": "sd1"}, timeout=120).json()
    lesson = json.loads((LESSONS / "walk-the-tensor.json").read_text())
    steps = lesson["steps"]
    tops = [b["path"] for b in trace["blocks"]]
    skip_from = {s["from"]: s["to"] for s in trace["skips"]}
    skip_to = {s["to"]: s["from"] for s in trace["skips"]}
    _open(page, live_server, "sd1", (1280, 720))
    walk = page.get_by_role("button", name="Walk the tensor")
    walk.click()
    panel = page.get_by_role("region", name="Lesson")
    for i, step in enumerate(steps):
        page.wait_for_function("(i) => document.body.dataset.lessonShown === String(i)", arg=i)
        assert walk.get_attribute("aria-pressed") == "true"
        assert panel.locator("#lesson-step").inner_text() == f"{lesson['title']} · step {i + 1} of {len(steps)}"
        assert panel.locator("#lesson-title").inner_text() == step["title"]
        selected = page.locator("#diagram .selected").evaluate_all("els => els.map(e => e.dataset.path)")
        assert selected == [step["select"]]
        # The skip the step's top-level block saves (down stage) and takes (up stage) is marked on the U.
        top = next(t for t in tops if step["select"] == t or step["select"].startswith(f"{t}."))
        saved = page.locator("#diagram g.skip.lesson-save").evaluate_all("els => els.map(e => e.dataset.skipTo)")
        taken = page.locator("#diagram g.skip.lesson-take").evaluate_all("els => els.map(e => e.dataset.skipFrom)")
        assert saved == ([skip_from[top]] if top in skip_from else [])
        assert taken == ([skip_to[top]] if top in skip_to else [])
        page.wait_for_function("(n) => location.search.includes(`step=${n}`)", arg=i + 1)
        if "question" in step:
            page.keyboard.press("ArrowRight")  # the answer first
            page.wait_for_function("(i) => document.body.dataset.lessonAnswer === String(i)", arg=i)
        if i < len(steps) - 1:
            if i % 2:
                page.keyboard.press("ArrowRight")
            else:
                panel.get_by_role("button", name="Next step").click()
    assert panel.get_by_role("button", name="Next step").inner_text() == "End"
    panel.get_by_role("button", name="Previous step").click()
    page.wait_for_function("(i) => document.body.dataset.lessonShown === String(i)", arg=len(steps) - 2)
    # The step is in the URL: a reload comes back to it.
    page.wait_for_function("(n) => location.search.includes(`step=${n}`)", arg=len(steps) - 1)
    page.reload()
    page.wait_for_function("(i) => document.body.dataset.lessonShown === String(i)", arg=len(steps) - 2)
    # The button ends what it started.
    walk.click()
    page.wait_for_function("() => document.body.dataset.lessonEnded === 'closed'")
    assert panel.is_hidden()
    assert walk.get_attribute("aria-pressed") == "false"
    assert page.locator("#diagram .lesson-save, #diagram .lesson-take").count() == 0
    assert console_errors == []


def test_presentation_mode_and_the_keyboard(page, live_server, console_errors) -> None:
    trace = httpx.post(f"{live_server}/api/trace", json={"preset": "sd1"}, timeout=120).json()
    order = [b["path"] for b in trace["blocks"]]
    _open(page, live_server, "sd1", (1280, 720))
    before = page.evaluate("() => parseFloat(document.querySelector('#diagram .layer-boxes .t1').getScreenCTM().a)")
    page.keyboard.press("p")
    page.wait_for_function("() => document.body.dataset.presenting === 'true'")
    page.wait_for_timeout(300)
    assert page.locator(".tools").is_hidden() and page.locator("#summary").is_hidden()
    after = page.evaluate("() => parseFloat(document.querySelector('#diagram .layer-boxes .t1').getScreenCTM().a)")
    assert after >= before  # the diagram has the whole window: its type is at least as large
    focused = lambda: page.evaluate("() => document.activeElement?.dataset?.path ?? null")  # noqa: E731
    assert focused() == order[0]
    for path in order[1:4]:
        page.keyboard.press("ArrowRight")
        assert focused() == path
    page.keyboard.press("ArrowLeft")
    assert focused() == order[2]
    page.keyboard.press("Enter")
    page.wait_for_function(OPENED, arg=[order[2], "true"])
    # In Present an opened block fills the screen (focus.js): the first Esc gives the whole U back, the next closes.
    page.wait_for_function("(p) => document.body.dataset.focus === p", arg=order[2])
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.focus === ''")
    page.keyboard.press("Escape")
    page.wait_for_function(OPENED, arg=[order[2], "false"])
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.presenting === 'false'")
    assert page.locator("#summary").is_visible()
    assert console_errors == []


MINIMAP = """() => {
  const mm = document.querySelector('[data-field="minimap"]');
  const view = mm.querySelector('.minimap-view');
  const host = document.getElementById('diagram');
  const r = mm.getBoundingClientRect();
  return { shown: mm.dataset.shown, w: r.width, h: r.height, left: r.left, top: r.top,
    blocks: mm.querySelectorAll('rect:not(.minimap-view)').length,
    view: ['x', 'y', 'width', 'height'].map((k) => parseFloat(view.getAttribute(k))),
    scroll: [host.scrollLeft, host.scrollTop] };
}"""


def test_the_minimap_shows_where_the_view_is_and_moves_it(page, live_server, console_errors) -> None:
    trace = httpx.post(f"{live_server}/api/trace", json={"preset": "sd1"}, timeout=120).json()
    _open(page, live_server, "sd1", (1280, 720))
    assert page.evaluate(MINIMAP)["shown"] == "false"  # the whole U is on screen: no overview needed
    for path in ("input_blocks.1", "middle_block", "output_blocks.9"):
        page.locator(f'#diagram [data-path="{path}"] > .card').click()
        page.wait_for_function(OPENED, arg=[path, "true"])
    page.wait_for_function("() => document.querySelector('[data-field=\"minimap\"]').dataset.shown === 'true'")
    m = page.evaluate(MINIMAP)
    assert m["blocks"] == len(trace["blocks"])  # one mark per top-level block
    x, y, w, h = m["view"]
    assert 0 < w <= m["w"] + 0.5 and 0 < h <= m["h"] + 0.5 and (w < m["w"] - 1 or h < m["h"] - 1)
    # A click on the overview's lower right moves the view there, and the frame follows.
    page.mouse.click(m["left"] + m["w"] * 0.95, m["top"] + m["h"] * 0.95)
    page.wait_for_timeout(200)
    after = page.evaluate(MINIMAP)
    assert after["scroll"][0] > m["scroll"][0] or after["scroll"][1] > m["scroll"][1]
    assert after["view"][0] > x or after["view"][1] > y
    assert console_errors == []


# One click on a card, and what the page did within that task: the zoom before and after, the animations running
# on the drawn SVG and their transform origin, and where the clicked card is before and after (untransformed).
CLICK_AND_LOOK = """(path) => {
  const svg = document.querySelector('#diagram svg.unet');
  const card = () => document.querySelector(`#diagram g.box[data-path="${path}"] > .card`);
  const zoom = () => parseFloat(document.getElementById('zoom-level').textContent);
  const before = { zoom: zoom(), at: card().getBoundingClientRect().toJSON() };
  card().dispatchEvent(new MouseEvent('click', { bubbles: true }));
  const anims = svg.getAnimations();
  anims.forEach((a) => a.pause());
  const paused = card().getBoundingClientRect().toJSON();  // at the ease's first frame
  anims.forEach((a) => a.finish());
  const svgBox = svg.getBoundingClientRect();
  const at = card().getBoundingClientRect().toJSON();
  return { before, zoom: zoom(), running: anims.length, origin: svg.style.transformOrigin, paused, at,
    svg: [svgBox.left, svgBox.top], keyframes: anims.map((a) => a.effect.getKeyframes().map((k) => k.transform)) };
}"""


def test_a_refit_eases_about_the_clicked_block(browser, live_server) -> None:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, reduced_motion="no-preference")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server}/#sd1")
        page.wait_for_function("() => document.body.dataset.ready === 'true' && document.body.dataset.preset === 'sd1'")
        seen = page.evaluate(CLICK_AND_LOOK, "input_blocks.4")
        assert seen["zoom"] < seen["before"]["zoom"], seen  # the opened block made the U outgrow the window
        # The U eases from the old scale to the new one, about the card that was clicked: it does not move.
        assert seen["running"] == 1
        ratio = seen["before"]["zoom"] / seen["zoom"]
        start = float(seen["keyframes"][0][0].removeprefix("scale(").removesuffix(")"))
        assert start == pytest.approx(ratio, rel=0.02) and seen["keyframes"][0][-1] == "none"
        ox, oy = (float(v.removesuffix("px")) for v in seen["origin"].split())
        assert ox == pytest.approx(seen["at"]["left"] - seen["svg"][0], abs=1)
        assert oy == pytest.approx(seen["at"]["top"] - seen["svg"][1], abs=1)
        assert seen["paused"]["left"] == pytest.approx(seen["at"]["left"], abs=1)
        assert seen["paused"]["top"] == pytest.approx(seen["at"]["top"], abs=1)
        # With a zoom set by hand nothing refits: no ease, and the block opened stays where it was on screen.
        page.locator("#zoom-in").click()
        page.evaluate("() => { const d = document.getElementById('diagram'); d.scrollTo(d.scrollWidth / 3, 200); }")
        page.wait_for_timeout(100)
        again = page.evaluate(CLICK_AND_LOOK, "output_blocks.4")
        assert again["zoom"] == again["before"]["zoom"] and again["running"] == 0
        assert again["at"]["left"] == pytest.approx(again["before"]["at"]["left"], abs=1.5)
        assert again["at"]["top"] == pytest.approx(again["before"]["at"]["top"], abs=1.5)
        assert errors == []
    finally:
        context.close()
