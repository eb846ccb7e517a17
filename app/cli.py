"""The `sdunet-explorer` command: serve the app, trace or summarise a model, inspect a checkpoint."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("sdunet_explorer")


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    if args.host in ("0.0.0.0", "::"):
        log.warning("Listening on %s: the explorer is reachable from other machines.", args.host)
    os.environ["SDUNET_HOST"] = args.host
    os.environ["SDUNET_PORT"] = str(args.port)
    # One worker: a torch app keeps its models and caches in one process.
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, workers=1, log_level="info")
    return 0


def _trace_args(args: argparse.Namespace) -> dict:
    return {
        "sample_size": tuple(args.size) if args.size else None,
        "batch": args.batch,
        "context_tokens": args.tokens,
    }


def _trace(args: argparse.Namespace) -> int:
    import json

    from sdunet_core.summary import format_summary, human
    from sdunet_core.trace import trace_unet

    trace = trace_unet(args.preset, device=args.device, dtype=args.dtype, repeats=args.repeats, **_trace_args(args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(trace.to_dict(), f)
        log.info("wrote %s", args.json)
    t = trace.totals
    print(
        f"{args.preset}: {t['params']:,} params, {human(t['flops'])} FLOPs "
        f"({human(t['attention_flops'])} attention), peak ~{human(t['peak_memory_bytes'], 'B')}"
    )
    if t["time_ms"] is not None:
        print(f"forward {t['time_ms']:.2f} ms on {trace.device} ({trace.dtype}, median of {args.repeats})")
    if not args.json:
        print(format_summary(trace, depth=1))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from sdunet_core.summary import format_summary
    from sdunet_core.trace import trace_unet

    print(format_summary(trace_unet(args.preset, **_trace_args(args)), depth=args.depth))
    return 0


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", help="a preset name (sd1, sd2, sdxl-base, ...)")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="latent size (default: the preset's)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--tokens", type=int, default=None, help="context tokens (default: the preset's, 77 for text)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdunet-explorer", description="See the UNet at the heart of Stable Diffusion."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the explorer page and its API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(func=_serve)

    trace = sub.add_parser("trace", help="trace a preset: totals, and the JSON with --json")
    _add_input_args(trace)
    trace.add_argument("--json", metavar="FILE", help="write the trace JSON here")
    trace.add_argument("--device", default="meta", choices=["meta", "cpu", "cuda"], help="meta: no weights, no timing")
    trace.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"])
    trace.add_argument("--repeats", type=int, default=3, help="timed forwards on cpu/cuda")
    trace.set_defaults(func=_trace)

    summary = sub.add_parser("summary", help="a torchinfo-like table of a preset")
    _add_input_args(summary)
    summary.add_argument("--depth", type=int, default=2, help="tree depth to show (default 2)")
    summary.set_defaults(func=_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from sdunet_core import ConfigError

    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
