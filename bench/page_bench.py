"""The explorer page in headless Chromium: navigation → drawn sd1 diagram (trace cached on the server), opening and
closing blocks of sd1, a step of "Walk the tensor" on sd1, and interactions with SDXL fully opened.

Run: `python -m bench.page_bench` (prints a Markdown table). `run()` returns a dict: "rows" (measure, result,
target) for `python -m bench`, and "medians_ms" / "samples_ms" with the raw numbers.

Every interaction is timed inside the page, from the dispatched click to the first task after the next animation
frame: script, style, layout and paint of the change, without Playwright's round trips.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import httpx

from bench.common import IDLE, LESSON_STEP, machine, table
from bench.server import serve
from tests.harness import CHROMIUM, CHROMIUM_ARGS, ROOT

ARGS = CHROMIUM_ARGS
VIEWPORT = {"width": 1600, "height": 1000}

# The page's CSP forbids eval: Playwright gets function expressions only.
READY = "(p) => document.body.dataset.ready === 'true' && document.body.dataset.preset === p"
CLICK = """async (selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const t0 = performance.now();
  el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - t0;
}"""
SCROLL = """async ([dx, dy]) => {
  const host = document.getElementById('diagram');
  const t0 = performance.now();
  host.scrollBy(dx, dy);
  // The scroll handler draws on the next frame; wait for the one after it.
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0))));
  return performance.now() - t0;
}"""
VISIBLE_OPEN = """() => {
  const host = document.getElementById('diagram').getBoundingClientRect();
  return [...document.querySelectorAll('g.box[data-expanded="true"]')].filter((g) => {
    const r = g.querySelector(':scope > .card').getBoundingClientRect();
    return r.top > host.top && r.bottom < host.bottom && r.left > host.left && r.right < host.right;
  }).map((g) => g.dataset.path);
}"""
SD1_BLOCKS = [
    "input_blocks.1",
    "input_blocks.4",
    "input_blocks.8",
    "middle_block",
    "output_blocks.2",
    "output_blocks.5",
    "output_blocks.9",
    "out",
]
NESTED = ["input_blocks.1.0", "input_blocks.1.1", "input_blocks.1.1.transformer_blocks.0"]


def _card(path: str) -> str:
    return f'[data-path="{path}"] > .card'


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _measure(url: str, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {
        k: []
        for k in (
            "navigation",
            "sd1_open",
            "sd1_close",
            "walk_step",
            "sdxl_expand_all",
            "sdxl_toggle",
            "sdxl_select",
            "sdxl_scroll",
        )
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            # 1. Navigation → drawn sd1; the first load only warms the browser's cache (plotly.js is 4 MB).
            for i in range(repeats + 1):
                page.goto(f"{url}/?run={i}#sd1")
                page.wait_for_function(READY, arg="sd1")
                page.wait_for_function("() => Boolean(document.body.dataset.firstDrawMs)")
                if i:
                    samples["navigation"].append(float(page.evaluate("() => document.body.dataset.firstDrawMs")))

            # 2. sd1: open and close top-level blocks, then blocks nested inside an opened one.
            for _ in range(max(1, repeats // 2)):
                for path in SD1_BLOCKS:
                    samples["sd1_open"].append(page.evaluate(CLICK, _card(path)))
                    samples["sd1_close"].append(page.evaluate(CLICK, _card(path)))
                page.evaluate(CLICK, _card("input_blocks.1"))
                for path in NESTED:
                    samples["sd1_open"].append(page.evaluate(CLICK, _card(path)))
                for path in reversed(NESTED):
                    samples["sd1_close"].append(page.evaluate(CLICK, _card(path)))
                page.evaluate(CLICK, _card("input_blocks.1"))

            # 3. Walk the tensor on sd1 (the Walk lesson): every step forward from x to out, then back again.
            page.evaluate(CLICK, "#walk")
            page.wait_for_function("() => document.body.dataset.lessonShown === '0'")
            last = len(json.loads((ROOT / "static/lessons/walk-the-tensor.json").read_text())["steps"]) - 1
            for _ in range(max(1, repeats // 2)):
                for key, order in (("ArrowRight", range(1, last + 1)), ("ArrowLeft", range(last - 1, -1, -1))):
                    for i in order:
                        page.evaluate(IDLE)  # the key once the page is idle, as a person presses it
                        if (t := page.evaluate(LESSON_STEP, [key, i])) is not None:
                            samples["walk_step"].append(t)
            page.evaluate(CLICK, "#walk")  # ends the lesson it started

            # 4. SDXL fully opened: open everything, then toggle blocks that are on screen, select, scroll.
            page.select_option("#model", "sdxl-base")
            page.wait_for_function(READY, arg="sdxl-base")
            for _ in range(repeats):
                samples["sdxl_expand_all"].append(page.evaluate(CLICK, "#expand-all"))
                page.evaluate(CLICK, "#collapse-all")
            page.evaluate(CLICK, "#expand-all")
            page.evaluate("() => { const d = document.getElementById('diagram'); d.scrollTo(600, 2500); }")
            page.wait_for_timeout(300)
            shown = page.evaluate(VISIBLE_OPEN)
            picks = shown[:: max(1, len(shown) // (2 * repeats))][: 2 * repeats]
            for path in picks:
                for _ in range(2):  # close, then open again
                    t = page.evaluate(CLICK, _card(path))
                    if t is not None:
                        samples["sdxl_toggle"].append(t)
            for path in picks:
                t = page.evaluate(CLICK, f'[data-path="{path}"] > .frame')  # the body of an open block: selects
                if t is not None:
                    samples["sdxl_select"].append(t)
            for i in range(repeats):
                samples["sdxl_scroll"].append(page.evaluate(SCROLL, [0, 900 if i % 2 == 0 else -600]))
        finally:
            browser.close()
    return samples


def run(repeats: int = 5) -> dict[str, Any]:
    with serve() as (url, _proc):
        for preset in ("sd1", "sdxl-base"):  # warm the server's trace cache
            httpx.post(f"{url}/api/trace", json={"preset": preset}, timeout=300).raise_for_status()
        samples = _measure(url, repeats)
    med = {k: round(_median(v), 1) for k, v in samples.items()}
    worst = {k: round(max(v), 1) if v else float("nan") for k, v in samples.items()}
    n = {k: len(v) for k, v in samples.items()}
    rows = [
        ("navigation → sd1 diagram drawn (trace cached)", f"{med['navigation']:.0f} ms", "—"),
        (
            f"sd1 open a block (median of {n['sd1_open']}, max {worst['sd1_open']:.0f} ms)",
            f"{med['sd1_open']:.0f} ms",
            "≤ 100 ms",
        ),
        (
            f"sd1 close a block (median of {n['sd1_close']}, max {worst['sd1_close']:.0f} ms)",
            f"{med['sd1_close']:.0f} ms",
            "≤ 100 ms",
        ),
        (
            f"sd1 Walk the tensor: one step (median of {n['walk_step']}, max {worst['walk_step']:.0f} ms)",
            f"{med['walk_step']:.0f} ms",
            "≤ 50 ms",
        ),
        ("sdxl-base Expand all", f"{med['sdxl_expand_all']:.0f} ms", "—"),
        (
            f"sdxl-base fully opened: toggle a block (median of {n['sdxl_toggle']}, max {worst['sdxl_toggle']:.0f} ms)",
            f"{med['sdxl_toggle']:.0f} ms",
            "≤ 300 ms",
        ),
        ("sdxl-base fully opened: select a block", f"{med['sdxl_select']:.0f} ms", "≤ 300 ms"),
        ("sdxl-base fully opened: scroll one screen", f"{med['sdxl_scroll']:.0f} ms", "≤ 300 ms"),
    ]
    return {"rows": rows, "medians_ms": med, "max_ms": worst, "samples_ms": samples}


if __name__ == "__main__":
    result = run()
    print(f"Machine: {machine()}; Chromium {CHROMIUM}, headless, viewport {VIEWPORT['width']}×{VIEWPORT['height']}.\n")
    print(table(result["rows"]))
