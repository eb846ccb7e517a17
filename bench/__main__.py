"""`python -m bench` (or `make bench`): every benchmark in one run, written to bench/results.md as Markdown with the
machine's description, and copied into the README between its bench markers."""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path

from bench import (
    activation_bench,
    api_bench,
    first_draw_bench,
    knobs_bench,
    load_bench,
    probes_bench,
    speed_bench,
    startup_bench,
    starvation_bench,
    trace_bench,
    twin_bench,
)
from bench.common import machine, table

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter load runs (for a smoke test)")
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the results
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    for title, fn in (
        ("Tracer (sdunet_core.tracer)", trace_bench.run),
        ("Server start (fresh processes, empty cache)", startup_bench.run),
        ("API (cached trace under load)", lambda: api_bench.run(duration_s=5 if args.quick else 15)),
        ("Starvation (100 uncached traces, 200 idle event streams)", starvation_bench.run),
        ("Load (mixed traffic)", lambda: load_bench.run(seconds=10 if args.quick else 60)),
        ("Model speed (ours vs diffusers)", speed_bench.run),
        ("Activations (capture vs plain forward)", activation_bench.run),
        ("The twin (generation, a captured step, a fresh server)", twin_bench.run),
        ("Knobs (an intervention with its baseline, the ablation sweep, effect sizes)", knobs_bench.run),
        ("Probes (every point of the twin, 512 pictures; PCK)", lambda: probes_bench.run(1 if args.quick else 3)),
        ("Page (headless Chromium)", _page_rows),
        ("First drawing (headless Chromium, fresh cache, 1280×720)", lambda: first_draw_bench.run()["rows"]),
    ):
        log.info("running: %s", title)
        t0 = time.monotonic()
        sections.append((title, fn()))
        log.info("  %.0f s", time.monotonic() - t0)
    text = f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d')}.\n\n"
    text += "\n\n".join(f"**{title}**\n\n{table(rows)}" for title, rows in sections) + "\n"
    (ROOT / "bench" / "results.md").write_text(text)
    print(text)
    if not args.no_readme:
        readme = ROOT / "README.md"
        new = re.sub(
            r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)",
            lambda m: m.group(1) + text + m.group(2),
            readme.read_text(),
            flags=re.S,
        )
        readme.write_text(new)
    return 0


def _page_rows() -> list[tuple[str, str, str]]:
    from bench import page_bench

    result = page_bench.run()
    if isinstance(result, dict) and "rows" in result:
        return result["rows"]
    return [(str(k), str(v), "") for k, v in result.items()] if isinstance(result, dict) else []


if __name__ == "__main__":
    raise SystemExit(main())
