"""`sdunet-explorer export-site DIR`: write the page as a static site (app/commands/site_export.py does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a list of sizes in pixels (512,768)") from None


def add_export_site(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-site",
        help="write the page as a static site (no server): traces, comparisons, lessons and the twin's generations",
    )
    p.add_argument("dir", type=Path, help="a new (or empty) folder; serve it with any static host")
    p.add_argument("--presets", type=_csv, default=None, help="comma-separated presets (default: every preset)")
    p.add_argument("--sizes", type=_sizes, default=[], help="image sizes in px traced beside each reference size")
    p.add_argument("--no-generations", action="store_true", help="leave out the twin's precomputed generations")
    p.set_defaults(func=_export_site)


def _export_site(args: argparse.Namespace) -> int:
    from app.commands.site_export import default_cache_env, export_site

    default_cache_env()
    captions = [] if args.no_generations else None
    report = export_site(args.dir, presets=args.presets, sizes=args.sizes, captions=captions)
    for note in report.skipped:
        print(f"skipped {note}")
    print(f"{args.dir}: {report.line()}")
    # Where the time went, so that an export on a quiet machine can be compared with the budget (3 minutes).
    print("time by phase (wall clock; the twin's generations run beside the presets), then by request (summed):")
    for line in report.timings.lines():
        print(line)
    return 0
