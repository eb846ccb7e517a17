"""First drawing of the page (issue 24: "first load ≤ 1 s to a drawn U"): navigation → the sd1 U on screen
(`document.body.dataset.firstDrawMs`, performance.now() from the navigation's start), the median of several loads,
each in a fresh browser context (an empty cache, as a student's first visit), the trace already cached on the
server. Beside it: how many ES modules were fetched, and whether plotly.js was asked for before the U was drawn.

Run: `python -m bench.first_draw_bench [--loads N] [--checkout DIR]`. --checkout serves another checkout's page
(say `git archive` of an older commit unpacked somewhere) with this environment, for a before / after comparison
on the same machine. `run()` returns "rows" for `python -m bench` and "samples_ms".
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

import httpx

from bench.common import machine, table
from bench.server import serve
from tests.harness import CHROMIUM, CHROMIUM_ARGS, ROOT

VIEWPORT = {"width": 1280, "height": 720}  # the projector of the issue
DRAWN = "() => document.body.dataset.ready === 'true' && Boolean(document.body.dataset.firstDrawMs)"
LOOK = """() => {
  const res = performance.getEntriesByType('resource');
  const plotly = res.find((e) => e.name.endsWith('/vendor/plotly.min.js'));
  const first = parseFloat(document.body.dataset.firstDrawMs);
  return { first, modules: res.filter((e) => new URL(e.name).pathname.startsWith('/static/js/')).length,
    plotlyBefore: Boolean(plotly && plotly.startTime < first) };
}"""


def _loads(url: str, loads: int) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(loads + 1):
                context = browser.new_context(viewport=VIEWPORT)  # a fresh context: nothing cached
                try:
                    page = context.new_page()
                    page.goto(f"{url}/?load={i}#sd1")
                    page.wait_for_function(DRAWN, timeout=120_000)
                    if i:  # the first load warms the server (templates, static files in the OS cache)
                        out.append(page.evaluate(LOOK))
                finally:
                    context.close()
        finally:
            browser.close()
    return out


def run(loads: int = 7, checkout: Path = ROOT) -> dict[str, Any]:
    # Served from `checkout` with this interpreter; it writes no bytecode into a checkout that is not ours.
    with serve(cwd=checkout, env={"PYTHONDONTWRITEBYTECODE": "1"}) as (url, _proc):
        httpx.post(f"{url}/api/trace", json={"preset": "sd1"}, timeout=300).raise_for_status()
        samples = _loads(url, loads)
    firsts = [s["first"] for s in samples]
    med = statistics.median(firsts)
    rows = [
        (
            f"navigation → sd1 U drawn, fresh cache (median of {len(firsts)}, "
            f"min {min(firsts):.0f}, max {max(firsts):.0f} ms)",
            f"{med:.0f} ms",
            "≤ 1000 ms",
        ),
        ("ES modules fetched", str(samples[-1]["modules"]), "—"),
        ("plotly.js asked for before the U is drawn", "yes" if any(s["plotlyBefore"] for s in samples) else "no", "no"),
    ]
    return {"rows": rows, "median_ms": med, "samples_ms": firsts}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the checkout whose page is served")
    args = parser.parse_args()
    result = run(args.loads, args.checkout.resolve())
    where = "this checkout" if args.checkout.resolve() == ROOT else str(args.checkout)
    print(
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}; Chromium, headless, {VIEWPORT['width']}×"
        f"{VIEWPORT['height']}; page of {where}.\n"
    )
    print(table(result["rows"]))
