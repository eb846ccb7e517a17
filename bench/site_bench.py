"""The static site (issue 27): the export of the default site (time, size on disk and gzipped), then that site served
by a plain `python -m http.server` in headless Chromium: navigation → first drawing of sd1, a block opening, and a
lesson step.

Run: `python -m bench.site_bench [--presets sd1,sd2] [--site DIR]` (prints a Markdown table); --site skips the export
and measures a site already written. `run()` returns {"rows": [(measure, result, target)], "samples_ms": {...}}.
The export runs with an empty trace cache of its own, so its time is that of a first export.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import IDLE, LESSON_STEP, machine, table
from tests.harness import CHROMIUM, CHROMIUM_ARGS, serve_static

VIEWPORT = {"width": 1280, "height": 720}
READY = "() => document.body.dataset.ready === 'true' && document.body.dataset.preset === 'sd1'"
LESSON = "static/lessons/sd-unet-in-20-minutes.json"
# A click (or key) timed inside the page, to the first task after the next frame (as bench/page_bench.py does).
CLICK = """async (selector) => {
  const el = document.querySelector(selector);
  const t0 = performance.now();
  el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  return performance.now() - t0;
}"""


def _measure(url: str, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {"first_draw": [], "open": [], "lesson_step": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            # The first load warms the browser's cache (plotly.js), as a reader's second visit would be.
            for i in range(repeats + 1):
                page.goto(f"{url}/?run={i}")
                page.wait_for_function(READY)
                page.wait_for_function("() => Boolean(document.body.dataset.firstDrawMs)")
                if i:
                    samples["first_draw"].append(float(page.evaluate("() => document.body.dataset.firstDrawMs")))
            for path in ("input_blocks.1", "input_blocks.4", "middle_block", "output_blocks.9") * max(1, repeats // 2):
                samples["open"].append(page.evaluate(CLICK, f'[data-path="{path}"] > .card'))
                page.evaluate(CLICK, f'[data-path="{path}"] > .card')  # closed again
            # Steps 3 → 4 → 5 of the lesson (0-based 2, 3, 4): the same model, a new selection and opened blocks,
            # and no question on the way (a question's first key reveals its answer instead of stepping).
            for r in range(repeats):
                page.goto(f"{url}/?lesson={LESSON}&step=3&run={r}")
                page.wait_for_function("() => document.body.dataset.lessonShown === '2'")
                for i in (3, 4):
                    # The key comes once the page is idle, as a teacher's does: the step is timed, not the tail of
                    # the step before it (its deferred reveal, the details it fills in).
                    page.evaluate(IDLE)
                    t = page.evaluate(LESSON_STEP, ["ArrowRight", i])
                    if t is not None:
                        samples["lesson_step"].append(t)
        finally:
            browser.close()
    return samples


def run(presets: list[str] | None = None, site: Path | None = None, repeats: int = 5) -> dict[str, Any]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="sdunet-site-bench-") as tmp:
        if site is None:
            site = Path(tmp) / "site"
            # A fresh trace cache and one trace worker, as a first `sdunet-explorer export-site` on a user's machine.
            os.environ["SDUNET_CACHE_DIR"] = str(Path(tmp) / "cache")
            from app.commands.site_export import default_cache_env, export_site

            default_cache_env()
            report = export_site(site, presets=presets)
            print("\n".join(report.timings.lines()), file=sys.stderr)  # where the export's time went
            label = "default site" if presets is None else f"site of {', '.join(presets)}"
            rows += [
                (
                    f"export of the {label} (CPU: the process and its workers)",
                    f"{report.seconds:.0f} s (CPU {report.cpu_seconds:.0f} s)",
                    "<= 180 s" if presets is None else "-",
                ),
                ("its size on disk", f"{report.bytes / 2**20:.1f} MiB ({report.files} files)", "<= 60 MiB"),
                ("its size gzipped (each file)", f"{report.gzip_bytes / 2**20:.1f} MiB", "<= 25 MiB"),
            ]
        with serve_static(site) as url:
            samples = _measure(url, repeats)
    med = {k: statistics.median(v) for k, v in samples.items()}
    rows += [
        ("first drawing of sd1 from a static server (median)", f"{med['first_draw']:.0f} ms", "<= 1000 ms"),
        ("a block opens (median)", f"{med['open']:.1f} ms", "<= 100 ms"),
        ("a lesson step (median)", f"{med['lesson_step']:.1f} ms", "<= 50 ms"),
    ]
    return {"rows": rows, "samples_ms": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", help="comma-separated presets to export (default: the default site)")
    parser.add_argument("--site", type=Path, help="measure this exported site; no export")
    args = parser.parse_args()
    presets = args.presets.split(",") if args.presets else None
    result = run(presets, args.site)
    print(f"{machine()}\n\n{table(result['rows'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
